"""From a source file to cleaned units (pages or sections) and chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ingest.chunking import (
    ChunkSizes,
    Heading,
    blocks,
    chunk_units,
    find_headings,
    section_units,
)
from ingest.cleaning import clean_pdf_pages, clean_text
from ingest.corpus import SourceFile
from ingest.loaders import DocumentError, iter_pdf_pages, read_text_file
from ingest.sections import SectionMapError, mapped_units
from quellenchat.types import Chunk, Page


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready for the store: its cleaned units and their chunks."""

    units: list[Page]
    chunks: list[Chunk]
    encoding: str | None = None


def prepare(file: SourceFile, sizes: ChunkSizes) -> PreparedDocument:
    """Load, clean and chunk one document; raises DocumentError with a German message."""
    suffix = file.path.suffix.lower()
    if suffix == ".pdf":
        units = pdf_units(file)
        chunks = _with_pdf_sections(chunk_units(units, file.sha256, sizes, by_block=False), units)
        encoding = None
    else:
        raw, encoding = read_text_file(file.path)
        units = text_units(clean_text(raw), file)
        chunks = chunk_units(
            units, file.sha256, sizes, by_block=True, whole_sections=file.sections is not None
        )
    if not chunks:
        raise DocumentError(f"{file.source}: kein verwertbarer Text gefunden")
    return PreparedDocument(units, chunks, encoding)


def text_units(text: str, file: SourceFile) -> list[Page]:
    """A text document's units: its printed sections if it has a section map, else by headings."""
    if file.sections is None:
        return section_units(text, file.info.title)
    try:
        return mapped_units(text, blocks(text), file.sections)
    except SectionMapError as exc:
        raise DocumentError(f"{file.source}: Abschnittskarte passt nicht ({exc})") from exc


def pdf_units(file: SourceFile) -> list[Page]:
    """Cleaned PDF pages as units; pages without text are left out but keep their numbers."""
    raw_pages = list(iter_pdf_pages(file.path))
    cleaned = clean_pdf_pages([p.text for p in raw_pages])
    return [
        Page(index=raw.number - 1, text=text, number=raw.number, label=raw.label)
        for raw, text in zip(raw_pages, cleaned, strict=True)
        if text.strip()
    ]


def _with_pdf_sections(chunks: Sequence[Chunk], units: Sequence[Page]) -> list[Chunk]:
    """Give each PDF chunk the headings in force where it starts, carried across pages.

    The section is the last numbered heading, followed by the last unnumbered one after it
    (`Taktstriche und Taktüberprüfung › Taktüberprüfungen`); without numbered headings, the
    last heading.
    """
    headings = {unit.index: find_headings(unit.text) for unit in units}
    result: list[Chunk] = []
    state: tuple[str | None, str | None] = (None, None)  # (numbered, unnumbered after it)
    done = -1  # the last unit whose headings are all in `state`
    for chunk in chunks:
        while done < chunk.unit - 1:  # units before this chunk's: all their headings count
            done += 1
            state = _advance(state, headings.get(done, []), None)
        section = _advance(state, headings.get(chunk.unit, []), chunk.start)
        result.append(replace(chunk, section=" › ".join(h for h in section if h) or None))
    return result


def _advance(
    state: tuple[str | None, str | None], found: Sequence[Heading], before: int | None
) -> tuple[str | None, str | None]:
    numbered, sub = state
    for heading in found:
        if before is not None and heading.start > before:
            break
        if heading.numbered:
            numbered, sub = heading.text, None
        else:
            sub = heading.text
    return numbered, sub
