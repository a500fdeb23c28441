"""Composing the answer from prepared evidence: one small interface for every backend.

A `Composer` turns `Prepared` evidence into the answer's events: its tokens, last the `Answer`.
It never searches and never decides what the evidence is; the refusal gate has already run
(`Prepared.refused`), and each composer honours it first.

- `ExtractiveComposer`: verbatim pieces of the evidence, shaped by the question's kind
  (`retrieval.compose`). Instant, and the fallback of every model.
- `ModelComposer`: an LLM (the local model or an OpenAI-compatible server) in its queue. Its
  `[n]` marks are mapped back to the evidence and every cited sentence is checked against its
  passage (`retrieval.claims`); an answer with nothing left cited becomes the extractive one.
  When the model cannot answer at all it raises `ComposeFailure` and the caller falls back.
  What the model leaves out of the extractive answer is appended, verbatim (`complete`). The
  local model's own refusal becomes the extractive answer with a notice; another backend's
  refusal stands.
  A list question that a section answers (`listing`) never reaches it unless
  `Settings.llm_lists` is "model": the caller composes that one extractively.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from quellenchat.types import letters_key
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
    CITATION_RE,
    UNSUPPORTED_MARK,
    map_citations,
    normalize_for_match,
    split_sentences,
)
from retrieval.claims import Checked, tidy
from retrieval.claims import check as check_claims
from retrieval.compose import QUANTITY_RE, Matcher, Piece, Span, compose, highlighted
from retrieval.evidence import EvidenceBuilder, Prepared
from retrieval.extractive import (
    PageText,
    covering,
    extractive_answer,
    extractive_pieces,
    refusal,
)
from retrieval.lexical import analyze
from retrieval.question_kind import Kind, asks_why, question_kind

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

log = logging.getLogger(__name__)

EXTRACTIVE = "extractive"
MAX_ANSWER_SENTENCES = 3
# A list answer may have a line per item; the model also reads one quote beside the section.
MAX_LIST_LINES = 12
LIST_EXTRA_QUOTES = 1
# A passage goes to the LLM only when it is no further below the best one than this fused
# score, among the first three, and while the quotes stay within a budget: prefill runs at
# ~60 tokens/s on 2 cores (≈ 4 chars each).
MODEL_SCORE_GAP = 0.04
MODEL_MAX_QUOTES = 3
MODEL_CHARS = 600
# A number or yes/no question's model reads only the piece the extractive answer leads with:
# the sentence with the figure that counts what is asked, or the finding. Given the key quotes
# of three passages, the small model cited the negated „40 % … setzen weder KI ein“ for „Wie
# viele KMU setzen KI ein?“ even when it came second.
MODEL_PIECE_KINDS: frozenset[Kind] = frozenset({"number", "yesno"})
# The answer stream stops at these; a small model otherwise goes on with a made-up example.
ANSWER_STOPS = ("\nFrage:", "<quelle", "\nBeispiel")
# More citation marks than this in one sentence: the small model is counting, not citing.
MAX_MARKS_PER_SENTENCE = 6
LOCAL = "local"
MODEL_FOUND_NOTHING = (
    "Das Sprachmodell fand in den Belegstellen keine Antwort; gezeigt werden die wörtlichen "
    "Belegstellen, die die Suche gefunden hat. Bitte prüfen Sie, ob sie die Frage beantworten."
)
# A piece of the extractive answer counts as named by the model's answer when the answer holds
# its figures and this share of its content terms.
COVERED_SHARE = 0.6
# How often a request waiting for the local model checks its place in line.
QUEUE_POLL_SECONDS = 0.25

Messages = Callable[[Evidence, "str | None"], "list[BaseMessage]"]


class Composer(Protocol):
    """What every backend offers the `Answerer`."""

    backend: str

    def compose(self, prepared: Prepared) -> Iterator[StreamEvent]:
        """The answer's tokens, last the `Answer` (the refusal where `prepared.refused`)."""
        ...


class ComposeFailure(Exception):
    """The model could not answer (down, timeout, not configured); the caller falls back."""


@dataclass
class ExtractiveComposer:
    """Verbatim pieces of the evidence; instant, and every model's fallback.

    `backend` names the backend the answer is reported under (the one asked for), `notice`
    says why an LLM's answer was replaced by this one.
    """

    evidence: EvidenceBuilder
    page_text: PageText
    backend: str = EXTRACTIVE
    notice: str | None = None

    def compose(self, prepared: Prepared) -> Iterator[StreamEvent]:
        """The whole answer as one token, then the `Answer`."""
        if prepared.refused:
            yield refusal(prepared, self.backend, self.notice)
            return
        answer = self.answer(prepared)
        yield Token(answer.answer)
        yield answer

    def answer(self, prepared: Prepared, notice: str | None = None) -> Answer:
        """The extractive answer for evidence that was not refused."""
        matcher = self.evidence.matcher(prepared.standalone)
        return extractive_answer(
            prepared, matcher, self.page_text, self.backend, notice or self.notice
        )


