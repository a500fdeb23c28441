"""Quellenchat's Gradio app: layout and event wiring only.

Every decision lives in `retrieval/` (answers, citation text, rendering, export, feedback,
which PDFs may be served) and `ingest/` (uploads, plans, the store's writer lock).
`python chat_app.py` brings the store up to date, then serves the app and prints its URL.
"""

# No `from __future__ import annotations`: Gradio reads the `ask` endpoint's type hints.

import logging
import os
import posixpath
import queue
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, TypeVar

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from ingest.maintenance import StoreGuard, bring_up_to_date, needs_update
from ingest.upload import UploadError, limit_bytes, save_upload, upload_dir
from quellenchat.logs import configure_logging
from quellenchat.settings import Settings
from quellenchat.storage import StoreError, read_sources
from quellenchat_app.admin import (
    DOCUMENT_COLUMNS,
    LoginThrottle,
    admin_mode,
    documents_table,
    password_ok,
    plan_text,
    result_text,
    throttled_message,
)
from retrieval.answering import Answerer, QuestionError, clean_question
from retrieval.answers import Answer, Evidence, Progress, Token
from retrieval.corpus_files import PDF_ROUTE, CorpusFiles, pdf_href
from retrieval.export import ExportFolder
from retrieval.feedback import (
    STORED_NOTE,
    STORED_SHORT,
    FeedbackEntry,
    FeedbackError,
    FeedbackStore,
    Kind,
)
from retrieval.health import check_health
from retrieval.render import (
    answer_markdown,
    answer_sources_html,
    escape_markdown,
    evidence_sources_html,
    sources_html,
    streaming_markdown,
)

log = logging.getLogger("quellenchat.app")

TITLE = "Quellenchat"
INTRO = (
    "Fragen Sie auf Deutsch zum Faktenblatt „Digitalisierungstechnologien – Künstliche "
    "Intelligenz (KI)“ und seiner Literatur – jede Antwort mit wörtlichen, geprüften Zitaten."
)
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
# How often expired conversation exports are deleted.
SWEEP_SECONDS = 30.0

