"""An optional rerank stage after fusion: a sentence-transformers CrossEncoder, when configured.

No reranker with weights ships offline, so the default is none. A user who has one (e.g.
`cross-encoder/mmarco-mMiniLMv2-L12-H384-v1`, or a local folder) names it in
`QUELLENCHAT_RERANKER`; it then reorders the best `QUELLENCHAT_RERANK_CANDIDATES` passages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from retrieval.passages import Passage

if TYPE_CHECKING:
    from quellenchat.settings import Settings

Scorer = Callable[[Sequence[tuple[str, str]]], Sequence[float]]


class Reranker(Protocol):
    """Reorders passages for a question, best first."""

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """The same passages, best first, with the reranker's score."""
        ...


class ScoringReranker:
    """A reranker over any pair scorer; the scorer's value becomes the passage score."""

    def __init__(self, score_pairs: Scorer) -> None:
        self.score_pairs = score_pairs

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """Score every (question, passage text) pair and sort by it; ties keep their order."""
        if not passages:
            return []
        scores = self.score_pairs([(question, p.text) for p in passages])
        ranked = sorted(
            zip(scores, range(len(passages)), passages, strict=True), key=lambda t: (-t[0], t[1])
        )
        return [replace(p, score=float(score)) for score, _, p in ranked]


def make_reranker(settings: Settings) -> Reranker | None:
    """The configured CrossEncoder (loaded now), or None when no reranker is set."""
    if not settings.reranker:
        return None
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(settings.reranker, device="cpu")
    return ScoringReranker(
        lambda pairs: model.predict(list(pairs), show_progress_bar=False).tolist()
    )
