"""The chat tab: its Gradio layout and events (question, streamed answer, feedback, export).

Every answer comes from `ChatService`; this module turns its events into chat messages, source
cards and status lines.
"""

# No `from __future__ import annotations`: Gradio reads the event handlers' type hints.

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import gradio as gr

from quellenchat.settings import Settings
from quellenchat.storage import StoreError
from quellenchat_app.files import serve_in_place
from quellenchat_app.service import ChatService
from retrieval.answering import QuestionError, clean_question
from retrieval.answers import Answer, Evidence, Progress, Token
from retrieval.corpus_files import pdf_href
from retrieval.feedback import STORED_NOTE, STORED_SHORT, FeedbackEntry, FeedbackError, Kind
from retrieval.render import (
    answer_markdown,
    answer_sources_html,
    escape_markdown,
    evidence_sources_html,
    sources_html,
    streaming_markdown,
)

log = logging.getLogger("quellenchat.app")

EXAMPLES = (
    "Wie viele KMU setzen bereits KI ein?",
    "Welche Chancen bietet KI für kleine und mittlere Unternehmen?",
    "Woran scheitert die Einführung von KI in KMU oft?",
    "In welchen Unternehmensbereichen lässt sich KI einsetzen?",
    "Wie wirkt sich KI auf den ökologischen Fußabdruck aus?",
    "Wo finden Unternehmen Unterstützung beim Einstieg in KI?",
)
# Answers run side by side (search and extractive answers are cheap; the local LLM queues
# inside the answerer and the app shows that queue).
ANSWER_CONCURRENCY = 16
HEARTBEAT_SECONDS = 0.5
SEARCHING = "Suche in den Quellen …"
# The hidden download's value while there is no fresh export. Never `gr.skip()`: Gradio rebuilds a
# component from its constructor for any update, which would drop `serve_in_place`.
NO_EXPORT = None
# After the export button has written the file into the hidden download button, this clicks that
# button: one click downloads, and nothing is written before the user asks for it.
DOWNLOAD_JS = """
async () => {
  await new Promise((done) => setTimeout(done, 50));
  document.querySelector("#qc-export-datei button, button#qc-export-datei")?.click();
}
"""
# Copy and "Zitat falsch" buttons live inside the sources HTML; one delegated listener serves
# them. The clipboard API needs a secure context (loopback is one); else the old way.
SOURCES_JS = """
element.addEventListener('click', async (event) => {
  const copy = event.target.closest('button.qc-copy');
  if (copy) {
    const text = copy.dataset.copy;
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    copy.textContent = 'Kopiert ✓';
    setTimeout(() => { copy.textContent = 'Zitat kopieren'; }, 2000);
    return;
  }
  const wrong = event.target.closest('button.qc-wrong');
  if (wrong && !wrong.disabled) {
    wrong.disabled = true;
    wrong.textContent = 'Gemeldet ✓';
    trigger('click', {n: Number(wrong.dataset.n)});
  }
});
"""
T = TypeVar("T")


@dataclass(frozen=True)
class _ChatParts:
    """The chat tab's components, for wiring their events."""

    turns: gr.State
    chat: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    clear: gr.Button
    export: gr.Button
    download: gr.DownloadButton
    status: gr.Markdown
    examples: list[gr.Button]
    comment: gr.Textbox
    up: gr.Button
    down: gr.Button
    feedback_status: gr.Markdown
    sources: gr.HTML