CSS = """
.qc-sources { display: flex; flex-direction: column; gap: .75rem; }
.qc-card { border: 1px solid #6b7280; border-radius: 8px; padding: .75rem; background: #ffffff;
  color: #111827; }
.qc-card h3 { font-size: 1rem; margin: 0 0 .25rem; color: #111827; }
.qc-n { font-weight: 700; }
.qc-meta { font-size: .9rem; color: #374151; margin: 0 0 .5rem; }
.qc-ok { color: #065f46; font-weight: 600; }
.qc-unverified { color: #9a3412; font-weight: 600; }
.qc-passage { white-space: pre-line; margin: 0 0 .5rem; padding-left: .75rem;
  border-left: 4px solid #6b7280; max-height: 16rem; overflow-y: auto; color: #111827; }
.qc-passage mark { background: #fde047; color: #000000; }
.qc-card a { color: #1d4ed8; text-decoration: underline; }
.qc-card button { border: 1px solid #374151; border-radius: 6px; padding: .25rem .6rem;
  background: #f3f4f6; color: #111827; cursor: pointer; margin-right: .5rem; }
/* Keyboard focus always clearly visible (WCAG 2.4.7), whatever the theme does; text fields
   draw it inside, where no container clips it. */
:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px !important; }
textarea:focus-visible, input:focus-visible { outline-offset: -3px !important; }
.qc-related { border-style: dashed; }
.qc-note { font-size: .85rem; color: #374151; margin: 0; }
.qc-status, .qc-empty { color: #374151; }
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
# Gradio refuses an oversized upload only with an English message (and, server-side, once the
# limit is reached); this refuses it in German before a byte is sent. The limit comes from the
# hint element of the Quellen tab.
PAGE_JS = """() => {
  document.documentElement.lang = 'de';
  const refuse = (event, files) => {
    const hint = document.getElementById('qc-upload-fehler');
    if (!hint || !files?.length || !event.target.closest?.('#qc-upload')) return;
    const big = [...files].find((file) => file.size > Number(hint.dataset.maxBytes));
    hint.textContent = big
      ? `Abgelehnt: „${big.name}“ ist zu groß (${(big.size / 1048576).toFixed(1)
          .replace('.', ',')} MB, höchstens ${hint.dataset.maxMb} MB). Nichts wurde hochgeladen.`
      : '';
    if (big) {
      event.preventDefault();
      event.stopImmediatePropagation();
      if (event.target.value) event.target.value = '';
    }
  };
  for (const name of ['input', 'change']) {
    document.addEventListener(name, (event) => refuse(event, event.target.files), true);
  }
  document.addEventListener('drop', (event) => refuse(event, event.dataTransfer?.files), true);
}
"""

T = TypeVar("T")
# Gradio recognises a progress parameter by its default; tqdm bars of the ingest feed it.
INGEST_PROGRESS = gr.Progress(track_tqdm=True)


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


class ChatApp:
    """The app's parts (answerer, store guard, feedback) and its Gradio interface."""

    def __init__(
        self,
        settings: Settings,
        answerer: Answerer | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.settings = settings
        self.throttle = throttle or LoginThrottle()
        self.answerer = answerer or Answerer(settings)
        self.guard = StoreGuard(settings)
        self.feedback = FeedbackStore(settings.feedback_file, settings.feedback_retention_days)
        self.files = CorpusFiles(settings.corpus)
        self.mode = admin_mode(settings)
        self.exports = ExportFolder(
            settings.export_dir.absolute(), settings.export_retention_minutes * 60
        )
        self._sweeping = threading.Event()

    # -- chat -------------------------------------------------------------------------------

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
        events = self.answerer.stream(question, history(turns))
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

    def warm_up(self) -> threading.Thread:
        """Load the embedder, then the local model with its primed prefix, in the background.

        One after the other: on two cores, loading both at once only slows both.
        """

        def run() -> None:
            try:
                self.answerer.searcher.embedder.embed_query("Künstliche Intelligenz")
            except Exception as exc:  # the first question reports it to the user
                log.warning("Einbettungsmodell nicht vorgeladen: %s", exc)
            self.answerer.warm_up()

        thread = threading.Thread(target=run, name="quellenchat-warm-up", daemon=True)
        thread.start()
        return thread

    def new_conversation(self) -> tuple[Any, ...]:
        """Clear chat, sources, history and export."""
        return [], sources_html((), pdf_href, 0), [], "", None, ""

    def ask(self, question: str, history: list[list[str]] | None = None) -> dict[str, Any]:
        """Answer a question with verified citations (history: earlier [question, answer] pairs).

        Returns the same JSON object as `python -m retrieval ask --json`.
        """
        try:
            pairs = api_history(history)
            return self.answerer.ask(api_question(question), pairs).to_json()
        except (QuestionError, StoreError) as exc:
            raise gr.Error(str(exc)) from exc

    def export(self, turns: list[Answer]) -> str | None:
        """Write the conversation as Markdown, now that the user asked for it (None: no turns)."""
        if not turns:
            return None
        return str(self.exports.write(turns, datetime.now()))

    def sweep_exports(self, interval: float = SWEEP_SECONDS) -> threading.Thread:
        """Delete expired exports every `interval` seconds until `close()`."""

        def run() -> None:
            while not self._sweeping.wait(interval):
                self.exports.prune()

        self._sweeping.clear()
        self.exports.prune()  # leftovers of an app that was killed
        thread = threading.Thread(target=run, name="quellenchat-exports", daemon=True)
        thread.start()
        return thread

    # -- feedback ---------------------------------------------------------------------------

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
            self.feedback.append(
                FeedbackEntry.build(kind, answer, datetime.now().astimezone(), comment, citation)
            )
        except FeedbackError as exc:
            return str(exc), gr.skip()
        what = {"hilfreich": "👍", "nicht_hilfreich": "👎", "zitat_falsch": f"Zitat [{citation}]"}
        return f"Danke – Rückmeldung {what[kind]} gespeichert. {STORED_SHORT}", ""

    # -- Quellen tab ------------------------------------------------------------------------

    def _admin_ok(self, unlocked: bool) -> bool:
        return self.mode == "open" or (self.mode == "password" and unlocked)

    def login(self, password: str, request: gr.Request) -> tuple[Any, ...]:
        """Unlock the Quellen tab for this session. Returns (unlocked, panel, message, table).

        Wrong passwords make the client (and, with many, everybody) wait longer and longer.
        """
        refused = (False, gr.update(visible=False))
        client = request.client.host if request.client else "?"
        wait = self.throttle.wait(client)
        if wait > 0:
            return *refused, throttled_message(wait), gr.skip()
        if self.mode == "password" and password_ok(self.settings, password):
            self.throttle.succeeded(client)
            return True, gr.update(visible=True), "Angemeldet.", self._table()
        self.throttle.failed(client)
        return *refused, "**Falsches Passwort.**", gr.skip()

    def documents(self, unlocked: bool) -> Any:
        """The documents table (empty when the tab is locked)."""
        if not self._admin_ok(unlocked):
            return []
        return self._table()

    def _table(self) -> Any:
        try:
            return documents_table(self.settings)
        except StoreError as exc:  # a toast, and the table keeps what it showed
            gr.Warning(str(exc))
            return gr.skip()

    def upload(self, file: str | None, replace: bool, unlocked: bool) -> tuple[Any, ...]:
        """Save an uploaded PDF into the corpus and show the plan. (message, plan, run button)."""
        if not self._admin_ok(unlocked):
            return _LOCKED, "", gr.update(visible=False)
        if not file:
            return "Bitte zuerst eine PDF-Datei auswählen.", gr.skip(), gr.skip()
        try:
            saved = save_upload(
                Path(file),
                Path(file).name,
                upload_dir(self.settings),
                self.settings.upload_max_mb,
                replace=replace,
            )
        except UploadError as exc:
            return f"**Abgelehnt:** {exc}", gr.skip(), gr.skip()
        message = f"„{escape_markdown(saved.name)}“ gespeichert. Zum Einlesen „Jetzt einlesen“."
        return (message, *self.plan(unlocked))

    def plan(self, unlocked: bool) -> tuple[Any, ...]:
        """The dry-run plan ("Aktualisieren"). Returns (plan, run button)."""
        if not self._admin_ok(unlocked):
            return _LOCKED, gr.update(visible=False)
        report = self.guard.run(dry_run=True)
        return plan_text(report), gr.update(visible=needs_update(report))

    def update(self, unlocked: bool, progress: gr.Progress = INGEST_PROGRESS) -> tuple[Any, ...]:
        """Run the incremental ingest in this process. Returns (result, table, run button)."""
        if not self._admin_ok(unlocked):
            return _LOCKED, gr.skip(), gr.skip()
        progress(0, desc="Einlesen startet …")
        lines: list[str] = []
        report = self.guard.run(dry_run=False, log=lines.append, show_progress=True)
        details = "\n".join(f"- {escape_markdown(line)}" for line in lines[-30:])
        return (
            result_text(report) + (f"\n\n{details}" if details else ""),
            self._table(),
            gr.update(visible=False),
        )

    # -- layout -----------------------------------------------------------------------------

    def blocks(self) -> gr.Blocks:
        """The Gradio interface."""
        with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
            gr.Markdown(f"# {TITLE}\n{INTRO}")
            with gr.Tabs():
                with gr.Tab("Chat", id="chat"):
                    self._chat_tab()
                with gr.Tab("Quellen", id="quellen"):
                    self._sources_tab(demo)
            # As a load event: `mount_gradio_app(js=…)` misses the config the page embeds.
            demo.load(None, js=PAGE_JS, api_visibility="private")
            gr.api(
                self.ask,
                api_name="ask",
                concurrency_limit=ANSWER_CONCURRENCY,
                concurrency_id="answer",
            )
        return demo

    def _chat_tab(self) -> None:
        parts = self._chat_layout()
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

    def _chat_layout(self) -> _ChatParts:
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
                    serve_in_place(download, self.exports.root)
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

    def _sources_tab(self, demo: gr.Blocks) -> None:
        if self.mode == "disabled":
            gr.Markdown(
                f"**Der Reiter „Quellen“ ist gesperrt.** Die App ist an `{self.settings.host}` "
                "gebunden, also aus dem Netz erreichbar, und es ist kein Passwort gesetzt. "
                "Zum Verwalten `QUELLENCHAT_ADMIN_PASSWORD` setzen oder die App nur an "
                "`127.0.0.1` binden."
            )
            return
        unlocked = gr.State(False)
        with gr.Group(visible=self.mode == "password"):
            password = gr.Textbox(label="Passwort", type="password", elem_id="qc-passwort")
            login = gr.Button("Anmelden")
            login_status = gr.Markdown("")
        with gr.Column(visible=self.mode == "open") as panel:
            gr.Markdown(
                "Dokumente im Index. Neue PDFs hochladen, dann „Aktualisieren“: erst wird "
                "der Plan gezeigt, dann auf Wunsch eingelesen (nur Geändertes)."
            )
            table = gr.Dataframe(
                headers=DOCUMENT_COLUMNS,
                interactive=False,
                label="Dokumente",
                wrap=True,
                column_widths=["28%", "24%", "7%", "8%", "8%", "11%", "14%"],
            )
            reload = gr.Button("Liste neu laden", size="sm")
            with gr.Row():
                file = gr.File(
                    label=f"PDF hochladen (höchstens {self.settings.upload_max_mb} MB)",
                    file_types=[".pdf"],
                    type="filepath",
                    elem_id="qc-upload",
                )
                accept_only_uploads(file, lambda: demo.upload_file_set)
                with gr.Column():
                    replace = gr.Checkbox(label="Vorhandene Datei gleichen Namens ersetzen")
                    upload = gr.Button("Hochladen")
            gr.HTML(
                f'<p id="qc-upload-fehler" class="qc-status" role="alert" '
                f'data-max-bytes="{limit_bytes(self.settings.upload_max_mb)}" '
                f'data-max-mb="{self.settings.upload_max_mb}"></p>'
            )
            upload_status = gr.Markdown("")
            with gr.Row():
                refresh = gr.Button("Aktualisieren")
                run = gr.Button("Jetzt einlesen", variant="primary", visible=False)
            plan = gr.Markdown("")
            result = gr.Markdown("")
        admin: dict[str, Any] = {"api_visibility": "undocumented", "concurrency_id": "admin"}
        signin = {"fn": self.login, "inputs": password, **admin}
        signin["outputs"] = [unlocked, panel, login_status, table]
        login.click(**signin, api_name="login")
        password.submit(**signin)
        reload.click(self.documents, inputs=unlocked, outputs=table, api_name="documents", **admin)
        upload.click(
            self.upload,
            inputs=[file, replace, unlocked],
            outputs=[upload_status, plan, run],
            api_name="upload",
            **admin,
        )
        refresh.click(self.plan, inputs=unlocked, outputs=[plan, run], api_name="plan", **admin)
        run.click(
            self.update,
            inputs=unlocked,
            outputs=[result, table, run],
            api_name="update",
            **admin,
        )
        demo.load(self.documents, inputs=unlocked, outputs=table, api_visibility="private")

    # -- serving ----------------------------------------------------------------------------

    def asgi(self) -> Any:
        """The FastAPI app: `/healthz`, the corpus PDF route, and the Gradio interface at `/`."""
        from fastapi import FastAPI, HTTPException
        from fastapi.responses import FileResponse, JSONResponse

        app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)

        if self.mode == "disabled":  # nothing on the page takes files: nobody may send any
            app.middleware("http")(_refuse_uploads)

        @app.get("/healthz")
        def healthz() -> JSONResponse:
            health = check_health(self.answerer)
            return JSONResponse(health.to_json(), status_code=health.http_status)

        @app.get(f"/{PDF_ROUTE}/{{name}}")
        def corpus_pdf(name: str) -> FileResponse:
            sha = name.removesuffix(".pdf")
            try:
                records = read_sources(self.answerer.searcher.client)
            except StoreError as exc:
                raise HTTPException(503, str(exc)) from exc
            path = self.files.pdf_path(records, sha) if name.endswith(".pdf") else None
            if path is None:
                raise HTTPException(404, "Dokument nicht gefunden.")
            return FileResponse(
                path,
                media_type="application/pdf",
                filename=path.name,
                content_disposition_type="inline",
                headers={"X-Content-Type-Options": "nosniff"},
            )

        return gr.mount_gradio_app(
            app,
            self.blocks().queue(default_concurrency_limit=1),
            path="",
            theme=theme(),
            css=CSS,
            max_file_size=limit_bytes(self.settings.upload_max_mb),  # save_upload checks, too
            show_error=True,
            footer_links=[],
            allowed_paths=[str(self.exports.root)],  # the exports, served in place
            # FastAPI's generated schema of Gradio's routes: nothing needs it, so not public.
            app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
        )

    def close(self) -> None:
        """Release the store for other writers; delete this app's exports."""
        self._sweeping.set()
        self.exports.clear()
        self.guard.release()


