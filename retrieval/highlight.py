"""Key sentences: the sentence(s) of a passage that best answer the question.

Sentence spans are computed at ingest (`Chunk.sentences`) and their analysed terms once per
store snapshot; per query they are only scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Span = tuple[int, int]
MAX_KEY_SENTENCES = 2
# A second sentence is highlighted only when it scores at least this share of the best one.
SECOND_SHARE = 0.6
NUMBER_BONUS = 1.0
_QUANTITY_RE = re.compile(
    r"\b(wie viele|wie viel|wieviele|wie hoch|wie groß|welche[nr]? anteil|anteil|prozent|quote"
    r"|how many|how much|percentage|share)\b",
    re.IGNORECASE,
)


def asks_for_quantity(question: str) -> bool:
    """Whether the question asks for a number ("Wie viele …?", "Welchen Anteil …?")."""
    return bool(_QUANTITY_RE.search(question))


def key_sentences(
    query_terms: set[str],
    sentences: Sequence[Span],
    sentence_terms: Sequence[frozenset[str]],
    idf: Callable[[str], float],
    *,
    quantity: bool = False,
) -> tuple[Span, ...]:
    """The best-matching sentence spans, best first; the first sentence when nothing matches.

    A question asking for a quantity favours sentences with numbers in them by
    `NUMBER_BONUS` times the weight of its rarest term.
    """
    if not sentences:
        return ()
    bonus = NUMBER_BONUS * max((idf(t) for t in query_terms), default=0.0) if quantity else 0.0

    def score(terms: frozenset[str]) -> float:
        numeric = bonus if any(t[:1].isdigit() for t in terms) else 0.0
        return sum(idf(t) for t in query_terms & terms) + numeric

    scored = sorted(
        (-score(terms), index, span)
        for index, (span, terms) in enumerate(zip(sentences, sentence_terms, strict=True))
    )
    best = -scored[0][0]
    if best <= 0:
        return (sentences[0],)
    return tuple(span for neg, _, span in scored[:MAX_KEY_SENTENCES] if -neg >= best * SECOND_SHARE)
