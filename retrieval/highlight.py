"""Key sentences: the sentence(s) of a passage that best answer the question.

Sentence spans are computed at ingest (`Chunk.sentences`) and their analysed terms once per
store snapshot; per query they are only scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Span = tuple[int, int]
MAX_KEY_SENTENCES = 2
# A second sentence is highlighted only when it scores at least this share of the best one.
SECOND_SHARE = 0.6


def key_sentences(
    query_terms: set[str],
    sentences: Sequence[Span],
    sentence_terms: Sequence[frozenset[str]],
    idf: Callable[[str], float],
) -> tuple[Span, ...]:
    """The best-matching sentence spans, best first; the first sentence when nothing matches."""
    if not sentences:
        return ()
    scored = sorted(
        (
            (-sum(idf(t) for t in query_terms & terms), index, span)
            for index, (span, terms) in enumerate(zip(sentences, sentence_terms, strict=True))
        ),
    )
    best = -scored[0][0]
    if best <= 0:
        return (sentences[0],)
    return tuple(span for neg, _, span in scored[:MAX_KEY_SENTENCES] if -neg >= best * SECOND_SHARE)