_LOCKED = "**Nicht angemeldet.** Bitte zuerst mit dem Passwort anmelden."
UPLOAD_ROUTE = "/gradio_api/upload"
NO_UPLOADS = (
    "Hochladen ist abgeschaltet: Der Reiter „Quellen“ ist gesperrt (App aus dem Netz erreichbar, "
    "kein Passwort gesetzt)."
)


def accept_only_uploads(component: gr.File, uploads: Callable[[], Collection[str]]) -> gr.File:
    """Make a file input take only files this server received by upload; returns it.

    Gradio copies whatever server path a request names into its cache before the event runs; its
    own check of such paths runs only after `launch()`, which a mounted app never calls. The
    input's copy step now refuses every other path (a forged server path, a URL) before anything
    is copied.

    Args:
        component: The file input.
        uploads: Gives the paths of the files this server's upload route has written.
    """

    def check(path: str | Path | None) -> None:
        _check_uploaded(path, uploads())

    _before_moves(component, check)
    return component


def serve_in_place(component: gr.DownloadButton, root: Path) -> gr.DownloadButton:
    """Serve the files below `root` from where they are, not from a copy in Gradio's cache.

    Gradio copies every file an event returns into its temporary folder and never deletes the
    copy; the app's exports must live (and be deleted) in the app's own folder only. `root`
    must be among the `allowed_paths` of the mounted app.
    """

    def keep(path: str | Path | None) -> str | None:
        if path is not None and Path(path).resolve().is_relative_to(root.resolve()):
            return str(Path(path).resolve())
        return None

    _before_moves(component, keep)
    return component


