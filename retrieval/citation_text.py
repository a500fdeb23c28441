"""How a citation reads as text: the quote line users copy, its place and its source's age."""

from __future__ import annotations

import re

from retrieval.answers import Citation
from retrieval.passages import Passage

_SPACE = re.compile(r"\s+")
# German citation style for a source that states no year ("ohne Jahr").
NO_YEAR = "ohne Jahresangabe"


def flat(text: str) -> str:
    """Text on one line: every run of whitespace becomes a single space."""
    return _SPACE.sub(" ", text).strip()


def place(passage: Passage) -> str:
    """Where a passage lies: `S. 3`, `S. 3 (gedruckt: iv)` or the section of a text document."""
    if passage.page is not None:
        printed = f" (gedruckt: {passage.page_label})" if passage.page_label else ""
        return f"S. {passage.page}{printed}"
    if passage.section:
        return f"Abschnitt {flat(passage.section)}"
    return ""


def origin(passage: Passage) -> str:
    """Who published the source and when, as far as its metadata says: `KfW Research 2021`."""
    parts = [flat(passage.publisher or ""), str(passage.year) if passage.year else ""]
    return " ".join(p for p in parts if p)


def citation_text(citation: Citation) -> str:
    """The line „Zitat kopieren“ copies: `„quote“ (Title, Publisher Year, S. N, URL)`.

    Publisher and year appear as far as the document's metadata states them.
    """
    passage = citation.passage
    parts = [flat(passage.title)]
    for extra in (origin(passage), place(passage), passage.url or ""):
        if extra:
            parts.append(extra)
    return f"„{flat(citation.quote)}“ ({', '.join(parts)})"


def source_age(year: int | None, this_year: int) -> str:
    """How old a source is, for users judging whether it is still current."""
    if year is None:
        return NO_YEAR
    age = this_year - year
    if age <= 0:
        return f"{year} (aktuell)"
    return f"{year} (vor {age} {'Jahr' if age == 1 else 'Jahren'})"
