"""Section maps: the printed sections of a plain-text document whose layout interleaved them.

The fact sheet was extracted from a two-column PDF, so its text files bullets of one box under
the heading of another. A section map in the corpus's `metadata.toml` names, for each printed
section, its heading and the first words of each of its blocks (paragraphs or bullets), in
printed order:

    [["ki-faktenblatt.txt".sections]]
    heading = "Herausforderungen"
    blocks = ["Herausforderungen • Mangelndes Know-how", "• Unzureichende Digitalisierung", …]

Ingest then builds one unit per section from those blocks, each copied verbatim from the
cleaned text and joined by blank lines: blocks are moved, never reworded, so every quote still
occurs word for word in the document. `omit` lists layout labels that belong to no section
(table column heads, the repeated title); every other block must belong to exactly one section.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quellenchat.types import Page, letters_key

SECTIONS_FIELD = "sections"
OMIT_FIELD = "omit"


class SectionMapError(Exception):
    """A section map that is malformed or does not fit its text; the German message names both."""


@dataclass(frozen=True)
class Section:
    """One printed section: its heading and the opening words of its blocks, in printed order."""

    heading: str
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class SectionMap:
    """The printed sections of one document, and the layout labels that belong to none."""

    where: str  # e.g. `corpus/metadata.toml, „ki-faktenblatt.txt“`, for messages
    sections: tuple[Section, ...]
    omit: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """sha256 of the map's content: part of the document's version, so an edit re-ingests."""
        content = [[s.heading, list(s.blocks)] for s in self.sections], list(self.omit)
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def load_section_maps(path: Path) -> dict[str, SectionMap]:
    """The section maps of a `metadata.toml`, by document path; {} when it has none."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # reported with its reason where the metadata is read (`load_metadata`)
    maps = {}
    for name, entry in data.items():
        if isinstance(entry, dict) and (SECTIONS_FIELD in entry or OMIT_FIELD in entry):
            maps[name] = _parse(f"{path}, „{name}“", entry)
    return maps


def _parse(where: str, entry: dict[str, object]) -> SectionMap:
    raw = entry.get(SECTIONS_FIELD)
    if not isinstance(raw, list) or not raw:
        raise SectionMapError(f"{where}: Feld „{SECTIONS_FIELD}“ muss eine Liste von Tabellen sein")
    sections = []
    for number, item in enumerate(raw, start=1):
        heading = item.get("heading") if isinstance(item, dict) else None
        blocks = item.get("blocks") if isinstance(item, dict) else None
        if not isinstance(heading, str) or not heading.strip():
            raise SectionMapError(
                f"{where}: Abschnitt {number}: Feld „heading“ fehlt oder ist leer"
            )
        if not _texts(blocks):
            raise SectionMapError(
                f"{where}: Abschnitt „{heading}“: Feld „blocks“ muss eine nichtleere Textliste sein"
            )
        sections.append(Section(heading.strip(), tuple(blocks)))  # type: ignore[arg-type]
    omit = entry.get(OMIT_FIELD, [])
    if not isinstance(omit, list) or (omit and not _texts(omit)):
        raise SectionMapError(f"{where}: Feld „{OMIT_FIELD}“ muss eine Textliste sein")
    return SectionMap(where, tuple(sections), tuple(omit))


def _texts(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and letters_key(v) for v in value)
    )


def mapped_units(text: str, blocks: Sequence[tuple[int, int]], spec: SectionMap) -> list[Page]:
    """One unit per mapped section, its blocks copied verbatim in printed order.

    `blocks` are the block spans of `text` (`ingest.chunking.blocks`). Each opening in the map
    must start exactly one block, and each block must be claimed by one opening (a section's or
    `omit`): a map that no longer fits the text fails loudly instead of misfiling passages.
    """
    keys = [letters_key(text[lo:hi]) for lo, hi in blocks]
    claimed: dict[int, str] = {}

    def claim(opening: str, owner: str) -> int:
        key = letters_key(opening)
        matches = [i for i, block in enumerate(keys) if block.startswith(key)]
        if len(matches) != 1:
            found = "keinen Block" if not matches else f"{len(matches)} Blöcke"
            raise SectionMapError(f"{spec.where}: „{opening}“ ({owner}) trifft {found}")
        if matches[0] in claimed:
            raise SectionMapError(
                f"{spec.where}: „{opening}“ ({owner}) steht schon unter {claimed[matches[0]]}"
            )
        claimed[matches[0]] = owner
        return matches[0]

    for opening in spec.omit:
        claim(opening, OMIT_FIELD)
    order = [
        (section, [claim(o, f"Abschnitt „{section.heading}“") for o in section.blocks])
        for section in spec.sections
    ]
    loose = [text[lo:hi][:40] for i, (lo, hi) in enumerate(blocks) if i not in claimed]
    if loose:
        raise SectionMapError(
            f"{spec.where}: Blöcke ohne Abschnitt: " + "; ".join(f"„{b}…“" for b in loose)
        )
    return [
        Page(
            index=index,
            text="\n\n".join(text[slice(*blocks[i])] for i in members),
            section=section.heading,
        )
        for index, (section, members) in enumerate(order)
    ]
