"""Answers with verified citations: search, gate, then an LLM or the extractive answerer.

The order is what makes answers trustworthy: the evidence (passages and their quotes, each
verified against the stored page text) is fixed and streamed before any generation; a weak
evidence gate refuses before the model can invent; afterwards the model's `[n]` marks are
mapped back to that evidence, invented numbers dropped and uncited sentences marked.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quellenchat.storage import read_page_text
from retrieval.answers import REFUSAL, REFUSAL_EN, Answer, Citation, Evidence, StreamEvent, Token
from retrieval.citations import (
    best_sentence,
    map_citations,
    normalize_for_match,
    passage_quote,
    quote_occurs,
    split_sentences,
)
from retrieval.passages import Passage
from retrieval.prompts import Prompts
from retrieval.refusal import DEFAULT_THRESHOLD, evidence_strength

if TYPE_CHECKING:
    from quellenchat.settings import Settings
    from retrieval.search import Searcher

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
EXTRACTIVE = "extractive"
LLM_BACKENDS = ("local", "openai")
MAX_EXTRACTIVE_SENTENCES = 3
MAX_ANSWER_SENTENCES = 3
# A passage below the best one by more than this fused score adds no extractive sentence.
EXTRACTIVE_SCORE_GAP = 0.04
MAX_QUESTION_CHARS = 2000

_FOLLOW_UP_START = re.compile(
    r"^(und|aber|also|sowie|auch|dazu|davon|was ist mit|wie ist es mit|wie sieht es"
    r"|and|what about)\b",
    re.IGNORECASE,
)
_ANAPHORA = re.compile(
    r"\b(das|dies|diese[rsmn]?|dort|dabei|davon|dafür|damit|sie|ihnen|denen|dann|it|they|those)\b",
    re.IGNORECASE,
)
_ENGLISH = frozenset(
    [
        "the",
        "what",
        "how",
        "which",
        "who",
        "why",
        "when",
        "where",
        "is",
        "are",
        "does",
        "do",
        "can",
        "could",
        "should",
        "of",
        "for",
        "in",
        "on",
        "with",
        "and",
        "to",
        "a",
        "an",
        "my",
        "our",
        "companies",
        "company",
        "use",
        "about",
    ]
)
_GERMAN = frozenset(
    [
        "der",
        "die",
        "das",
        "was",
        "wie",
        "welche",
        "wer",
        "warum",
        "wann",
        "wo",
        "ist",
        "sind",
        "gibt",
        "kann",
        "können",
        "für",
        "in",
        "mit",
        "und",
        "zu",
        "ein",
        "eine",
        "mein",
        "unser",
        "unternehmen",
        "nutzen",
        "über",
        "bei",
        "von",
        "im",
    ]
)


class QuestionError(ValueError):
    """A question that cannot be answered as given (empty, too long)."""


def clean_question(question: str) -> str:
    """The question without control characters and surplus whitespace; errors in German."""
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise QuestionError("Bitte eine Frage eingeben.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"Die Frage ist zu lang ({len(text)} Zeichen, höchstens {MAX_QUESTION_CHARS})."
        )
    return text


def is_english(question: str) -> bool:
    """Whether the question is (most likely) English rather than German."""
    words = re.findall(r"[a-zäöüß]+", question.lower())
    english = sum(w in _ENGLISH for w in words)
    german = sum(w in _GERMAN for w in words) + 2 * bool(re.search(r"[äöüß]", question.lower()))
    return english > german


def looks_like_follow_up(question: str) -> bool:
    """A short question that leans on the previous one ("Und bei den größeren Firmen?")."""
    words = re.findall(r"\w+", question)
    if _FOLLOW_UP_START.match(question.strip()):
        return True
    return len(words) <= 6 and bool(_ANAPHORA.search(question))


def expand_follow_up(question: str, history: History) -> str:
    """The extractive condensation: a follow-up searched together with the previous question."""
    if not history or not looks_like_follow_up(question):
        return question
    return f"{history[-1][0]} {question}"


@dataclass(frozen=True)
class _Prepared:
    question: str
    standalone: str
    english: bool
    passages: tuple[Passage, ...]
    quotes: tuple[Citation, ...]
    refused: bool


class Answerer:
    """Turns a question (and the conversation so far) into an `Answer`, streamed or whole."""

    def __init__(
        self,
        settings: Settings,
        *,
        searcher: Searcher | None = None,
        prompts: Prompts | None = None,
    ) -> None:
        from retrieval.search import Searcher

        self.settings = settings
        self.prompts = prompts or Prompts.load()
        self.searcher = searcher or Searcher(settings)
        self.threshold = (
            settings.refusal_threshold
            if settings.refusal_threshold is not None
            else DEFAULT_THRESHOLD
        )
        self._models: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        # The local model answers one request at a time; the others wait visibly.
        self._local_turn = threading.Lock()
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self.default_backend = self._resolve_default()

    # -- public API -------------------------------------------------------------------------

    def ask(self, question: str, history: History = (), backend: str | None = None) -> Answer:
        """The whole answer at once."""
        answer: Answer | None = None
        for event in self.stream(question, history, backend):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(
        self, question: str, history: History = (), backend: str | None = None
    ) -> Iterator[StreamEvent]:
        """Evidence first, then answer tokens, last the final `Answer`."""
        backend = self._check_backend(backend or self.default_backend)
        question = clean_question(question)
        notice = None
        try:
            standalone = self._standalone(question, history, backend)
        except Exception as exc:  # the LLM endpoint is down: condense without it
            log.warning("Folgefrage ohne LLM aufgelöst: %s", exc)
            standalone = expand_follow_up(question, history)
        prepared = self._prepare(question, standalone)
        yield Evidence(
            question,
            standalone,
            prepared.passages,
            prepared.quotes,
            prepared.refused,
        )
        if prepared.refused:
            yield self._refusal(prepared, backend, notice)
            return
        if backend == EXTRACTIVE:
            answer = self._extractive(prepared, backend, notice)
            yield Token(answer.answer)
            yield answer
            return
        try:
            yield from self._generate(prepared, backend)
        except _LLMFailure as failure:
            log.warning("LLM-Backend %s fehlgeschlagen: %s", backend, failure)
            notice = (
                f"Das Sprachmodell ({backend}) war nicht erreichbar oder zu langsam "
                f"({failure}); die Antwort besteht aus wörtlichen Belegstellen."
            )
            answer = self._extractive(prepared, EXTRACTIVE, notice)
            yield Token(answer.answer)
            yield answer

    def queue_size(self) -> int:
        """How many requests are waiting for the local model."""
        with self._waiting_lock:
            return self._waiting

    def backends(self) -> list[str]:
        """The backends usable with the current settings."""
        usable = [EXTRACTIVE]
        if self.default_backend == "local" or self._local_installed():
            usable.insert(0, "local")
        if self.settings.openai_base_url and self.settings.openai_model:
            usable.insert(-1, "openai")
        return usable

    # -- evidence ---------------------------------------------------------------------------

    def _prepare(self, question: str, standalone: str) -> _Prepared:
        passages = tuple(self.searcher.search(standalone, self.settings.answer_passages))
        quotes = tuple(self._quote(n, p) for n, p in enumerate(passages, start=1))
        english = is_english(question)
        refused = evidence_strength(passages, lexical=not english) < self.threshold
        return _Prepared(question, standalone, english, passages, quotes, refused)

    def _quote(self, n: int, passage: Passage) -> Citation:
        quote, span = passage_quote(passage)
        page_text = read_page_text(self.searcher.client, passage.doc_sha, passage.unit)
        return Citation(n, passage, quote, quote_occurs(quote, page_text), span)

    def _refusal(self, prepared: _Prepared, backend: str, notice: str | None) -> Answer:
        return Answer(
            question=prepared.question,
            answer=REFUSAL_EN if prepared.english else REFUSAL,
            refused=True,
            citations=(),
            passages=prepared.passages,
            backend=backend,
            standalone_question=prepared.standalone,
            notice=notice,
            related=prepared.passages[:3],
        )

    # -- extractive -------------------------------------------------------------------------

    def _extractive(self, prepared: _Prepared, backend: str, notice: str | None) -> Answer:
        """The best key sentences of the top passages, verbatim, each followed by its [n]."""
        chosen: list[Citation] = []
        sentences: list[str] = []
        best = prepared.passages[0].score
        for quote in prepared.quotes:
            if len(chosen) == MAX_EXTRACTIVE_SENTENCES:
                break
            if chosen and quote.passage.score < best - EXTRACTIVE_SCORE_GAP:
                break
            sentence, _ = best_sentence(quote.passage)
            key = normalize_for_match(sentence).lower()
            if not quote.verified or key in {normalize_for_match(s).lower() for s in sentences}:
                continue
            sentences.append(sentence)
            chosen.append(quote)
        text = " ".join(f"{s} [{c.n}]" for s, c in zip(sentences, chosen, strict=True))
        return Answer(
            question=prepared.question,
            answer=text,
            refused=False,
            citations=tuple(chosen),
            passages=prepared.passages,
            backend=backend,
            standalone_question=prepared.standalone,
            notice=notice,
        )

    # -- LLM --------------------------------------------------------------------------------

    def _generate(self, prepared: _Prepared, backend: str) -> Iterator[StreamEvent]:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [
            SystemMessage(self.prompts.system.format(refusal=REFUSAL)),
            HumanMessage(
                self.prompts.answer.format(
                    passages=format_passages(prepared.quotes),
                    question=prepared.question,
                    language=_language_instruction(prepared.english),
                )
            ),
        ]
        parts: list[str] = []
        with self._turn(backend):
            model = self._model(backend)
            try:
                for chunk in model.stream(messages):
                    text = chunk.content if isinstance(chunk.content, str) else ""
                    if text:
                        parts.append(text)
                        yield Token(text)
            except Exception as exc:
                raise _LLMFailure(_describe(exc)) from exc
        yield self._finish(prepared, "".join(parts), backend)

    def _finish(self, prepared: _Prepared, raw: str, backend: str) -> Answer:
        """Map the model's citations onto the evidence; a refusal by the model is a refusal."""
        refusal = REFUSAL_EN if prepared.english else REFUSAL
        if _is_refusal(raw):
            return self._refusal(prepared, backend, None)
        # Short answers are the rule the prompt states; a small model overruns it.
        kept = " ".join(split_sentences(raw)[:MAX_ANSWER_SENTENCES])
        mapped = map_citations(kept, [c.quote for c in prepared.quotes], exempt=(refusal,))
        if not mapped.cited:
            notice = (
                "Das Sprachmodell hat seine Antwort nicht belegt; "
                "gezeigt werden stattdessen die wörtlichen Belegstellen."
            )
            return self._extractive(prepared, backend, notice)
        by_number = {c.n: c for c in prepared.quotes}
        return Answer(
            question=prepared.question,
            answer=mapped.text,
            refused=False,
            citations=tuple(by_number[n] for n in mapped.cited),
            passages=prepared.passages,
            backend=backend,
            standalone_question=prepared.standalone,
            unsupported=mapped.unsupported,
        )

    def _standalone(self, question: str, history: History, backend: str) -> str:
        if not history:
            return question
        if backend == EXTRACTIVE:
            return expand_follow_up(question, history)
        from langchain_core.messages import HumanMessage

        turns = "\n".join(f"Frage: {q}\nAntwort: {_shorten(a)}" for q, a in history[-3:])
        prompt = self.prompts.condense.format(history=turns, question=question)
        with self._turn(backend):
            reply = self._model(backend).invoke([HumanMessage(prompt)])
        text = reply.content if isinstance(reply.content, str) else ""
        standalone = text.strip().splitlines()[0].strip() if text.strip() else ""
        return standalone or expand_follow_up(question, history)

    @contextmanager
    def _turn(self, backend: str) -> Iterator[None]:
        """One request at a time on the local model; others count as waiting meanwhile."""
        if backend != "local":
            yield
            return
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._local_turn.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._local_turn.release()

    def _model(self, backend: str) -> Any:
        with self._model_lock:
            if backend not in self._models:
                from retrieval.llm import make_chat_model

                try:
                    self._models[backend] = make_chat_model(self.settings, backend)
                except Exception as exc:
                    raise _LLMFailure(_describe(exc)) from exc
            return self._models[backend]

    def _resolve_default(self) -> str:
        if self.settings.llm_backend != "auto":
            return self._check_backend(self.settings.llm_backend)
        return "local" if self._local_installed() else EXTRACTIVE

    def _local_installed(self) -> bool:
        try:
            from quellenchat.llm_model import local_model_path
        except ImportError:
            return False
        try:
            return local_model_path(self.settings) is not None
        except Exception as exc:  # a damaged model install: say so, answer extractively
            log.warning("Lokales Modell nicht nutzbar: %s", exc)
            return False

    def _check_backend(self, backend: str) -> str:
        if backend not in (*LLM_BACKENDS, EXTRACTIVE):
            raise QuestionError(
                f"Unbekanntes Backend „{backend}“ (möglich: local, openai, extractive)."
            )
        return backend


