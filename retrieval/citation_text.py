"""How a citation reads as text: the quote line users copy, its place and its source's age."""

from __future__ import annotations

import re

from retrieval.answers import Citation
from retrieval.passages import Passage

_SPACE = re.compile(r"\s+")


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


def citation_text(citation: Citation) -> str:
    """The line „Zitat kopieren“ puts on the clipboard: `„quote“ (Title, S. N, URL)`."""
    passage = citation.passage
    parts = [flat(passage.title)]
    if where := place(passage):
        parts.append(where)
    if passage.url:
        parts.append(passage.url)
    return f"„{flat(citation.quote)}“ ({', '.join(parts)})"


def source_age(year: int | None, this_year: int) -> str:
    """How old a source is, for users judging whether it is still current."""
    if year is None:
        return "Jahr unbekannt"
    age = this_year - year
    if age <= 0:
        return f"{year} (aktuell)"
    return f"{year} (vor {age} {'Jahr' if age == 1 else 'Jahren'})"
