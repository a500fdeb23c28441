"""From a source file to cleaned units (pages or sections) and chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ingest.chunking import ChunkSizes, chunk_units, find_headings, section_units
from ingest.cleaning import clean_pdf_pages, clean_text
from ingest.corpus import SourceFile
from ingest.loaders import DocumentError, iter_pdf_pages, read_text_file
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
        units = section_units(clean_text(raw), file.info.title)
        chunks = chunk_units(units, file.sha256, sizes, by_block=True)
    if not chunks:
        raise DocumentError(f"{file.source}: kein verwertbarer Text gefunden")
    return PreparedDocument(units, chunks, encoding)


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
    """Give each PDF chunk the last heading before it, carried across pages."""
    headings = {unit.index: [(h.start, h.text) for h in find_headings(unit.text)] for unit in units}
    result: list[Chunk] = []
    carried: str | None = None
    last_unit = -1
    for chunk in chunks:
        if chunk.unit != last_unit:
            carried = _last_heading(headings.get(last_unit, []), None, carried)
            last_unit = chunk.unit
        section = _last_heading(headings.get(chunk.unit, []), chunk.start, carried)
        result.append(replace(chunk, section=section))
    return result


def _last_heading(
    found: Sequence[tuple[int, str]], before: int | None, default: str | None
) -> str | None:
    candidates = [text for start, text in found if before is None or start <= before]
    return candidates[-1] if candidates else default