class _LLMFailure(Exception):
    """The LLM backend could not answer (down, timeout, not configured)."""


def format_passages(quotes: Sequence[Citation]) -> str:
    """The numbered evidence for the model, each passage delimited as data."""
    blocks = []
    for citation in quotes:
        p = citation.passage
        place = f", Seite {p.page}" if p.page is not None else ""
        text = _neutralise(citation.quote)
        blocks.append(
            f'<quelle nr="{citation.n}" titel="{_neutralise(p.title)}{place}">\n{text}\n</quelle>'
        )
    return "\n".join(blocks)


def _neutralise(text: str) -> str:
    """Passage text can't close or open a delimiter block."""
    return re.sub(r"</?\s*quelle", "quelle", text, flags=re.IGNORECASE).replace('"', "'")


def _language_instruction(english: bool) -> str:
    if english:
        return (
            "Answer in English, each sentence followed by the [number] of its source; if no "
            f"source says anything about the question, reply exactly: {REFUSAL_EN}\nAnswer:"
        )
    return "Antwort (auf Deutsch, jeder Satz mit [Nummer] seiner Quelle):"


def _is_refusal(text: str) -> bool:
    flat = normalize_for_match(text).lower()
    return any(
        normalize_for_match(r).lower().rstrip(".") in flat for r in (REFUSAL, REFUSAL_EN)
    ) and len(flat) < 2 * len(REFUSAL)


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _describe(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