class ChatTab:
    """The chat tab's handlers; each Gradio event of the tab calls one of them."""

    def __init__(self, service: ChatService, settings: Settings) -> None:
        self.service = service
        self.settings = settings

    def respond(self, question: str, turns: list[Answer]) -> Iterator[tuple[Any, ...]]:
        """Answer in the chat: evidence first, then the streamed answer, then the final one.

        Yields (chat, sources, turns, question box, download, status). The download is always
        cleared: an export is written only when the user asks for it (`export`).
        """
        chat = messages(turns)
        try:
            clean_question(question)
        except QuestionError as exc:
            yield chat, gr.skip(), turns, question, NO_EXPORT, f"**{exc}**"
            return
        chat += [_user(question), _assistant(SEARCHING)]
        yield chat, gr.skip(), turns, "", NO_EXPORT, ""
        evidence = False
        text = ""
        events = self.service.stream(question, history(turns))
        try:
            for event in with_heartbeats(events, HEARTBEAT_SECONDS):
                sources, status = gr.skip(), ""
                if event is None:
                    continue
                if isinstance(event, Progress):
                    status = progress_notice(event, evidence_shown=evidence)
                elif isinstance(event, Evidence):
                    evidence = True
                    sources = evidence_sources_html(event, pdf_href, datetime.now().year)
                elif isinstance(event, Token):
                    text += event.text
                    chat[-1] = _assistant(streaming_markdown(text))
                elif isinstance(event, Answer):
                    turns = [*turns, event]
                    chat[-1] = _assistant(answer_markdown(event))
                    sources = answer_sources_html(event, pdf_href, datetime.now().year)
                    yield chat, sources, turns, "", NO_EXPORT, ""
                    return
                yield chat, sources, turns, "", NO_EXPORT, status
        except StoreError as exc:  # the store is down: say so, keep the conversation
            log.warning("Antwort ohne Quellenindex: %s", exc)
            error = f"**{escape_markdown(str(exc))}** Ihre Frage steht noch im Eingabefeld."
            yield messages(turns), gr.skip(), turns, question, NO_EXPORT, error
        except Exception as exc:  # a bug: log it, tell the user in German, keep the conversation
            log.exception("Antwort fehlgeschlagen")
            kind = escape_markdown(type(exc).__name__)
            error = f"**Die Antwort ist fehlgeschlagen** ({kind}) – bitte erneut versuchen."
            yield messages(turns), gr.skip(), turns, question, NO_EXPORT, error

    def new_conversation(self) -> tuple[Any, ...]:
        """Clear chat, sources, history and export."""
        return [], sources_html((), pdf_href, 0), [], "", None, ""

    def export(self, turns: list[Answer]) -> str | None:
        """Write the conversation as Markdown, now that the user asked for it (None: no turns)."""
        if not turns:
            return None
        return str(self.service.export(turns, datetime.now()))

    def rate(self, kind: Kind, turns: list[Answer], comment: str) -> tuple[str, Any]:
        """👍/👎 for the latest answer."""
        if not turns:
            return "Noch keine Antwort, die bewertet werden könnte.", gr.skip()
        return self._record(kind, turns[-1], comment)

    def on_like(self, turns: list[Answer], comment: str, event: gr.LikeData) -> tuple[str, Any]:
        """👍/👎 on one answer inside the chat."""
        index = event.index if isinstance(event.index, int) else event.index[0]
        turn = index // 2
        if not 0 <= turn < len(turns) or index % 2 == 0:
            return "Bewertet werden können nur Antworten.", gr.skip()
        return self._record("hilfreich" if event.liked else "nicht_hilfreich", turns[turn], comment)

    def report_quote(
        self, turns: list[Answer], comment: str, event: gr.EventData
    ) -> tuple[str, Any]:
        """„Zitat falsch“ on a citation card of the latest answer (the card's JS sends `n`)."""
        try:
            number = event.n  # the data passed to `trigger` are the event's attributes
        except (AttributeError, TypeError):  # a click without data
            number = None
        if not turns or not isinstance(number, int):
            return gr.skip(), gr.skip()
        return self._record("zitat_falsch", turns[-1], comment, citation=number)

    def _record(
        self, kind: Kind, answer: Answer, comment: str, citation: int | None = None
    ) -> tuple[str, Any]:
        try:
            self.service.record_feedback(
                FeedbackEntry.build(kind, answer, datetime.now().astimezone(), comment, citation)
            )
        except FeedbackError as exc:
            return str(exc), gr.skip()
        what = {"hilfreich": "👍", "nicht_hilfreich": "👎", "zitat_falsch": f"Zitat [{citation}]"}
        return f"Danke – Rückmeldung {what[kind]} gespeichert. {STORED_SHORT}", ""

    def build(self) -> None:
        """Lay the tab out and wire its events (inside the page's `gr.Blocks`)."""
        parts = self._layout()
        outputs = [parts.chat, parts.sources, parts.turns, parts.question, parts.download]
        outputs.append(parts.status)
        answer: dict[str, Any] = {
            "fn": self.respond,
            "inputs": [parts.question, parts.turns],
            "outputs": outputs,
            "show_progress": "minimal",
            "concurrency_limit": ANSWER_CONCURRENCY,
            "concurrency_id": "answer",
        }
        parts.question.submit(**answer, api_name="chat")
        parts.send.click(**answer, api_visibility="undocumented")
        for button, text in zip(parts.examples, EXAMPLES, strict=True):
            button.click(
                _constant(text), outputs=parts.question, queue=False, api_visibility="private"
            ).then(**answer, api_visibility="private")
        parts.clear.click(self.new_conversation, outputs=outputs, api_name="new_conversation")
        parts.export.click(
            self.export, inputs=parts.turns, outputs=parts.download, api_name="export"
        ).then(None, js=DOWNLOAD_JS, api_visibility="private")
        parts.chat.clear(self.new_conversation, outputs=outputs, api_visibility="private")
        feedback: dict[str, Any] = {
            "inputs": [parts.turns, parts.comment],
            "outputs": [parts.feedback_status, parts.comment],
        }
        parts.up.click(_bind(self.rate, "hilfreich"), **feedback, api_name="rate_up")
        parts.down.click(_bind(self.rate, "nicht_hilfreich"), **feedback, api_name="rate_down")
        parts.chat.like(self.on_like, **feedback, api_visibility="private")
        parts.sources.click(self.report_quote, **feedback, api_visibility="private")

    def _layout(self) -> _ChatParts:
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = gr.Chatbot(
                    label="Unterhaltung",
                    height=460,
                    latex_delimiters=[],
                    buttons=["copy", "copy_all"],  # no "share": it needs the internet
                    feedback_options=("Like", "Dislike"),
                    placeholder="Stellen Sie eine Frage oder wählen Sie ein Beispiel unten.",
                )
                stored = STORED_NOTE.format(days=self.settings.feedback_retention_days)
                gr.Markdown(stored, elem_id="qc-datenschutz")
                question = gr.Textbox(
                    label="Ihre Frage",
                    placeholder="z. B. Welche Chancen bietet KI für KMU?",
                    lines=1,
                    max_lines=4,
                    submit_btn=False,
                    elem_id="qc-frage",
                )
                with gr.Row():
                    send = gr.Button("Fragen", variant="primary", elem_id="qc-fragen")
                    clear = gr.Button("Neue Unterhaltung", elem_id="qc-neu")
                    export = gr.Button("Als Markdown exportieren", elem_id="qc-export")
                    download = gr.DownloadButton(
                        "Export herunterladen",
                        value=None,
                        visible="hidden",
                        elem_id="qc-export-datei",
                    )
                    serve_in_place(download, self.service.exports.root)
                status = gr.Markdown("", elem_id="qc-status")
                gr.Markdown("**Beispielfragen**")
                with gr.Row():
                    examples = [gr.Button(q, size="sm") for q in EXAMPLES]
                with gr.Accordion("Rückmeldung zur letzten Antwort", open=False):
                    comment = gr.Textbox(label="Kommentar (optional)", lines=2, max_lines=6)
                    with gr.Row():
                        up = gr.Button("👍 Hilfreich", size="sm", elem_id="qc-gut")
                        down = gr.Button("👎 Nicht hilfreich", size="sm", elem_id="qc-schlecht")
                    gr.Markdown(stored)
                feedback_status = gr.Markdown("", elem_id="qc-rueckmeldung")
            with gr.Column(scale=2):
                gr.Markdown("## Quellen")
                sources = gr.HTML(
                    sources_html((), pdf_href, 0), js_on_load=SOURCES_JS, elem_id="qc-quellen"
                )
        return _ChatParts(
            turns, chat, question, send, clear, export, download, status, examples, comment, up,
            down, feedback_status, sources,
        )  # fmt: skip