def _before_moves(component: Any, before: Callable[[str | Path | None], str | None]) -> None:
    """Run `before` ahead of the component's copy into Gradio's cache; a path it returns is kept.

    Instance methods, not a subclass: Gradio writes a `.pyi` file beside every module that
    subclasses a component.
    """
    move = component.move_resource_to_block_cache
    move_async = component.async_move_resource_to_block_cache

    def checked(path: str | Path | None) -> str | None:
        kept = before(path)
        return kept if kept is not None else move(path)

    async def checked_async(path: str | Path | None) -> str | None:
        kept = before(path)
        return kept if kept is not None else await move_async(path)

    component.move_resource_to_block_cache = checked
    component.async_move_resource_to_block_cache = checked_async


def _check_uploaded(path: str | Path | None, uploads: Collection[str]) -> None:
    """Raise a German `gr.Error` unless `path` is one of the uploaded files (None passes)."""
    if path is None:
        return
    uploaded = {str(Path(p).resolve()) for p in uploads}
    if "://" in str(path) or str(Path(path).resolve()) not in uploaded:
        name = escape_markdown(PurePath(str(path)).name)
        raise gr.Error(
            f"Abgelehnt: „{name}“ wurde nicht über diese App hochgeladen. Bitte die PDF-Datei "
            "im Reiter „Quellen“ auswählen."
        )


