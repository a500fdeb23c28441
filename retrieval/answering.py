"""Answers with verified citations: search, gate, then an LLM or the extractive answerer.

The order is what makes answers trustworthy: the evidence (passages and their quotes, each
verified against the stored page text) is fixed and streamed before any generation; a weak
evidence gate refuses before the model can invent; afterwards the model's `[n]` marks are
mapped back to that evidence, invented numbers dropped and uncited sentences marked.

`Answerer` runs three steps, each in its own module: prepare the evidence
(`retrieval.evidence`), compose the answer (`retrieval.extractive`, or an LLM here, which falls
back to the extractive composer), check the claims (`retrieval.claims`). The language guess is
in `retrieval.language`; this module keeps the follow-up detection, the LLM's queue and prompts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrieval.answers import (
    REFUSAL,
    REFUSAL_EN,
    Answer,
    Citation,
    Evidence,
    Progress,
    StreamEvent,
    Token,
)
from retrieval.citations import (
    map_citations,
    normalize_for_match,
    split_sentences,
)
from retrieval.claims import check as check_claims
from retrieval.claims import tidy
from retrieval.compose import Matcher, compose
from retrieval.evidence import EvidenceBuilder, Prepared
from retrieval.extractive import extractive_answer, refusal
from retrieval.language import german_terms, is_english, language_instruction
from retrieval.lexical import analyze
from retrieval.prompts import Prompts
from retrieval.question_kind import Kind, question_kind
from retrieval.refusal import default_threshold
from retrieval.thesaurus import default_thesaurus

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from quellenchat.settings import Settings
    from retrieval.search import Searcher

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
EXTRACTIVE = "extractive"
LLM_BACKENDS = ("local", "openai")
MAX_EXTRACTIVE_SENTENCES = 3
MAX_ANSWER_SENTENCES = 3
# A list answer may have a line per item; the model also reads one quote beside the section.
MAX_LIST_LINES = 12
LIST_EXTRA_QUOTES = 1
# A passage below the best one by more than this fused score adds no extractive sentence …
EXTRACTIVE_SCORE_GAP = 0.04
# … and goes to the LLM only when it is no further below than this, among the first three, and
# while the quotes stay within a budget: prefill runs at ~60 tokens/s on 2 cores (≈ 4 chars each).
MODEL_SCORE_GAP = 0.04
MODEL_MAX_QUOTES = 3
MODEL_CHARS = 600
# The answer stream stops at these; a small model otherwise goes on with a made-up example.
ANSWER_STOPS = ("\nFrage:", "<quelle", "\nBeispiel")
CONDENSE_MAX_TOKENS = 48
# The condense prompt sees at most this many earlier turns, each question and answer shortened.
HISTORY_TURNS = 3
# The chat template's own tokens around a prompt (role markers), with room to spare.
TEMPLATE_TOKENS = 64
# More citation marks than this in one sentence: the small model is counting, not citing.
MAX_MARKS_PER_SENTENCE = 6
# How often a request waiting for the local model checks its place in line.
QUEUE_POLL_SECONDS = 0.25
MAX_QUESTION_CHARS = 2000

_FOLLOW_UP_START = re.compile(
    r"^(und|aber|also|sowie|auch|dazu|davon|was ist mit|wie ist es mit|wie sieht es"
    r"|and|what about)\b",
    re.IGNORECASE,
)
# A pronoun pointing back; „das“/„diese“ before a noun (capitalised) are articles instead.
_ANAPHORA = re.compile(
    r"\b(?:(?:das|dies|diese[rsmn]?)(?!\s+[A-ZÄÖÜ])|dort|dabei|davon|dafür|damit|dazu|darüber"
    r"|sie|ihnen|denen|dann|it|they|those)\b",
)
# „Was ist mit X gemeint?“ asks what X means, it does not lean on the previous question.
_DEFINITION = re.compile(r"\bgemeint\b|\bbedeutet\b", re.IGNORECASE)


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


def history_text(history: History, budget_bytes: int) -> str:
    """The latest turns for the condense prompt; the oldest are dropped until they fit.

    At most `HISTORY_TURNS` turns, each question and answer shortened. The budget is in UTF-8
    bytes: the models' byte-level BPE tokens cover at least one byte each, so a text of n bytes
    never needs more than n tokens, whatever characters a client sends.
    """
    kept: list[str] = []
    used = 0
    for asked, answered in reversed(history[-HISTORY_TURNS:]):
        turn = f"Frage: {_shorten(asked)}\nAntwort: {_shorten(answered)}"
        used += len(turn.encode()) + 1
        if used > budget_bytes:
            break
        kept.append(turn)
    return "\n".join(reversed(kept))


def looks_like_follow_up(question: str) -> bool:
    """A short question that leans on the previous one ("Und bei den größeren Firmen?")."""
    words = re.findall(r"\w+", question)
    if _FOLLOW_UP_START.match(question.strip()) and not _DEFINITION.search(question):
        return True
    return len(words) <= 6 and bool(_ANAPHORA.search(question.lower()[:1] + question[1:]))


def expand_follow_up(question: str, history: History) -> str:
    """The extractive condensation: a follow-up searched together with the previous question."""
    if not history or not looks_like_follow_up(question):
        return question
    return f"{history[-1][0]} {question}"


def model_quotes(quotes: Sequence[Citation]) -> tuple[Citation, ...]:
    """The quotes the LLM gets: verified, close to the best passage, within a length budget.

    Fewer, closer passages mean a shorter prefill (the first token comes sooner) and fewer
    distractors for a small model, which otherwise likes to cite a wrong neighbour. The best
    quote always goes, whatever its length.
    """
    if not quotes:
        return ()
    best = quotes[0].passage.score
    chosen: list[Citation] = []
    used = 0
    for quote in quotes:
        if not quote.verified or quote.passage.score < best - MODEL_SCORE_GAP:
            continue
        if len(chosen) == MODEL_MAX_QUOTES or (chosen and used + len(quote.quote) > MODEL_CHARS):
            break
        chosen.append(quote)
        used += len(quote.quote)
    return tuple(chosen)


def evidence_for_model(evidence: Evidence) -> tuple[Citation, ...]:
    """What the LLM reads: `model_quotes`, and for a list question the whole listing section.

    A list question's best section (as the extractive answer picks it, by its heading and
    items) goes first, every item on its own line, so the model can name them all; one more
    quote follows within the usual budget. The claim check reads the same quotes.
    """
    quotes = model_quotes(evidence.quotes)
    if question_kind(evidence.standalone_question) != "list":
        return quotes
    matcher = Matcher(analyze(default_thesaurus().expand(evidence.standalone_question)))
    pieces = compose("list", evidence.quotes, matcher, votes=evidence.section_votes)
    if len(pieces) < 2:
        return quotes
    section = pieces[0].citation
    listing = "\n".join(f"- {p.text}" for p in pieces)
    rest = tuple(q for q in quotes if q.n != section.n)[:LIST_EXTRA_QUOTES]
    return (dataclasses.replace(section, quote=listing), *rest)


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
            else default_threshold(settings.embedder)
        )
        self.evidence = EvidenceBuilder(self.searcher, settings.answer_passages, self.threshold)
        self._models: dict[str, Any] = {}
        self._model_lock = threading.Lock()
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
        """Evidence first, then answer tokens, last the final `Answer`.

        LLM backends also stream `Progress`: while a follow-up is condensed or an English
        question put into German for the search (before the evidence), the request's place in
        the local model's queue, and when its turn came.
        """
        backend = self._check_backend(backend or self.default_backend)
        question = clean_question(question)
        if history and not looks_like_follow_up(question):
            history = ()  # a question that stands on its own is asked as it stands
        if backend == EXTRACTIVE:
            prepared = self._prepare(question, expand_follow_up(question, history))
            yield prepared.evidence()
            yield from self._extractive_events(prepared, backend, None)
        elif history or is_english(question):
            # The German sources are searched with a German standalone question.
            yield from self._llm_condensed(question, history, backend)
        else:
            prepared = self._prepare(question, question)
            yield prepared.evidence()
            yield from self._llm_answer(prepared, backend, None)

    def answer_messages(self, evidence: Evidence, question: str | None = None) -> list[BaseMessage]:
        """Exactly what the LLM gets for this evidence: fixed system prompt, passages, question.

        The question asked is the standalone one (a follow-up condensed), unless `question`
        says otherwise (an English question asked as such, though searched in German).
        """
        from langchain_core.messages import HumanMessage, SystemMessage

        return [
            SystemMessage(self._system_prompt()),
            HumanMessage(
                self.prompts.answer.format(
                    passages=format_passages(evidence_for_model(evidence)),
                    question=question or evidence.standalone_question,
                    language=language_instruction(is_english(evidence.question)),
                )
            ),
        ]

    def warm_up(self) -> bool:
        """Start the local model (if default) and put the fixed prompt prefix into its KV cache.

        So the first question pays neither the model load nor the cold prefix; tells whether it
        ran. Errors are logged, not raised: the first question then tries again or falls back.
        """
        if self.default_backend != "local":
            return False
        from langchain_core.messages import HumanMessage, SystemMessage

        # The system prompt and the answer template's opening, up to the first passage.
        opening = self.prompts.answer.template.split("{", 1)[0]
        try:
            model = self._model("local")
            model.warm_up([SystemMessage(self._system_prompt()), HumanMessage(opening)])
        except Exception as exc:
            log.warning("Lokales Sprachmodell nicht vorgewärmt: %s", _describe(exc))
            return False
        return True

    def queue_size(self) -> int:
        """How many requests are waiting for the local model."""
        model = self._models.get("local")
        return int(model.waiting) if model is not None else 0

    def backends(self) -> list[str]:
        """The backends usable with the current settings."""
        usable = [EXTRACTIVE]
        if self.default_backend == "local" or self._local_installed():
            usable.insert(0, "local")
        if self.settings.openai_base_url and self.settings.openai_model:
            usable.insert(-1, "openai")
        return usable

    # -- the three steps: evidence, composition, claims (the last inside `_finish`) -------------

    def _prepare(self, question: str, standalone: str, ask: str | None = None) -> Prepared:
        return self.evidence.prepare(question, standalone, ask)

    def _refusal(self, prepared: Prepared, backend: str, notice: str | None) -> Answer:
        return refusal(prepared, backend, notice)

    def _extractive(self, prepared: Prepared, backend: str, notice: str | None) -> Answer:
        matcher = self.evidence.matcher(prepared.standalone)
        return extractive_answer(prepared, matcher, self.searcher.page_text, backend, notice)

    # -- extractive -------------------------------------------------------------------------

    def _extractive_events(
        self, prepared: Prepared, backend: str, notice: str | None
    ) -> Iterator[StreamEvent]:
        if prepared.refused:
            yield self._refusal(prepared, backend, notice)
            return
        answer = self._extractive(prepared, backend, notice)
        yield Token(answer.answer)
        yield answer

    # -- LLM --------------------------------------------------------------------------------

    def _llm_answer(
        self, prepared: Prepared, backend: str, session: _Session | None
    ) -> Iterator[StreamEvent]:
        """After the evidence: the gate, then the model (in its queue), else extractive."""
        if prepared.refused:
            yield self._refusal(prepared, backend, None)
            return
        try:
            with contextlib.ExitStack() as stack:
                if session is None:
                    session = stack.enter_context(self._session(backend))
                yield from self._queue(session)
                yield from self._generate(prepared, session)
        except _LLMFailure as failure:
            yield from self._extractive_events(
                prepared, EXTRACTIVE, _failure_notice(backend, failure)
            )

    def _llm_condensed(
        self, question: str, history: History, backend: str
    ) -> Iterator[StreamEvent]:
        """Condense (or translate) with the model, search, then answer: one place in the queue."""
        yield Progress("condensing")
        try:
            with self._session(backend) as session:
                try:
                    yield from self._queue(session)
                    standalone = self._condense(session, question, history)
                except _LLMFailure as failure:
                    prepared = self._prepare(question, expand_follow_up(question, history))
                    yield prepared.evidence()
                    notice = _failure_notice(backend, failure)
                    yield from self._extractive_events(prepared, EXTRACTIVE, notice)
                    return
                # A translated question is asked as asked; a follow-up as condensed.
                prepared = self._prepare(question, standalone, None if history else question)
                yield prepared.evidence()
                yield from self._llm_answer(prepared, backend, session)
        except _LLMFailure as failure:  # no model at all (not installed, not configured)
            prepared = self._prepare(question, expand_follow_up(question, history))
            yield prepared.evidence()
            yield from self._extractive_events(
                prepared, EXTRACTIVE, _failure_notice(backend, failure)
            )

    @contextmanager
    def _session(self, backend: str) -> Iterator[_Session]:
        """The backend's model and one place in its queue for this request's calls."""
        model = self._model(backend)
        with model.reserve() as reservation:
            yield _Session(backend, model, reservation)

    def _queue(self, session: _Session) -> Iterator[Progress]:
        """Wait for the model's turn, telling the place in line whenever it changes."""
        shown = 0
        while not session.reservation.wait(QUEUE_POLL_SECONDS):
            if session.reservation.remaining <= 0:
                raise _LLMFailure(f"nach {self.settings.llm_timeout:g} s noch nicht an der Reihe")
            position = session.reservation.position
            if position and position != shown:
                shown = position
                yield Progress("queued", position)

    def _generate(self, prepared: Prepared, session: _Session) -> Iterator[StreamEvent]:
        yield Progress("generating")
        parts: list[str] = []
        try:
            stream = session.model.stream(
                self.answer_messages(prepared.evidence(), prepared.ask),
                stop=list(ANSWER_STOPS),
                reservation=session.reservation,
            )
            try:
                for chunk in stream:
                    text = chunk.content if isinstance(chunk.content, str) else ""
                    if not text:
                        continue
                    parts.append(text)
                    yield Token(text)
                    if _enough("".join(parts), prepared.kind):
                        break  # the rest would be cut anyway: free the model sooner
            finally:
                stream.close()
        except Exception as exc:
            raise _LLMFailure(_describe(exc)) from exc
        yield self._finish(prepared, "".join(parts), session.backend)

    def _finish(self, prepared: Prepared, raw: str, backend: str) -> Answer:
        """Map the model's citations onto the evidence; a refusal by the model is a refusal."""
        raw = tidy(raw)
        if _is_refusal(raw):
            return self._refusal(prepared, backend, None)
        # Short answers are the rule the prompt states; a small model overruns it.
        limit = MAX_LIST_LINES if prepared.kind == "list" else MAX_ANSWER_SENTENCES
        kept = "\n".join(split_sentences(raw)[:limit])
        sent = {c.n: c for c in evidence_for_model(prepared.evidence())}
        sources = [c.quote if c.n in sent else "" for c in prepared.quotes]
        mapped = map_citations(kept, sources, exempt=(REFUSAL, REFUSAL_EN))
        # Every cited sentence against its passage's full text; failures replaced or marked.
        passages = {n: c.passage.text for n, c in sent.items()}
        checked = check_claims(mapped.text, passages, prepared.ask, english=prepared.english)
        if not checked.cited:
            notice = (
                "Das Sprachmodell hat seine Antwort nicht belegt; "
                "gezeigt werden stattdessen die wörtlichen Belegstellen."
            )
            return self._extractive(prepared, backend, notice)
        by_number = {c.n: c for c in prepared.quotes}
        if checked.replaced:
            log.info("Vom Sprachmodell nicht belegte Sätze ersetzt: %s", checked.replaced)
        return Answer(
            question=prepared.question,
            answer=checked.text,
            refused=False,
            citations=tuple(by_number[n] for n in checked.cited),
            passages=prepared.passages,
            backend=backend,
            standalone_question=prepared.standalone,
            unsupported=checked.unsupported,
        )

    def _condense(self, session: _Session, question: str, history: History) -> str:
        """The follow-up as a standalone German question (or the English one translated)."""
        from langchain_core.messages import HumanMessage

        if history:
            bare = self.prompts.condense.format(history="", question=question)
            budget = self.settings.llm_context - CONDENSE_MAX_TOKENS - TEMPLATE_TOKENS
            turns = history_text(history, budget - len(bare.encode()))
            prompt = self.prompts.condense.format(history=turns, question=question)
        else:  # an English question: the sources are German
            prompt = self.prompts.translate.format(question=question)
        try:
            reply = session.model.invoke(
                [HumanMessage(prompt)],
                stop=["\n"],
                max_tokens=min(CONDENSE_MAX_TOKENS, self.settings.llm_max_tokens),
                reservation=session.reservation,
            )
        except Exception as exc:
            raise _LLMFailure(_describe(exc)) from exc
        text = reply.content if isinstance(reply.content, str) else ""
        standalone = text.strip().splitlines()[0].strip() if text.strip() else ""
        standalone = re.sub(r"^(Eigenständige Frage|Frage)\s*:\s*", "", standalone).strip()
        if not history:
            standalone = german_terms(standalone)
        return standalone or expand_follow_up(question, history)

    def _system_prompt(self) -> str:
        return self.prompts.system.format(refusal=REFUSAL)

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


