"""The composers behind one interface: the extractive one, and a model's with its claims checked.

The model here is a stand-in that replays a fixed reply: what is under test is what the composer
does with any reply (mapping, checking, falling back), not the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from retrieval.answers import REFUSAL, Answer, Citation, Evidence, Progress, StreamEvent, Token
from retrieval.citations import UNSUPPORTED_MARK
from retrieval.composers import (
    ComposeFailure,
    Composer,
    ExtractiveComposer,
    ModelComposer,
    ModelSession,
    evidence_for_model,
)
from retrieval.evidence import EvidenceBuilder, Prepared
from retrieval.passages import Passage
from tests.retrieval.answer_factory import make_citation, make_passage

PAGE = (
    "Förderung im Handwerk. Die Förderquote beträgt 50 Prozent der förderfähigen Ausgaben. "
    "Gefördert werden Beratung und Umsetzung."
)


@dataclass
class _Searcher:
    """Page text only: the composers read nothing else of the search (no store here)."""

    def page_text(self, doc_sha: str, unit: int) -> str | None:
        return PAGE


@dataclass
class _Chunk:
    content: str


@dataclass
class _Reservation:
    position: int = 0
    remaining: float = 60.0
    waits: list[float] = field(default_factory=list)

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return True


@dataclass
class _Model:
    """Replays `reply` token by token, or raises `error`; records what it was asked."""

    reply: str = ""
    error: Exception | None = None
    asked: list[Any] = field(default_factory=list)

    def stream(self, messages: Any, stop: Sequence[str], reservation: Any) -> Iterator[_Chunk]:
        self.asked.append(messages)
        if self.error is not None:
            raise self.error
        for word in self.reply.split(" "):
            yield _Chunk(word + " ")


def _prepared(*, refused: bool = False, kind: str = "number") -> Prepared:
    passage = make_passage(PAGE, highlights=((23, 86),))
    quote = make_citation(passage, "Die Förderquote beträgt 50 Prozent der förderfähigen Ausgaben.")
    question = "Wie hoch ist die Förderquote im Handwerk?"
    return Prepared(
        question, question, False, (passage,), (quote,), refused, question, cast(Any, kind)
    )


def _keyed(text: str, first: str, last: str) -> tuple[tuple[int, int], Passage, Citation]:
    """A passage whose key sentence runs from `first` to the end of `last`, quoted as such."""
    span = text.index(first), text.index(last) + len(last)
    passage = make_passage(text, highlights=(span,))
    return span, passage, make_citation(passage, text[span[0] : span[1]])


def _extractive(backend: str = "extractive") -> ExtractiveComposer:
    evidence = EvidenceBuilder(cast(Any, _Searcher()), 5, 0.0)
    return ExtractiveComposer(evidence, _Searcher().page_text, backend)


def _model_composer(model: _Model) -> ModelComposer:
    session = ModelSession("local", model, _Reservation(), 60.0)
    return ModelComposer(session, lambda evidence, question: ["prompt"], _extractive("local"))


def _answer(composer: Composer, prepared: Prepared) -> tuple[list[StreamEvent], Answer]:
    events = list(composer.compose(prepared))
    assert isinstance(events[-1], Answer)
    return events, events[-1]


def test_both_composers_refuse_refused_evidence_without_asking_the_model() -> None:
    model = _Model(reply="Die Förderquote beträgt 50 Prozent [1].")
    for composer in (_extractive(), _model_composer(model)):
        events, answer = _answer(composer, _prepared(refused=True))
        assert answer.refused
        assert answer.answer == REFUSAL
        assert not answer.citations
        assert len(events) == 1
    assert model.asked == []


def test_the_extractive_composer_quotes_the_sentence_with_the_figure() -> None:
    events, answer = _answer(_extractive(), _prepared())
    assert isinstance(events[0], Token)
    assert events[0].text == answer.answer
    assert "50 Prozent" in answer.answer
    assert "[1]" in answer.answer
    assert answer.backend == "extractive"
    assert answer.citations[0].verified


def test_a_supported_model_sentence_stays_with_its_citation() -> None:
    model = _Model(reply="Die Förderquote beträgt 50 Prozent der förderfähigen Ausgaben [1].")
    events, answer = _answer(_model_composer(model), _prepared())
    assert any(isinstance(e, Progress) and e.stage == "generating" for e in events)
    assert [e.text for e in events if isinstance(e, Token)]  # streamed as it came
    assert "50 Prozent" in answer.answer
    assert answer.unsupported == ()
    assert answer.backend == "local"
    assert [c.n for c in answer.citations] == [1]


def test_an_invented_figure_is_never_shown_as_a_plain_cited_claim() -> None:
    model = _Model(reply="Die Förderquote beträgt 10 Prozent der Gesamtkosten [1].")
    _, answer = _answer(_model_composer(model), _prepared())
    assert "10 Prozent der Gesamtkosten [1]" not in answer.answer
    shown_as_supported = "10 Prozent" in answer.answer and UNSUPPORTED_MARK not in answer.answer
    assert not shown_as_supported
    if answer.citations:  # replaced by the passage's own sentence
        assert "50 Prozent" in answer.answer


def test_an_answer_without_citations_becomes_the_extractive_one_under_the_models_name() -> None:
    model = _Model(reply="Das ist eine gute Frage.")
    _, answer = _answer(_model_composer(model), _prepared())
    assert "50 Prozent" in answer.answer
    assert answer.notice
    assert "nicht belegt" in answer.notice
    assert answer.backend == "local"


def test_a_failing_model_raises_compose_failure_for_the_caller_to_fall_back() -> None:
    model = _Model(error=ConnectionError("Verbindung abgelehnt"))
    with pytest.raises(ComposeFailure, match="Verbindung abgelehnt"):
        list(_model_composer(model).compose(_prepared()))


def test_a_request_waiting_too_long_for_its_turn_fails() -> None:
    @dataclass
    class Late(_Reservation):
        def wait(self, timeout: float) -> bool:
            self.remaining -= timeout
            self.position = 2
            return False

    session = ModelSession("local", _Model(reply="x"), Late(remaining=0.5), 0.5)
    composer = ModelComposer(session, lambda evidence, question: [], _extractive("local"))
    events: list[StreamEvent] = []
    stream = composer.compose(_prepared())
    with pytest.raises(ComposeFailure, match="noch nicht an der Reihe"):
        events.extend(stream)
    assert any(isinstance(e, Progress) and e.stage == "queued" and e.position == 2 for e in events)


def test_the_model_reads_what_the_evidence_gives_it() -> None:
    seen: list[tuple[Any, Any]] = []
    model = _Model(reply="Die Förderquote beträgt 50 Prozent [1].")
    session = ModelSession("local", model, _Reservation(), 60.0)

    def messages(evidence: Any, question: Any) -> list[Any]:
        seen.append((evidence, question))
        return ["prompt"]

    list(ModelComposer(session, messages, _extractive("local")).compose(_prepared()))
    evidence, question = seen[0]
    assert question == "Wie hoch ist die Förderquote im Handwerk?"
    assert [q.n for q in evidence.quotes] == [1]
    assert model.asked == [["prompt"]]


def test_the_quote_shown_holds_the_models_claim() -> None:
    # The evidence quotes the Förderquote sentence; the claim also rests on the next sentence.
    model = _Model(reply="Gefördert werden Beratung und Umsetzung mit 50 Prozent [1].")
    _, answer = _answer(_model_composer(model), _prepared())
    (citation,) = answer.citations
    assert answer.notice is None
    assert citation.quote == (
        "Die Förderquote beträgt 50 Prozent der förderfähigen Ausgaben. "
        "Gefördert werden Beratung und Umsetzung."
    )
    assert citation.verified
    assert citation.quote_span is not None
    a, b = citation.quote_span
    assert citation.passage.text[a:b] == citation.quote


def test_the_model_reads_the_figure_the_extractive_answer_would_give_first() -> None:
    # The best passage's figure counts those who do not use AI; the question asks who does.
    negated = "40 % der Mittelständler setzen weder KI ein noch planen sie deren Einsatz."
    counting = "Studien deuten auf einen Anteil von bis zu 15 % der KMU mit steigender Tendenz."
    first = make_passage(negated, id="p1", score=0.9, highlights=((0, len(negated)),))
    second = make_passage(counting, id="p2", score=0.89, highlights=((0, len(counting)),))
    quotes = (make_citation(first, negated, 1), make_citation(second, counting, 2))
    question = "Wie viele KMU setzen KI ein?"
    evidence = Evidence(question, question, (first, second), quotes, False)
    builder = EvidenceBuilder(cast(Any, _Searcher()), 5, 0.0)

    read = evidence_for_model(evidence, builder.matcher)

    # Only the piece the extractive answer leads with: the counting figure, not the best rank.
    assert [q.n for q in read] == [2]
    assert read[0].quote == counting
    # A question of another kind reads the key quotes in the search's order.
    other = Evidence("Was hemmt KMU?", "Was hemmt KMU?", (first, second), quotes, False)
    assert [q.n for q in evidence_for_model(other, builder.matcher)] == [1, 2]


def test_a_number_answer_without_a_figure_becomes_the_extractive_one() -> None:
    model = _Model(reply="Gefördert wird nach den förderfähigen Ausgaben [1].")  # no figure
    _, answer = _answer(_model_composer(model), _prepared(kind="number"))
    assert "50 Prozent" in answer.answer
    assert answer.notice is not None
    assert "keine Zahl" in answer.notice
    assert answer.backend == "local"
    # A figure from the passage stays the model's answer.
    model = _Model(reply="Die Förderquote beträgt 50 Prozent [1].")
    _, answer = _answer(_model_composer(model), _prepared(kind="number"))
    assert answer.notice is None


def test_a_failed_model_sentence_is_replaced_by_what_the_model_read() -> None:
    # The sentence closest to the claim's words is the 12 % one; the model read the 15 % one.
    text = (
        "• Studien deuten auf einen Anteil von bis zu 15 % (KfW 2021: 4 % - 6 %) mit "
        "steigender Tendenz (KI-Monitor 2021).\n\n• KI wird im Mittelstand vorrangig in "
        "Unternehmen eingesetzt, die investieren (12 %)."
    )
    lead, passage, quote = _keyed(text, "Studien", "2021).")
    question = "Wie verbreitet ist KI im Mittelstand?"
    prepared = Prepared(question, question, False, (passage,), (quote,), False, question, "number")
    model = _Model(reply="KI ist im Mittelstand zu bis zu 15 % verbreitet [1].")  # not held

    _, answer = _answer(_model_composer(model), prepared)

    assert answer.answer.startswith("Studien deuten auf einen Anteil von bis zu 15 %")
    assert "12 %" not in answer.answer
    assert answer.notice is None
    assert answer.citations[0].quote_span == lead


def test_a_heading_alone_reaches_the_model_as_the_sections_items() -> None:
    text = (
        "Digitale Mindestanforderungen\n\n• Die Entwicklung von KI-Anwendungen setzt die "
        "digitale Erfassung von Daten voraus.\n\n• Technische Infrastruktur wie Rechnerkapazitäten."
    )
    heading = (0, len("Digitale Mindestanforderungen"))
    passage = make_passage(text, highlights=(heading,), section="Digitale Mindestanforderungen")
    quote = make_citation(passage, "Digitale Mindestanforderungen")
    question = "Was braucht man mindestens für KI?"  # a fact question: the key quotes go
    prepared = Prepared(question, question, False, (passage,), (quote,), False, question, "fact")
    builder = EvidenceBuilder(cast(Any, _Searcher()), 5, 0.0)

    (read,) = evidence_for_model(prepared.evidence(), builder.matcher)
    assert "digitale Erfassung von Daten" in read.quote
    assert "Rechnerkapazitäten" in read.quote
    # The model's sentences are mapped against what it read: the second item, copied without
    # a mark, still gets its source instead of „nicht belegt“.
    model = _Model(
        reply="- Die Entwicklung von KI-Anwendungen setzt die digitale Erfassung von Daten "
        "voraus [1].\n- Technische Infrastruktur wie Rechnerkapazitäten."
    )
    _, answer = _answer(_model_composer(model), prepared)
    assert answer.unsupported == ()
    assert "Rechnerkapazitäten [1]" in answer.answer


def test_a_why_question_reaches_the_model_with_the_reason_after_its_restatement() -> None:
    # The search's key sentence restates the question; the reason is the bullet's next
    # sentence. The model reads what the extractive answer would show, not the key sentence.
    text = (
        "• 40% der Mittelständler setzen weder KI-Technologien ein noch planen sie deren "
        "Einsatz. Insbesondere kleinere Unternehmen erkennen häufig noch nicht den Nutzen, den "
        "KI-basierte Lösungen für ihren Betrieb versprechen. Konkrete Anwendungsfälle sind "
        "ihnen oft nicht bekannt (BVMW/Gemeinsam digital 2020). Weitere Erhebungen von "
        "Verbänden, Kammern und Instituten kommen zu ähnlichen Ergebnissen."
    )
    _, passage, quote = _keyed(text, "Insbesondere", "versprechen.")
    question = "Warum sehen kleinere Betriebe oft keinen Nutzen in KI?"
    evidence = Evidence(question, question, (passage,), (quote,), False)
    builder = EvidenceBuilder(cast(Any, _Searcher()), 5, 0.0)

    (read,) = evidence_for_model(evidence, builder.matcher)

    assert read.quote.startswith("Insbesondere kleinere Unternehmen")
    assert read.quote.endswith("(BVMW/Gemeinsam digital 2020).")


def test_what_the_model_leaves_out_of_the_extractive_answer_is_appended_verbatim() -> None:
    # Two passages answer; the small model names only the second one's fields.
    logistics = (
        "Einsatzpotenziale finden sich in der Logistik (z. B. Lagerhaltung, Sortierung, "
        "Planungstools, autonome Roboter)."
    )
    fields = "Denkbare KI-Anwendungsfelder umfassen Sensorik, Robotik und Dokumentenanalyse."
    first = make_passage(logistics, id="p1", score=0.9, highlights=((0, len(logistics)),))
    second = make_passage(fields, id="p2", score=0.89, highlights=((0, len(fields)),))
    quotes = (make_citation(first, logistics, 1), make_citation(second, fields, 2))
    question = "Wie kann KI uns in der Logistik helfen?"
    prepared = Prepared(
        question, question, False, (first, second), quotes, False, question, "howto"
    )
    model = _Model(reply="KI kann bei Sensorik, Robotik und Dokumentenanalyse helfen [2].")

    _, answer = _answer(_model_composer(model), prepared)

    assert answer.answer.startswith("KI kann bei Sensorik, Robotik und Dokumentenanalyse")
    assert f"{logistics} [1]" in answer.answer  # verbatim, with its own mark
    assert sorted(c.n for c in answer.citations) == [1, 2]
    assert all(c.verified for c in answer.citations)
    assert answer.unsupported == ()
    # After a model sentence without its own full stop, the piece starts a line of its own:
    # run on, the two would read (and be checked) as one sentence.
    label = "Lernende Systeme (2021): KI im Mittelstand – Potenziale erkennen"  # no stop
    third = make_passage(label, id="p3", score=0.9, highlights=((0, len(label)),))
    with_label = dataclasses.replace(
        prepared, passages=(first, third), quotes=(quotes[0], make_citation(third, label, 2))
    )
    _, answer = _answer(_model_composer(_Model(reply=f"{label} [2]")), with_label)
    assert answer.answer == f"{label} [2]\n{logistics} [1]"
    # An answer that already holds every piece stays as the model wrote it.
    whole = _Model(reply=f"{logistics} [1] {fields} [2]")
    _, answer = _answer(_model_composer(whole), prepared)
    assert answer.answer.count("Lagerhaltung") == 1
    assert answer.answer.count("Dokumentenanalyse") == 1


def test_the_local_models_refusal_of_found_evidence_shows_the_quotes_with_a_notice() -> None:
    model = _Model(reply=REFUSAL)
    _, answer = _answer(_model_composer(model), _prepared())
    assert not answer.refused
    assert "50 Prozent" in answer.answer
    assert answer.notice is not None
    assert "keine Antwort" in answer.notice
    assert answer.backend == "local"
    # Another backend's refusal stands.
    session = ModelSession("openai", _Model(reply=REFUSAL), _Reservation(), 60.0)
    composer = ModelComposer(session, lambda evidence, question: ["prompt"], _extractive("openai"))
    _, answer = _answer(composer, _prepared())
    assert answer.refused
    assert answer.answer == REFUSAL
