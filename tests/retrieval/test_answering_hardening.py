"""Over-long histories and English abbreviations (issue #17), through the real bundled model."""

from __future__ import annotations

import pytest

from quellenchat.settings import Settings
from retrieval.answering import Answerer, german_terms, history_text
from retrieval.search import Searcher

LLM = {"llm_backend": "local", "llm_max_tokens": 60, "llm_threads": 2, "llm_context": 2048}
# Words of a long first turn: ~8,000 characters, far more than the model's context holds.
FILLER = " ".join(f"Abschnitt{n} über Förderprogramme und Digitalisierung" for n in range(160))


def test_history_keeps_the_newest_turns_that_fit_and_bounds_every_byte() -> None:
    history = [(f"Frage {n} " + "Größenänderung " * 100, f"Antwort {n}") for n in range(5)]
    text = history_text(history, 10_000)
    assert "Frage 1" not in text  # at most three turns
    assert text.index("Frage 2") < text.index("Frage 3") < text.index("Frage 4")
    assert all(len(line) < 400 for line in text.splitlines())  # each shortened
    small = history_text(history, 400)
    assert "Frage 4" in small
    assert "Frage 3" not in small  # the oldest go first
    assert len(small.encode()) <= 400
    assert history_text(history, 10) == ""


def test_english_abbreviations_become_the_german_ones_of_the_sources() -> None:
    assert german_terms("Wie viele SMEs nutzen bereits AI?") == "Wie viele KMU nutzen bereits KI?"
    assert german_terms("Nutzt ein SME AI-Systeme?") == "Nutzt ein KMU KI-Systeme?"
    assert german_terms("Wie viele KMU nutzen KI?") == "Wie viele KMU nutzen KI?"
    assert german_terms("TRAINING für Mainzer") == "TRAINING für Mainzer"


@pytest.fixture(scope="module")
def answerer(fact_sheet_store: Settings, searcher: Searcher) -> Answerer:
    return Answerer(fact_sheet_store.model_copy(update=LLM), searcher=searcher)


@pytest.mark.slow
def test_an_over_long_history_is_trimmed_and_the_model_still_answers(answerer: Answerer) -> None:
    first = "Wie viele Unternehmen sehen einen negativen Einfluss von KI auf die Umwelt?"
    history = [
        (FILLER, FILLER),
        (FILLER + " noch einmal", "Dazu enthalten die Quellen keine Aussage."),
        (first, answerer.ask(first).answer),
    ]
    answer = answerer.ask("Und wie viele einen positiven?", history=history)
    assert answer.backend == "local", answer.notice
    assert answer.notice is None
    assert not answer.refused
    assert "positiv" in answer.standalone_question.lower()


@pytest.mark.slow
def test_an_english_question_with_smes_and_ai_is_answered(answerer: Answerer) -> None:
    answer = answerer.ask("How many SMEs already use AI?")
    assert not answer.refused, answer.standalone_question
    assert "KMU" in answer.standalone_question
    assert "KI" in answer.standalone_question
    assert answer.citations
    assert all(c.verified for c in answer.citations)
