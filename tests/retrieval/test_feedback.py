"""Feedback lines: what they hold, what they never hold, and their retention."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retrieval.answers import Answer
from retrieval.feedback import FeedbackEntry, FeedbackError, FeedbackStore, clean_comment
from tests.retrieval.answer_factory import make_answer, make_citation, make_passage

NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


def _answer() -> Answer:
    passage = make_passage("KMU sind beim Einsatz von KI noch zurückhaltend.")
    return make_answer("Wie viele KMU nutzen KI?", (make_citation(passage, passage.text),))


def test_entry_holds_question_answer_passages_backend_time_and_nothing_personal(
    tmp_path: Path,
) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl", retention_days=180)
    store.append(FeedbackEntry.build("nicht_hilfreich", _answer(), NOW, "zu kurz"), now=NOW)
    [line] = (tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["question"] == "Wie viele KMU nutzen KI?"
    assert entry["answer"].endswith("[1]")
    assert entry["passage_ids"] == ["p1"]
    assert entry["backend"] == "extractive"
    assert entry["time"] == "2025-11-25T12:00:00+00:00"
    assert entry["kind"] == "nicht_hilfreich"
    assert entry["comment"] == "zu kurz"
    assert set(entry) == {
        "time", "kind", "question", "answer", "passage_ids", "backend", "comment",
        "citation", "quote", "cited_passage_id",
    }  # fmt: skip


def test_wrong_quote_names_the_citation_and_unknown_numbers_are_refused() -> None:
    entry = FeedbackEntry.build("zitat_falsch", _answer(), NOW, None, citation=1)
    assert (entry.citation, entry.cited_passage_id) == (1, "p1")
    assert entry.quote == "KMU sind beim Einsatz von KI noch zurückhaltend."
    with pytest.raises(FeedbackError, match=r"kein Zitat \[7\]"):
        FeedbackEntry.build("zitat_falsch", _answer(), NOW, None, citation=7)


def test_comment_loses_control_characters_and_empty_becomes_none() -> None:
    assert clean_comment("gut\x00\x1b[31m gemacht\n") == "gut  [31m gemacht"
    assert clean_comment("   ") is None
    assert len(clean_comment("x" * 5000) or "") == 2000


def test_prune_drops_entries_past_retention_and_keeps_the_rest(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl", retention_days=30)
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    store.append(FeedbackEntry.build("hilfreich", _answer(), old), now=old)
    store.append(FeedbackEntry.build("nicht_hilfreich", _answer(), recent), now=recent)
    assert store.prune(now=NOW) == 1
    assert [e["kind"] for e in store.read()] == ["nicht_hilfreich"]


def test_append_prunes_on_its_own(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl", retention_days=1)
    old = NOW - timedelta(days=3)
    store.append(FeedbackEntry.build("hilfreich", _answer(), old), now=old)
    store.append(FeedbackEntry.build("nicht_hilfreich", _answer(), NOW), now=NOW)
    assert [e["kind"] for e in store.read()] == ["nicht_hilfreich"]


def test_concurrent_appends_keep_every_line_whole(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl", retention_days=180)
    entry = FeedbackEntry.build("hilfreich", _answer(), NOW, "x" * 3000)

    def write() -> None:
        for _ in range(25):
            store.append(entry, now=NOW)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.read()) == 200