@dataclass(frozen=True)
class ModelSession:
    """One request's model and its place in the model's queue."""

    backend: str
    model: Any  # a retrieval.llm.GuardedChatModel
    reservation: Any  # its retrieval.llm.Reservation
    timeout: float

    def wait_turn(self) -> Iterator[Progress]:
        """Wait for the model's turn, telling the place in line whenever it changes."""
        shown = 0
        while not self.reservation.wait(QUEUE_POLL_SECONDS):
            if self.reservation.remaining <= 0:
                raise ComposeFailure(f"nach {self.timeout:g} s noch nicht an der Reihe")
            position = self.reservation.position
            if position and position != shown:
                shown = position
                yield Progress("queued", position)


@dataclass
class ModelComposer:
    """The LLM's answer, its citations mapped and its claims checked.

    `messages` builds exactly what the model reads for the evidence (and the question asked);
    `fallback` composes the answer when the model cited nothing that holds.
    """

    session: ModelSession
    messages: Messages
    fallback: ExtractiveComposer

    @property
    def backend(self) -> str:
        """The model's backend (`local`, `openai`)."""
        return self.session.backend

    def compose(self, prepared: Prepared) -> Iterator[StreamEvent]:
        """The queue's progress, the model's tokens, then the checked `Answer`."""
        if prepared.refused:
            yield refusal(prepared, self.backend)
            return
        yield from self.session.wait_turn()
        yield Progress("generating")
        parts: list[str] = []
        try:
            stream = self.session.model.stream(
                self.messages(prepared.evidence(), prepared.ask),
                stop=list(ANSWER_STOPS),
                reservation=self.session.reservation,
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
            raise ComposeFailure(describe(exc)) from exc
        yield self.finish(prepared, "".join(parts))

    def finish(self, prepared: Prepared, raw: str) -> Answer:
        """Map the model's citations onto the evidence, check and complete the claims.

        A refusal by the model is a refusal, except the local model's (see the module doc).
        """
        raw = tidy(raw)
        if is_refusal(raw):
            if self.backend != LOCAL:
                return refusal(prepared, self.backend)
            # The refusal gate found evidence. On the realistic sets the small local model's own
            # refusal never caught a near-miss that the gate let through, but refused answerable
            # questions („Kann KI der Umwelt auch schaden?“): the user gets the quotes, told so.
            answer = self.fallback.answer(prepared, MODEL_FOUND_NOTHING)
            return dataclasses.replace(answer, backend=self.backend)
        # Short answers are the rule the prompt states; a small model overruns it.
        limit = MAX_LIST_LINES if prepared.kind == "list" else MAX_ANSWER_SENTENCES
        kept = "\n".join(split_sentences(raw)[:limit])
        matcher = self.fallback.evidence.matcher
        sent = {c.n: c for c in evidence_for_model(prepared.evidence(), matcher)}
        sources = [sent[c.n].quote if c.n in sent else "" for c in prepared.quotes]
        mapped = map_citations(kept, sources, exempt=(REFUSAL, REFUSAL_EN))
        # Every cited sentence against stretches of its passage; failures replaced or marked.
        passages = {n: c.passage.text for n, c in sent.items()}
        read = {n: span for n, c in sent.items() if (span := _read_span(c))}
        checked = check_claims(
            mapped.text, passages, prepared.ask, english=prepared.english, read=read
        )
        notice = None
        if not checked.cited:
            notice = (
                "Das Sprachmodell hat seine Antwort nicht belegt; "
                "gezeigt werden stattdessen die wörtlichen Belegstellen."
            )
        elif prepared.kind == "number" and not names_a_figure(checked.text):
            notice = (
                "Das Sprachmodell hat keine Zahl genannt; "
                "gezeigt werden stattdessen die wörtlichen Belegstellen."
            )
        if notice is not None:
            answer = self.fallback.answer(prepared, notice)
            return dataclasses.replace(answer, backend=self.backend)
        by_number = {c.n: c for c in prepared.quotes}
        if checked.replaced:
            log.info("Vom Sprachmodell nicht belegte Sätze ersetzt: %s", checked.replaced)
        checked = self.complete(prepared, checked)
        # Each citation quotes the stretch that holds the sentences citing it.
        citations = []
        for n in checked.cited:
            spans = checked.support[n]
            a, b = min(s[0] for s in spans), max(s[1] for s in spans)
            citations.append(covering(by_number[n], a, b, self.fallback.page_text))
        return Answer(
            question=prepared.question,
            answer=checked.text,
            refused=False,
            citations=tuple(citations),
            passages=prepared.passages,
            backend=self.backend,
            standalone_question=prepared.standalone,
            unsupported=checked.unsupported,
        )

    def complete(self, prepared: Prepared, checked: Checked) -> Checked:
        """The checked answer, with the extractive answer's pieces that it leaves out.

        A small model names one of several items, or cites the neighbouring passage instead of
        the one that answers („Wie kann KI uns in der Logistik helfen?“ answered from the
        passage on customer data). The extractive answer's pieces (what the instant mode would
        show) are appended, verbatim and cited, where the model's answer does not already hold
        them: their figures and most of their content terms.
        """
        pieces = extractive_pieces(prepared, self.fallback.evidence.matcher(prepared.standalone))
        missing = [p for p in pieces if not _covers(checked.text, p.text, prepared.kind)]
        if not missing:
            return checked
        kind = prepared.kind
        bullets = kind == "list" and (len(pieces) > 1 or checked.text.lstrip().startswith("-"))
        text = checked.text.rstrip()
        for piece in missing:
            # A sentence not ended by its own stop (a link, a heading-like bullet, a model's
            # „… meistern [3]“) ends only at a line break, else it would read as one with the next.
            ended = CITATION_RE.sub("", text).rstrip().endswith((".", "!", "?"))
            text += " " if ended and not bullets else "\n"
            text += f"{'- ' if bullets else ''}{piece.text} [{piece.citation.n}]"
        cited = list(checked.cited)
        support = {n: tuple(spans) for n, spans in checked.support.items()}
        for piece in missing:
            n = piece.citation.n
            if n not in cited:
                cited.append(n)
            support[n] = (*support.get(n, ()), piece.span)
        log.info("Vom Sprachmodell ausgelassene Belegstellen ergänzt: %d", len(missing))
        return dataclasses.replace(checked, text=text, cited=tuple(cited), support=support)


def _covers(answer: str, piece: str, kind: Kind) -> bool:
    """Whether the answer holds the piece: its figures and most of its content terms.

    For a number question its figures are enough: they are what was asked.
    """
    flat = letters_key(answer)
    figures = QUANTITY_RE.findall(piece)
    if any(letters_key(q) not in flat for q in figures):
        return False
    if figures and kind == "number":
        return True
    terms = set(analyze(CITATION_RE.sub("", piece)))
    if not terms:
        return True
    held = terms & set(analyze(CITATION_RE.sub("", answer)))
    return len(held) >= COVERED_SHARE * len(terms)


def failure_notice(backend: str, failure: ComposeFailure) -> str:
    """What the user reads above the extractive answer that replaced a failed model."""
    log.warning("LLM-Backend %s fehlgeschlagen: %s", backend, failure)
    return (
        f"Das Sprachmodell ({backend}) war nicht erreichbar oder zu langsam "
        f"({failure}); die Antwort besteht aus wörtlichen Belegstellen."
    )


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


def listing(evidence: Evidence | Prepared, matcher: Matcher) -> list[Piece]:
    """The items of the section that answers a list question, or [] when none lists them."""
    pieces = compose("list", evidence.quotes, matcher, votes=evidence.section_votes)
    return pieces if len(pieces) >= 2 else []


def evidence_for_model(
    evidence: Evidence, matcher: Callable[[str], Matcher]
) -> tuple[Citation, ...]:
    """What the LLM reads: `model_quotes`, the lead piece, or for a list the whole section.

    A number or yes/no question's model reads the piece the extractive answer leads with (the
    figure that counts what is asked, the finding; `MODEL_PIECE_KINDS`), so it cannot cite a
    neighbour's figure instead. A list question's best section (as the extractive answer picks
    it, with the same `matcher(question)`, by its heading and items) goes first, every item on
    its own line, so the model can name them all; one more quote follows within the usual
    budget. Other questions read the extractive answer's pieces (`_pieces_as_quotes`): a short
    bullet whole, a why-question's reason after the sentence it restates, a how-to question's
    named section item by item. Given the search's key sentences instead, the model repeated
    the first one („… erkennen noch nicht den Nutzen …“) and missed what followed. Without
    pieces it reads `model_quotes`. The claim check reads the same quotes.
    """
    quotes = model_quotes(evidence.quotes)
    question = evidence.standalone_question
    kind = question_kind(question)
    if kind in MODEL_PIECE_KINDS:
        pieces = compose(kind, evidence.quotes, matcher(question))
        return (_as_quote(pieces[0]),) if pieces else quotes
    if kind != "list":
        pieces = compose(kind, evidence.quotes, matcher(question), why=asks_why(question))
        return _pieces_as_quotes(pieces) or tuple(_heading_as_items(q) for q in quotes)
    pieces = listing(evidence, matcher(evidence.standalone_question))
    if not pieces:
        return quotes
    section = pieces[0].citation
    items = "\n".join(f"- {p.text}" for p in pieces)
    rest = tuple(q for q in quotes if q.n != section.n)[:LIST_EXTRA_QUOTES]
    return (dataclasses.replace(section, quote=items), *rest)


def _pieces_as_quotes(pieces: Sequence[Piece]) -> tuple[Citation, ...]:
    """The extractive answer's pieces as the model's quotes, one per passage, in their order.

    Several pieces of one passage (a section's items) go as lines of one quote. Within the
    usual budget (`MODEL_MAX_QUOTES`, `MODEL_CHARS`); the first always goes.
    """
    groups: dict[int, list[Piece]] = {}
    for piece in pieces:
        groups.setdefault(piece.citation.n, []).append(piece)
    chosen: list[Citation] = []
    used = 0
    for group in groups.values():
        if len(group) == 1:
            quote = _as_quote(group[0])
        else:
            lines = "\n".join(f"- {p.text}" for p in group)
            quote = dataclasses.replace(group[0].citation, quote=lines, quote_span=None)
        if len(chosen) == MODEL_MAX_QUOTES or (chosen and used + len(quote.quote) > MODEL_CHARS):
            break
        chosen.append(quote)
        used += len(quote.quote)
    return tuple(chosen)


def _heading_as_items(quote: Citation) -> Citation:
    """A key quote that is only its section's heading, as the section's items.

    A heading says nothing: given „Digitale Mindestanforderungen“ alone, the model answered
    with the heading. The extractive answer gives the items in that case (`highlighted`).
    """
    pieces = highlighted([quote])
    if len(pieces) < 2:  # one key sentence: the quote stays as it is
        return quote
    items = "\n".join(f"- {p.text}" for p in pieces)
    return dataclasses.replace(quote, quote=items, quote_span=None)


def _as_quote(piece: Piece) -> Citation:
    """The piece as the model's quote: its citation, quoting just the piece."""
    return dataclasses.replace(piece.citation, quote=piece.text, quote_span=piece.span)


def _read_span(quote: Citation) -> Span | None:
    """Where the model's quote lies in its passage, if it is one stretch (no list's items).

    Compared by letters and digits: a piece's text has its dashes and blanks tidied.
    """
    span = quote.quote_span
    if span is None or letters_key(quote.passage.text[span[0] : span[1]]) != letters_key(
        quote.quote
    ):
        return None
    return span


def names_a_figure(text: str) -> bool:
    """Whether a supported sentence of a checked answer names a quantity (marks aside)."""
    return any(
        QUANTITY_RE.search(CITATION_RE.sub("", sentence))  # a mark's digits are no figure
        for sentence in split_sentences(text)
        if UNSUPPORTED_MARK.strip() not in sentence
    )


def format_passages(quotes: Sequence[Citation]) -> str:
    """The numbered evidence for the model, each passage delimited as data."""
    return "\n".join(f'<quelle nr="{c.n}">{_neutralise(c.quote)}</quelle>' for c in quotes)


def is_refusal(text: str) -> bool:
    """Whether the model's whole answer is the refusal sentence."""
    flat = normalize_for_match(text).lower()
    return any(
        normalize_for_match(r).lower().rstrip(".") in flat for r in (REFUSAL, REFUSAL_EN)
    ) and len(flat) < 2 * len(REFUSAL)


def describe(exc: Exception) -> str:
    """An exception's first line, short, for logs and notices."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _neutralise(text: str) -> str:
    """Passage text can't close or open a delimiter block."""
    return re.sub(r"</?\s*quelle", "quelle", text, flags=re.IGNORECASE).replace('"', "'")


def _enough(text: str, kind: Kind = "fact") -> bool:
    """The answer so far has more sentences than are kept, or runs away counting "[1] [2] …"."""
    sentences = split_sentences(text)
    if len(sentences) > (MAX_LIST_LINES if kind == "list" else MAX_ANSWER_SENTENCES):
        return True
    return bool(sentences) and sentences[-1].count("[") > MAX_MARKS_PER_SENTENCE
