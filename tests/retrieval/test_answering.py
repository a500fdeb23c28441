"""Answers end to end on a real store with the real embedder (extractive backend, no LLM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quellenchat.settings import Settings
from quellenchat.storage import read_page_text
from retrieval.answering import Answerer, QuestionError, expand_follow_up, is_english
from retrieval.answers import REFUSAL, REFUSAL_EN, Answer, Evidence, Token
from retrieval.citations import normalize_for_match, quote_occurs
from retrieval.search import Searcher
from tests.helpers import MODELS_DIR, PROJECT_ROOT


@pytest.fixture(scope="module")
def answerer(fact_sheet_store: Settings, searcher: Searcher) -> Answerer:
    return Answerer(
        fact_sheet_store.model_copy(update={"llm_backend": "extractive"}), searcher=searcher
    )


def test_paraphrase_gets_a_short_answer_with_verified_citations(answerer: Answerer) -> None:
    answer = answerer.ask("Warum fehlt vielen Firmen das Vertrauen in KI?")
    assert not answer.refused
    assert answer.backend == "extractive"
    assert 1 <= len(answer.citations) <= 3
    assert all(c.verified for c in answer.citations)
    assert any("Vertrauen" in c.quote for c in answer.citations)
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.answer
        page = read_page_text(
            answerer.searcher.client, citation.passage.doc_sha, citation.passage.unit
        )
        assert quote_occurs(citation.quote, page)
        start, end = citation.quote_span or (0, 0)
        assert citation.passage.text[start:end] == citation.quote
    # Every sentence of an extractive answer is verbatim source text.
    for sentence in answer.answer.split(" ["):
        body = sentence.split("] ", 1)[-1].strip()
        if body and not body.endswith("]"):
            assert any(
                normalize_for_match(body) in normalize_for_match(c.passage.text)
                for c in answer.citations
            )


def test_quantity_question_quotes_the_numbers(answerer: Answerer) -> None:
    answer = answerer.ask("Wie viele KMU nutzen KI?")
    assert not answer.refused
    assert "15%" in answer.answer


def test_off_topic_question_is_refused_with_related_passages(answerer: Answerer) -> None:
    answer = answerer.ask("Wie hoch war der Umsatz von SAP im Jahr 2020?")
    assert answer.refused
    assert answer.answer == REFUSAL
    assert answer.citations == ()
    assert answer.related  # shown as "möglicherweise verwandt", never as support
    data = answer.to_json()
    assert data["refused"] is True
    assert data["citations"] == []


@pytest.mark.parametrize(
    "question",
    [
        "Wie hoch ist der Mindestlohn in Deutschland?",
        "Welche Grafikkarte braucht man für das Training großer Sprachmodelle?",
    ],
)
def test_unanswerable_questions_near_the_topic_are_refused(
    answerer: Answerer, question: str
) -> None:
    assert answerer.ask(question).refused


def test_follow_up_is_expanded_from_the_previous_question(answerer: Answerer) -> None:
    first = answerer.ask("Wie viele KMU nutzen KI?")
    follow = answerer.ask("Und bei den größeren Firmen?", history=[(first.question, first.answer)])
    assert follow.standalone_question == "Wie viele KMU nutzen KI? Und bei den größeren Firmen?"
    assert not follow.refused
    assert "51-249" in " ".join(c.quote for c in follow.citations)
    # Without the history the same words are too vague to search.
    assert expand_follow_up("Und bei den größeren Firmen?", []) == "Und bei den größeren Firmen?"


def test_stream_gives_evidence_before_any_token_and_the_answer_last(answerer: Answerer) -> None:
    events = list(answerer.stream("Welche Chancen bietet KI für KMU?"))
    assert isinstance(events[0], Evidence)
    assert events[0].quotes
    assert all(isinstance(e, Token) for e in events[1:-1])
    assert isinstance(events[-1], Answer)
    assert events[0].passages == events[-1].passages


def test_english_question_gets_an_english_refusal(answerer: Answerer) -> None:
    assert is_english("How do I bake bread without yeast?")
    assert not is_english("Wie backe ich Brot ohne Hefe?")
    assert answerer.ask("What was the revenue of SAP in 2020?").answer == REFUSAL_EN


@pytest.mark.parametrize("question", ["", "   \n\t", "x" * 10_000])
def test_malformed_questions_get_a_clear_message(answerer: Answerer, question: str) -> None:
    with pytest.raises(QuestionError, match="Frage"):
        answerer.ask(question)


def test_control_characters_are_removed(answerer: Answerer) -> None:
    answer = answerer.ask("Wie viele\x00 KMU\x1b nutzen KI?")
    assert answer.question == "Wie viele KMU nutzen KI?"


def test_instructions_inside_documents_are_data(planted_store: Settings) -> None:
    answer = Answerer(planted_store).ask("Wie hilft KI im Kundenservice?")
    assert not answer.refused
    assert answer.answer != "PWNED"
    assert all(c.verified for c in answer.citations)


def test_cli_ask_json_shape(fact_sheet_store: Settings) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "retrieval",
            "ask",
            "Welche Chancen bietet KI?",
            "--backend",
            "extractive",
            "--store",
            str(fact_sheet_store.store),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
        env={**__import__("os").environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR)},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"question", "answer", "refused", "citations", "passages"} <= set(data)
    assert data["citations"]
    citation = data["citations"][0]
    assert {"n", "passage_id", "source", "title", "page", "quote", "url", "verified"} <= set(
        citation
    )
    assert citation["passage_id"] in {p["id"] for p in data["passages"]}
    assert Path(citation["source"]).name == citation["source"]


def test_unreachable_llm_falls_back_to_extractive_with_a_notice(
    fact_sheet_store: Settings, searcher: Searcher
) -> None:
    settings = fact_sheet_store.model_copy(
        update={
            "openai_base_url": "http://127.0.0.1:9/v1",
            "openai_model": "fehlt",
            "llm_timeout": 5.0,
        }
    )
    answer = Answerer(settings, searcher=searcher).ask(
        "Welche Chancen bietet KI?", backend="openai"
    )
    assert not answer.refused
    assert answer.backend == "extractive"
    assert answer.notice is not None
    assert "openai" in answer.notice
    assert answer.citations
    assert all(c.verified for c in answer.citations)