async def _refuse_uploads(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Middleware of an app without admin: Gradio's upload route answers 403."""
    from fastapi.responses import PlainTextResponse

    if posixpath.normpath(re.sub("/+", "/", request.url.path)).rstrip("/") == UPLOAD_ROUTE:
        return PlainTextResponse(NO_UPLOADS, status_code=403)
    return await call_next(request)


def theme() -> gr.themes.Base:
    """System fonts (nothing fetched from the internet) and colours with WCAG AA contrast."""
    return gr.themes.Default(
        primary_hue=gr.themes.colors.blue,
        font=["system-ui", "Segoe UI", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    ).set(
        color_accent="*primary_700",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        body_text_color_subdued="*neutral_600",
        block_label_text_color="*neutral_700",
        input_placeholder_color="*neutral_500",
        # Not "all": the focus outline must appear at once, not fade in from the text colour.
        button_transition="background-color 0.2s ease, border-color 0.2s ease, color 0.2s ease",
    )


HISTORY_SHAPE = 'eine Liste von [Frage, Antwort]-Paaren, z. B. [["Wie viele KMU …?", "…"]]'


def api_question(question: object) -> str:
    """The `question` of the `ask` API, checked; a German `QuestionError` names the field."""
    if not isinstance(question, str):
        raise QuestionError(
            f"Feld „question“ muss Text sein (die Frage), nicht {_shape(question)}."
        )
    return question


def api_history(history: object) -> list[tuple[str, str]]:
    """The `history` of the `ask` API as (question, answer) pairs; empty when none is given.

    Raises:
        QuestionError: the history has another shape (German, naming the field and the shape).
    """
    if history is None:
        return []
    if not isinstance(history, list | tuple):
        raise QuestionError(f"Feld „history“ muss {HISTORY_SHAPE} sein, nicht {_shape(history)}.")
    pairs: list[tuple[str, str]] = []
    for number, pair in enumerate(history, start=1):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(text, str | int | float) for text in pair)
        ):
            raise QuestionError(
                f"Feld „history“, Eintrag {number}: erwartet ein Paar [Frage, Antwort] aus zwei "
                f"Texten, nicht {_shape(pair)}. Der Verlauf ist {HISTORY_SHAPE}."
            )
        pairs.append((str(pair[0]), str(pair[1])))  # as before: numbers become text
    return pairs