@dataclass(frozen=True)
class _Session:
    """One request's model and its place in the model's queue."""

    backend: str
    model: Any  # a retrieval.llm.GuardedChatModel
    reservation: Any  # its retrieval.llm.Reservation


class _LLMFailure(Exception):
    """The LLM backend could not answer (down, timeout, not configured)."""


def _failure_notice(backend: str, failure: _LLMFailure) -> str:
    log.warning("LLM-Backend %s fehlgeschlagen: %s", backend, failure)
    return (
        f"Das Sprachmodell ({backend}) war nicht erreichbar oder zu langsam "
        f"({failure}); die Antwort besteht aus wörtlichen Belegstellen."
    )


def format_passages(quotes: Sequence[Citation]) -> str:
    """The numbered evidence for the model, each passage delimited as data."""
    return "\n".join(f'<quelle nr="{c.n}">{_neutralise(c.quote)}</quelle>' for c in quotes)


def _neutralise(text: str) -> str:
    """Passage text can't close or open a delimiter block."""
    return re.sub(r"</?\s*quelle", "quelle", text, flags=re.IGNORECASE).replace('"', "'")


def _enough(text: str, kind: Kind = "fact") -> bool:
    """The answer so far has more sentences than are kept, or runs away counting "[1] [2] …"."""
    sentences = split_sentences(text)
    if len(sentences) > (MAX_LIST_LINES if kind == "list" else MAX_ANSWER_SENTENCES):
        return True
    return bool(sentences) and sentences[-1].count("[") > MAX_MARKS_PER_SENTENCE


def _is_refusal(text: str) -> bool:
    flat = normalize_for_match(text).lower()
    return any(
        normalize_for_match(r).lower().rstrip(".") in flat for r in (REFUSAL, REFUSAL_EN)
    ) and len(flat) < 2 * len(REFUSAL)


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _describe(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
