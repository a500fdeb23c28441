"""Answers end to end on a real store with the real embedder (extractive backend, no LLM)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quellenchat.settings import Settings
from quellenchat.storage import read_page_text
from retrieval.answering import Answerer, QuestionError, expand_follow_up, is_english
from retrieval.answers import REFUSAL, REFUSAL_EN, Answer, Evidence, Token
from retrieval.citations import normalize_for_match, quote_occurs
from retrieval.search import Searcher
from tests.helpers import MODELS_DIR, PROJECT_ROOT
from tests.retrieval.planted import INSTRUCTION, PLANTED_QUESTION


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
    # `related` holds the same passage objects as `passages` (and `search`), not bare ids.
    assert data["related"] == [p.to_json() for p in answer.related]
    assert {"id", "title", "page", "url", "text"} <= set(data["related"][0])


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
    events = list(Answerer(planted_store).stream(PLANTED_QUESTION))
    evidence, answer = events[0], events[-1]
    assert isinstance(evidence, Evidence)
    assert isinstance(answer, Answer)
    planted = next(q for q in evidence.quotes if q.passage.source == "hinweis.txt")
    assert INSTRUCTION in planted.quote  # the instruction is part of the evidence …
    # … yet the answer is what it would be without it: the planted passage's answering sentence,
    # verbatim and cited, and nothing the instruction asked for.
    assert not answer.refused
    assert answer.notice is None
    assert answer.answer.startswith(
        "KI im Kundenservice: KI-Chatbots beantworten Standardanfragen rund um die Uhr und "
        f"entlasten so die Beschäftigten. [{planted.n}]"
    )
    assert "PWNED" not in answer.answer
    assert planted in answer.citations
    assert all(c.verified for c in answer.citations)


def run_ask(store: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m retrieval ask ARGS --store STORE` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "retrieval", "ask", *args, "--store", str(store.store)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
        env={**os.environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR), **env},
    )


def test_cli_ask_json_shape(fact_sheet_store: Settings) -> None:
    result = run_ask(
        fact_sheet_store, "Welche Chancen bietet KI?", "--backend", "extractive", "--json"
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
            "llm_lists": "model",
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


def test_cli_questions_file_gives_json_lines_in_order_despite_a_bad_line(
    fact_sheet_store: Settings, tmp_path: Path
) -> None:
    questions = [
        "Wie viele KMU nutzen KI?",
        "Warum " * 500,  # too long: this line fails, the others are answered
        "",  # blank lines are skipped
        "Wie hoch ist der Mindestlohn in Deutschland?",
        "Welche Chancen bietet KI für KMU?",
    ]
    file = tmp_path / "fragen.txt"
    file.write_text("\n".join(questions) + "\n", encoding="utf-8")

    result = run_ask(fact_sheet_store, "--questions", str(file), "--backend", "extractive")

    assert result.returncode == 1  # partly failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == [questions[0], questions[1], *questions[3:]]
    assert "15%" in lines[0]["answer"]
    assert lines[0]["citations"]
    assert set(lines[1]) == {"question", "line", "error"}
    assert lines[1]["line"] == 2
    assert "zu lang" in lines[1]["error"]
    assert lines[2]["refused"] is True
    assert lines[3]["citations"]
    # Each question on its own: no history carried over.
    assert all(
        line.get("standalone_question", line["question"]) == line["question"] for line in lines
    )
    assert "Zeile 2" in result.stderr


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, list[socket.socket]]]:
    """An "OpenAI-compatible" endpoint that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # read nothing, answer nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def _silent(store: Settings, url: str, **update: Any) -> Settings:
    """The store's settings with the silent endpoint as the OpenAI-compatible backend."""
    return store.model_copy(
        update={"openai_base_url": url, "openai_model": "stumm", "llm_timeout": 2.0, **update}
    )


def test_hanging_llm_times_out_to_extractive_with_a_notice(
    fact_sheet_store: Settings,
    searcher: Searcher,
    silent_endpoint: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = silent_endpoint
    settings = _silent(fact_sheet_store, url, llm_lists="model")
    answer = Answerer(settings, searcher=searcher).ask(
        "Welche Chancen bietet KI?", backend="openai"
    )
    assert accepted  # the endpoint was asked, and kept silent
    assert not answer.refused
    assert answer.backend == "extractive"
    assert answer.notice is not None
    assert "openai" in answer.notice
    assert "nicht innerhalb von 2 s" in answer.notice
    assert answer.citations
    assert all(c.verified for c in answer.citations)


def test_a_listed_section_answers_a_list_question_without_the_model(
    fact_sheet_store: Settings,
    searcher: Searcher,
    silent_endpoint: tuple[str, list[socket.socket]],
) -> None:
    # The section's items verbatim, under the backend asked for: no wait, no fallback notice.
    url, accepted = silent_endpoint
    settings = _silent(fact_sheet_store, url)
    answer = Answerer(settings, searcher=searcher).ask(
        "Welche Herausforderungen gibt es beim Einsatz von KI?", backend="openai"
    )
    assert not accepted  # the model was never asked
    assert answer.backend == "openai"
    assert answer.notice is None
    assert answer.answer.count("\n- ") >= 3, answer.answer
    for point in ("Know-how", "Datenschutz", "Innovationsdruck"):
        assert point in answer.answer, point
    assert all(c.verified for c in answer.citations)