def _shape(value: object) -> str:
    kinds = {str: "Text", int: "eine Zahl", float: "eine Zahl", bool: "ein Wahrheitswert"}
    kinds |= {list: "eine Liste", tuple: "eine Liste", dict: "ein Objekt"}
    if value is None:
        return "leer (null)"
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + " …"
    return f"{kind} ({shown})"


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


@dataclass
class Running:
    """A served app: its URL, and how to stop it."""

    url: str
    server: Any
    thread: threading.Thread
    chat: ChatApp

    def stop(self) -> None:
        """Shut the server down and release the store."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.chat.close()


def serve(chat: ChatApp, host: str, port: int, *, timeout: float = 60.0) -> Running:
    """Start the app on host:port in a background thread; returns once it accepts requests.

    The app becomes the store's writer: it holds the writer lock until `Running.stop()` (when
    another process holds it now, the app takes it as soon as it is free).
    """
    import uvicorn

    chat.guard.hold()
    chat.sweep_exports()

    # log_config=None: uvicorn's lines go through our logging (plain lines on stderr).
    level = chat.settings.log_level.lower()
    config = uvicorn.Config(chat.asgi(), host=host, port=port, log_level=level, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="quellenchat-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            chat.close()
            raise RuntimeError(
                f"Die App konnte nicht an {host}:{port} starten "
                "(Port belegt oder Adresse ungültig)."
            )
        time.sleep(0.05)
    shown = f"[{host}]" if ":" in host else host
    return Running(f"http://{shown}:{port}/", server, thread, chat)


def main() -> int:
    """`python chat_app.py`: bring the store up to date, then serve until interrupted."""
    settings = Settings()
    configure_logging(settings.log_level)
    say = _stderr
    if settings.startup_ingest:
        report = bring_up_to_date(settings, log=say, show_progress=sys.stderr.isatty())
        if report.error and report.busy:
            say(f"Hinweis: {report.error} Diese Instanz zeigt bis dahin den vorhandenen Stand.")
        elif report.error:
            say(f"FEHLER: {report.error}")
            return 2
    try:
        chat = ChatApp(settings)
        # The store must fit (same embedder) before the app serves; this also builds the
        # lexical index now, not on the first question.
        chat.answerer.searcher.snapshot()
    except StoreError as exc:
        say(f"FEHLER: {exc}")
        return 2
    chat.feedback.prune()
    # The embedder, the local model and its cold prompt prefix load in the background while the
    # app already serves: early questions wait for them (and see their place in the queue).
    chat.warm_up()
    try:
        running = serve(chat, settings.host, settings.port)
    except RuntimeError as exc:
        say(f"FEHLER: {exc}")
        return 2
    if not chat.guard.held:
        say(
            "Hinweis: Ein anderer Prozess liest gerade ein; die App übernimmt den Speicher, "
            "sobald er frei ist (bis dahin kann der Reiter „Quellen“ nicht einlesen)."
        )
    print(f"Quellenchat läuft: {running.url}  (Beenden mit Strg+C)", flush=True)
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=1)
    except KeyboardInterrupt:
        say("Beende …")
    running.stop()
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
