"""Answers with verified citations: search, gate, then an LLM or the extractive answerer.

The order is what makes answers trustworthy: the evidence (passages and their quotes, each
verified against the stored page text) is fixed and streamed before any generation; a weak
evidence gate refuses before the model can invent; afterwards the model's `[n]` marks are
mapped back to that evidence, invented numbers dropped and uncited sentences marked.

`Answerer` runs three steps, each in its own module: prepare the evidence
(`retrieval.evidence`), compose the answer behind one interface (`retrieval.composers`: the
extractive composer, or a model's, which checks its claims with `retrieval.claims` and falls
back to the extractive one). The language guess is in `retrieval.language`; this module keeps
the follow-up detection and condensing, the choice of backend and the model's prompts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from retrieval.answers import REFUSAL, Answer, Evidence, Progress, StreamEvent
from retrieval.composers import (
    EXTRACTIVE,
    ComposeFailure,
    ExtractiveComposer,
    ModelComposer,
    ModelSession,
    describe,
    evidence_for_model,
    failure_notice,
    format_passages,
    listing,
)
from retrieval.evidence import EvidenceBuilder, Prepared
from retrieval.language import german_terms, is_english, language_instruction
from retrieval.prompts import Prompts
from retrieval.refusal import default_threshold, default_weighing

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from quellenchat.settings import Settings
    from retrieval.search import Searcher

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
LLM_BACKENDS = ("local", "openai")
CONDENSE_MAX_TOKENS = 48
# The condense prompt sees at most this many earlier turns, each question and answer shortened.
HISTORY_TURNS = 3
# The chat template's own tokens around a prompt (role markers), with room to spare.
TEMPLATE_TOKENS = 64
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
# A topic put first and then taken up („KI in der Qualitätskontrolle – funktioniert das?“): the
# pronoun points into the question itself.
_DISLOCATED = re.compile(r"^\s*\w[^?]*?\s[–—:-]\s")
# The sources' own subject named: a long question that opens like a follow-up („Wie sieht es bei
# KI im Mittelstand in den USA aus, …?“) says what it is about.
_OWN_SUBJECT = re.compile(r"\b(?:KI|AI|künstliche[rn]?\s+Intelligenz)\b", re.IGNORECASE)


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
    """A short question that leans on the previous one ("Und bei den größeren Firmen?").

    Not one that names its topic first and then points to it („KI in der Qualitätskontrolle –
    funktioniert das?“), nor a long one that opens like a follow-up but names KI itself.
    """
    words = re.findall(r"\w+", question)
    if _FOLLOW_UP_START.match(question.strip()) and not _DEFINITION.search(question):
        return len(words) <= 10 or not _OWN_SUBJECT.search(question)
    if _DISLOCATED.match(question):
        return False
    return len(words) <= 6 and bool(_ANAPHORA.search(question.lower()[:1] + question[1:]))


def expand_follow_up(question: str, history: History) -> str:
    """The extractive condensation: a follow-up searched together with the previous question."""
    if not history or not looks_like_follow_up(question):
        return question
    return f"{history[-1][0]} {question}"


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
        self.evidence = EvidenceBuilder(
            self.searcher,
            settings.answer_passages,
            self.threshold,
            default_weighing(settings.embedder),
            topic=settings.topic,
        )
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
            yield from self._extractive(backend).compose(prepared)
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
                    passages=format_passages(evidence_for_model(evidence, self.evidence.matcher)),
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
            log.warning("Lokales Sprachmodell nicht vorgewärmt: %s", describe(exc))
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

    # -- the three steps: evidence, composition (claims checked inside), fallback ----------------

    def _prepare(self, question: str, standalone: str, ask: str | None = None) -> Prepared:
        return self.evidence.prepare(question, standalone, ask)

    def _extractive(
        self, backend: str = EXTRACTIVE, notice: str | None = None
    ) -> ExtractiveComposer:
        return ExtractiveComposer(self.evidence, self.searcher.page_text, backend, notice)

    def _fallback(self, backend: str, failure: ComposeFailure) -> ExtractiveComposer:
        return self._extractive(EXTRACTIVE, failure_notice(backend, failure))

    def _llm_answer(
        self, prepared: Prepared, backend: str, session: ModelSession | None
    ) -> Iterator[StreamEvent]:
        """After the evidence: the model's composer (in its queue), else the extractive one.

        A list question that a section answers gets that section's items verbatim, without the
        model, unless `llm_lists` is "model".
        """
        if self.settings.llm_lists == "verbatim" and self._listed(prepared):
            yield from self._extractive(backend).compose(prepared)
            return
        try:
            with contextlib.ExitStack() as stack:
                if session is None and not prepared.refused:
                    session = stack.enter_context(self._session(backend))
                if session is None:  # refused: no need to wait for the model
                    yield from self._extractive(backend).compose(prepared)
                    return
                composer = ModelComposer(session, self.answer_messages, self._extractive(backend))
                yield from composer.compose(prepared)
        except ComposeFailure as failure:
            yield from self._fallback(backend, failure).compose(prepared)

    def _listed(self, prepared: Prepared) -> bool:
        """Whether a section of the evidence lists what a list question asks for."""
        if prepared.refused or prepared.kind != "list":
            return False
        return bool(listing(prepared, self.evidence.matcher(prepared.standalone)))

    def _llm_condensed(
        self, question: str, history: History, backend: str
    ) -> Iterator[StreamEvent]:
        """Condense (or translate) with the model, search, then answer: one place in the queue."""
        yield Progress("condensing")
        try:
            with self._session(backend) as session:
                try:
                    yield from session.wait_turn()
                    standalone = self._condense(session, question, history)
                except ComposeFailure as failure:
                    prepared = self._prepare(question, expand_follow_up(question, history))
                    yield prepared.evidence()
                    yield from self._fallback(backend, failure).compose(prepared)
                    return
                # A translated question is asked as asked; a follow-up as condensed.
                prepared = self._prepare(question, standalone, None if history else question)
                yield prepared.evidence()
                yield from self._llm_answer(prepared, backend, session)
        except ComposeFailure as failure:  # no model at all (not installed, not configured)
            prepared = self._prepare(question, expand_follow_up(question, history))
            yield prepared.evidence()
            yield from self._fallback(backend, failure).compose(prepared)

    @contextmanager
    def _session(self, backend: str) -> Iterator[ModelSession]:
        """The backend's model and one place in its queue for this request's calls."""
        model = self._model(backend)
        with model.reserve() as reservation:
            yield ModelSession(backend, model, reservation, self.settings.llm_timeout)

    def _condense(self, session: ModelSession, question: str, history: History) -> str:
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
            raise ComposeFailure(describe(exc)) from exc
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
                    raise ComposeFailure(describe(exc)) from exc
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


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