def history(turns: list[Answer]) -> list[tuple[str, str]]:
    """The conversation so far as (question, answer) pairs, for follow-up questions."""
    return [(t.question, t.answer) for t in turns]


def messages(turns: list[Answer]) -> list[dict[str, str]]:
    """The chat as Gradio messages; every text escaped."""
    chat: list[dict[str, str]] = []
    for turn in turns:
        chat += [_user(turn.question), _assistant(answer_markdown(turn))]
    return chat


def queue_notice(position: int, *, evidence_shown: bool) -> str:
    """What a user sees while their request waits for the local model: their own place."""
    shown = " Die Belege stehen schon rechts." if evidence_shown else ""
    return (
        "Das Sprachmodell beantwortet gerade eine andere Frage. "
        f"Sie sind Nr. {position} in der Warteschlange; Ihre Antwort folgt.{shown}"
    )


def progress_notice(progress: Progress, *, evidence_shown: bool) -> str:
    """The status line for what the answer waits for (condensing, queue, the model reading)."""
    match progress.stage:
        case "queued":
            return queue_notice(progress.position, evidence_shown=evidence_shown)
        case "condensing":
            return "Die Folgefrage wird mit dem bisherigen Gespräch zur eigenen Frage ergänzt …"
    return "Das Sprachmodell liest die Belege und formuliert Ihre Antwort …"


def with_heartbeats(events: Iterator[T], interval: float) -> Iterator[T | None]:
    """The events of `events`, with a None whenever nothing arrived for `interval` seconds.

    The events are produced on a worker thread; closing this generator stops it at the next event.
    """
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for event in events:
                inbox.put(("event", event))
                if stop.is_set():
                    break
        except BaseException as exc:
            inbox.put(("error", exc))
        finally:
            inbox.put(("done", None))

    threading.Thread(target=pump, name="quellenchat-answer", daemon=True).start()
    try:
        while True:
            try:
                kind, item = inbox.get(timeout=interval)
            except queue.Empty:
                yield None
                continue
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": escape_markdown(text)}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _constant(value: str) -> Callable[[], str]:
    def give() -> str:
        return value

    return give


def _bind(rate: Callable[[Kind, list[Answer], str], tuple[str, Any]], kind: Kind) -> Callable:
    def bound(turns: list[Answer], comment: str) -> tuple[str, Any]:
        return rate(kind, turns, comment)

    return bound
