"""The rerank stage: ordering on fixed scores, and a real CrossEncoder inside search."""

from __future__ import annotations

from pathlib import Path

from quellenchat.settings import Settings
from retrieval.passages import Passage
from retrieval.rerank import ScoringReranker, make_reranker
from retrieval.search import Searcher
from tests.helpers import MODELS_DIR


def _passage(pid: str, text: str) -> Passage:
    return Passage(pid, "s", "t", text, 0.5, 0.5, "d", 0, 0, len(text))


def test_scoring_reranker_orders_by_score_and_keeps_ties_stable() -> None:
    scores = {"a": 0.1, "b": 0.9, "c": 0.1}
    reranker = ScoringReranker(lambda pairs: [scores[text] for _, text in pairs])
    ranked = reranker.rerank("frage", [_passage("1", "a"), _passage("2", "b"), _passage("3", "c")])
    assert [p.id for p in ranked] == ["2", "1", "3"]
    assert ranked[0].score == 0.9
    assert ranked[0].similarity == 0.5  # the absolute similarity stays for refusal decisions
    assert reranker.rerank("frage", []) == []


def test_no_reranker_by_default() -> None:
    assert make_reranker(Settings()) is None


def test_configured_cross_encoder_runs_inside_search(fact_sheet_store: Settings) -> None:
    # No cross-encoder with trained weights ships offline: the converted e5 folder loads as a
    # CrossEncoder with an untrained head, which exercises the real loading and scoring path.
    folder = Path(MODELS_DIR) / "multilingual-e5-small"
    settings = fact_sheet_store.model_copy(update={"reranker": str(folder), "rerank_candidates": 5})
    searcher = Searcher(settings)
    passages = searcher.search("Warum fehlt vielen Firmen das Vertrauen in KI?", k=5)
    assert len(passages) == 5
    assert all(p.similarity > 0 for p in passages)
    plain = Searcher(fact_sheet_store).search("Warum fehlt vielen Firmen das Vertrauen in KI?", k=5)
    assert [p.score for p in passages] != [p.score for p in plain]  # the cross-encoder scored
