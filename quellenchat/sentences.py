"""German abbreviations: one list and one rule for whether a full stop ends a sentence.

The sentence splitters use it: the chunker's, over source text (`ingest.chunking`), and the
answer checker's, over what a model wrote (`retrieval.citations`), and the extractive answer's
(`retrieval.compose`).
"""

from __future__ import annotations

# Lower case, without the full stop. Any single letter („z. B.“, „S.“, „Ä.“) counts as well.
ABBREVIATIONS = frozenset(
    {
        *("a", "abb", "abs", "bspw", "bzgl", "bzw", "ca", "d", "dr", "ebd", "etc", "evtl", "f"),
        *("ff", "ggf", "ggfs", "h", "hrsg", "inkl", "insb", "jh", "max", "min", "mind", "mio"),
        *("mrd", "nr", "o", "prof", "rd", "s", "sek", "sog", "std", "str", "tab", "u", "usw"),
        *("v", "vgl", "z", "zb", "zt"),
    }
)
_OPENERS = "(„\"'»«“"


def is_abbreviation(word: str) -> bool:
    """Whether `word`, written before a full stop, is an abbreviation rather than a sentence end.

    An abbreviation from the list, any single letter, a number of at most two digits (an ordinal:
    „am 3. Mai“), or such parts joined by dots („z.B“, „d.h“, „i.d.R“). A year or a version number
    („2021“, „4.0“) ends a sentence.
    """
    token = word.strip(_OPENERS).lower()
    if "." in token:
        parts = token.split(".")
        return all(p.isalpha() and (p in ABBREVIATIONS or len(p) == 1) for p in parts)
    return token in ABBREVIATIONS or len(token) == 1 or (token.isdigit() and len(token) <= 2)


def ends_with_abbreviation(text: str) -> bool:
    """Whether `text` ends in an abbreviation and its full stop („… bzw.“, „… z. B.“)."""
    if not text.endswith("."):
        return False
    words = text[:-1].split()
    return bool(words) and is_abbreviation(words[-1])
