"""Query expansion from everyday words to the sources' terms (`thesaurus.de.toml`).

Users ask „Welche Hemmnisse …?“ where the fact sheet says „Herausforderungen“. The thesaurus
maps everyday words to the sources' terms; a key matches when all its analysed terms (German
analysis: folded, stemmed, compounds split) occur among the question's. The expansion only
feeds the lexical search: the question itself, its embedding and its highlights stay as asked.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.lexical import analyze

THESAURUS_FILE = Path(__file__).with_name("thesaurus.de.toml")


@dataclass(frozen=True)
class Thesaurus:
    """Everyday keys (as analysed term sets) and the source terms each adds to a query."""

    entries: tuple[tuple[frozenset[str], tuple[str, ...]], ...]

    @classmethod
    def from_mapping(cls, terms: Mapping[str, Sequence[str]]) -> Thesaurus:
        """Build from {everyday word or phrase: [source terms]}; keys without terms are dropped."""
        entries = []
        for key, targets in terms.items():
            analysed = frozenset(analyze(key))
            if analysed and targets:
                entries.append((analysed, tuple(targets)))
        return cls(tuple(entries))

    def expand(self, question: str) -> str:
        """The question followed by the source terms of every key it contains (each once)."""
        asked = set(analyze(question))
        added = dict.fromkeys(
            target for key, targets in self.entries if key <= asked for target in targets
        )
        return " ".join([question, *added]) if added else question


@functools.cache
def default_thesaurus() -> Thesaurus:
    """The shipped thesaurus, read once; a broken file fails with a message naming it."""
    try:
        data = tomllib.loads(THESAURUS_FILE.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuntimeError(f"{THESAURUS_FILE}: nicht lesbar ({exc})") from exc
    terms = data.get("terms")
    if not isinstance(terms, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in terms.values()
    ):
        raise RuntimeError(f"{THESAURUS_FILE}: [terms] muss Wörter auf Textlisten abbilden")
    return Thesaurus.from_mapping(terms)
