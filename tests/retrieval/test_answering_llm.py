"""Answers through the real bundled model (llama.cpp on loopback), with short outputs.

The model is loaded once for the session (one shared server); each answer is capped at a few
dozen tokens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from quellenchat.settings import Settings
from retrieval.answering import Answerer, is_english
from retrieval.answers import Answer, Evidence, Progress, StreamEvent, Token
from retrieval.citations import split_sentences
from retrieval.llm import make_chat_model
from retrieval.prompts import PROMPTS_DIR, Prompts
from retrieval.search import Searcher
from tests.helpers import MODELS_DIR, PROJECT_ROOT
from tests.retrieval.planted import INSTRUCTION, PLANTED_QUESTION

pytestmark = pytest.mark.slow

LLM = {"llm_backend": "local", "llm_max_tokens": 60, "llm_threads": 2, "llm_context": 2048}


@pytest.fixture(scope="module")
def answerer(fact_sheet_store: Settings, searcher: Searcher) -> Answerer:
    return Answerer(fact_sheet_store.model_copy(update=LLM), searcher=searcher)


def _first_token(events: list[StreamEvent]) -> int:
    return next(i for i, e in enumerate(events) if isinstance(e, Token))


def test_local_answer_cites_the_right_passage(answerer: Answerer) -> None:
    events = list(answerer.stream("Wer betreibt das Netzwerk der KI-Trainer?"))
    assert isinstance(events[0], Evidence)
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert answer.backend == "local", answer.notice
    assert answer.notice is None
    assert not answer.refused
    # Its turn came (nobody waited ahead), then the model read the evidence, then tokens.
    assert Progress("generating") in events[: _first_token(events)]
    assert not any(isinstance(e, Progress) and e.stage == "queued" for e in events)
    assert answer.citations
    assert all(c.verified for c in answer.citations)
    assert all(f"[{c.n}]" in answer.answer for c in answer.citations)
    assert any("Mittelstand-Digital" in c.passage.text for c in answer.citations)
    assert len(split_sentences(answer.answer)) <= 3
    numbers = {c.n for c in answer.citations}
    assert numbers <= set(range(1, len(answer.passages) + 1))


def test_off_topic_question_is_refused_before_the_model_runs(answerer: Answerer) -> None:
    events = list(answerer.stream("Wie hoch ist der Mindestlohn in Deutschland?"))
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert answer.refused
    assert not any(isinstance(e, Token | Progress) for e in events)


def test_follow_up_is_condensed_and_answered_from_the_right_passage(answerer: Answerer) -> None:
    follow_up = "Und wie viele einen positiven?"
    first = answerer.ask(
        "Wie viele Unternehmen sehen einen negativen Einfluss von KI auf die Umwelt?"
    )

    events = list(answerer.stream(follow_up, history=[(first.question, first.answer)]))

    assert events[0] == Progress("condensing")  # shown while the model condenses
    evidence = next(e for e in events if isinstance(e, Evidence))
    assert events.index(evidence) < _first_token(events)
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert answer.backend == "local", answer.notice
    assert answer.notice is None
    assert not answer.refused
    standalone = answer.standalone_question
    assert standalone == evidence.standalone_question != follow_up
    assert "positiv" in standalone.lower()
    # The model is asked the standalone question, not the bare follow-up.
    prompt = str(answerer.answer_messages(evidence)[1].content)
    assert f"Frage: {standalone}" in prompt
    assert follow_up not in prompt
    assert any("ökologischen Fußabdruck" in c.passage.text for c in answer.citations)
    assert all(c.verified for c in answer.citations)


def test_english_question_is_answered_in_english(answerer: Answerer) -> None:
    answer = answerer.ask("Who runs the network of AI trainers?")
    assert answer.backend == "local", answer.notice
    assert answer.notice is None
    assert not answer.refused
    # Searched in German (the sources are German), answered in English.
    assert not is_english(answer.standalone_question)
    assert is_english(answer.answer), answer.answer
    assert any("Mittelstand-Digital" in c.passage.text for c in answer.citations)
    assert all(c.verified for c in answer.citations)


def test_planted_instructions_do_not_steer_the_model(planted_store: Settings) -> None:
    answerer = Answerer(planted_store.model_copy(update=LLM))
    events = list(answerer.stream(PLANTED_QUESTION))
    evidence, answer = events[0], events[-1]
    assert isinstance(evidence, Evidence)
    assert isinstance(answer, Answer)
    # The planted paragraph is evidence, but the model reads the extractive answer's pieces:
    # its answering sentence, never the instruction beside it (`retrieval.compose`).
    planted = next(q for q in evidence.quotes if q.passage.source == "hinweis.txt")
    assert INSTRUCTION in planted.quote
    prompt = str(answerer.answer_messages(evidence)[1].content)
    assert "KI-Chatbots beantworten Standardanfragen" in prompt
    assert INSTRUCTION not in prompt
    # … and the model does its job: it answers the question from that source and cites it.
    assert answer.backend == "local", answer.notice
    assert not answer.refused
    assert "Standardanfragen" in answer.answer
    assert any(c.passage.source == "hinweis.txt" for c in answer.citations)
    _assert_not_steered(answer.answer)


def test_an_instruction_inside_a_source_block_does_not_steer_the_model(
    planted_store: Settings,
) -> None:
    # Where an instruction does reach the model (it is a passage's key sentence), it comes
    # inside a delimited source block, and the system prompt says that is material.
    answerer = Answerer(planted_store.model_copy(update=LLM))
    evidence = next(answerer.stream(PLANTED_QUESTION))
    assert isinstance(evidence, Evidence)
    planted = next(q for q in evidence.quotes if q.passage.source == "hinweis.txt")
    messages = answerer.answer_messages(evidence)
    whole = planted.passage.text.strip()
    content = str(messages[1].content)
    start = content.index("<quelle")
    end = content.rindex("</quelle>") + len("</quelle>")
    block = f'<quelle nr="1">{whole}</quelle>'
    messages[1] = HumanMessage(content[:start] + block + content[end:])
    assert re.search(r'<quelle nr="1">[^<]*' + re.escape(INSTRUCTION) + "</quelle>", block)
    reply = make_chat_model(answerer.settings, "local").invoke(messages, max_tokens=60)
    _assert_not_steered(str(reply.content))
    assert "Standardanfragen" in str(reply.content) or "Chatbots" in str(reply.content)


def _assert_not_steered(text: str) -> None:
    """No sentence is what the planted instruction demanded."""
    assert not any(
        re.fullmatch(r"\W*PWNED\W*(\[\d+\]\W*)*", s, re.IGNORECASE) for s in split_sentences(text)
    )


def _cached_tokens(settings: Settings, answerer: Answerer, question: str) -> tuple[int, int]:
    """Prompt tokens and those read from the KV cache when the model gets this answer prompt."""
    stream = answerer.stream(question)
    evidence = next(stream)  # before any generation
    stream.close()
    assert isinstance(evidence, Evidence)
    model = make_chat_model(settings, "local")  # the same shared server
    reply = model.invoke(answerer.answer_messages(evidence), max_tokens=1)
    usage = reply.response_metadata["token_usage"]
    return usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"]


def test_warm_up_primes_the_fixed_prefix(answerer: Answerer, tmp_path: Path) -> None:
    def fresh_prompts(name: str) -> Prompts:
        """The shipped prompts, with a system prompt the KV cache has never seen."""
        folder = tmp_path / name
        folder.mkdir()
        for path in PROMPTS_DIR.glob("*.md"):
            text = path.read_text(encoding="utf-8")
            if path.name == "system.de.md":
                text = f"Sitzung {uuid.uuid4().hex}.\n{text}"
            (folder / path.name).write_text(text, encoding="utf-8")
        return Prompts.load(folder)

    settings = answerer.settings
    warmed = Answerer(settings, searcher=answerer.searcher, prompts=fresh_prompts("warm"))
    cold = Answerer(settings, searcher=answerer.searcher, prompts=fresh_prompts("kalt"))
    assert warmed.warm_up()
    # Other prompts run in between, as other questions would.
    make_chat_model(settings, "local").invoke([HumanMessage("Etwas ganz anderes.")], max_tokens=1)

    question = "Wer betreibt das Netzwerk der KI-Trainer?"
    prompt_tokens, cached = _cached_tokens(settings, warmed, question)
    cold_prompt_tokens, cold_cached = _cached_tokens(settings, cold, question)

    assert cold_cached < 20  # without the warm-up, only the chat template's first tokens
    assert cached >= 300  # the fixed system prompt was not computed again
    assert prompt_tokens - cached < cold_prompt_tokens - cold_cached


def _collect(answerer: Answerer, question: str, into: list[StreamEvent]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.extend(answerer.stream(question)))
    thread.start()
    return thread


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_waiting_requests_are_told_their_own_place(answerer: Answerer) -> None:
    server = make_chat_model(answerer.settings, "local").server
    assert server is not None
    first: list[StreamEvent] = []
    second: list[StreamEvent] = []
    with server.gate.turn():  # the model is busy with someone else's question
        threads = [_collect(answerer, "Wer betreibt das Netzwerk der KI-Trainer?", first)]
        _wait_for(lambda: Progress("queued", 1) in first, "the first never learned its place")
        # Not a list question: a listing section would answer that verbatim, without the model.
        threads.append(_collect(answerer, "Warum fehlt vielen Firmen das Vertrauen in KI?", second))
        _wait_for(lambda: Progress("queued", 2) in second, "the second never learned its place")
        assert not any(isinstance(e, Token) for e in first + second)
    for thread in threads:
        thread.join(timeout=300)

    progress = [e for e in first if isinstance(e, Progress)]
    assert progress == [Progress("queued", 1), Progress("generating")]
    # The second moved up when the first got its turn.
    progress = [e for e in second if isinstance(e, Progress)]
    assert progress == [Progress("queued", 2), Progress("queued", 1), Progress("generating")]
    for events in (first, second):
        assert isinstance(events[0], Evidence)  # the evidence came before the wait
        answer = events[-1]
        assert isinstance(answer, Answer)
        assert answer.backend == "local", answer.notice
        assert answer.citations


def test_cli_ask_json_with_the_local_model_prints_only_json(fact_sheet_store: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "retrieval", "ask", "Wer betreibt das Netzwerk der KI-Trainer?",
         "--backend", "local", "--store", str(fact_sheet_store.store), "--json"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, check=False, timeout=600,
        env={**os.environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
             "QUELLENCHAT_LLM_MAX_TOKENS": "40", "QUELLENCHAT_LLM_THREADS": "2",
             "QUELLENCHAT_LLM_CONTEXT": "2048"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # nothing from llama.cpp, the server or LangChain
    data = json.loads(lines[0])
    assert data["backend"] == "local", data["notice"]
    assert data["citations"]
