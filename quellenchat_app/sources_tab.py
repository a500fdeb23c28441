"""The Quellen tab: admin login, the documents table, PDF upload, the ingest plan and run.

Who may administer, and how plans and results read, is `quellenchat_app.admin`; the ingest itself
runs through `ChatService`.
"""

# No `from __future__ import annotations`: Gradio reads the event handlers' type hints
# (`gr.Request`, `gr.Progress`).

from pathlib import Path
from typing import Any

import gradio as gr

from ingest.maintenance import needs_update
from ingest.upload import UploadError, limit_bytes
from quellenchat.settings import Settings
from quellenchat.storage import StoreError
from quellenchat_app.admin import (
    DOCUMENT_COLUMNS,
    AdminMode,
    LoginThrottle,
    SignedIn,
    document_rows,
    password_ok,
    plan_text,
    result_text,
    throttled_message,
)
from quellenchat_app.files import accept_only_uploads
from quellenchat_app.service import ChatService
from retrieval.render import escape_markdown

# Gradio recognises a progress parameter by its default; tqdm bars of the ingest feed it.
INGEST_PROGRESS = gr.Progress(track_tqdm=True)
_LOCKED = "**Nicht angemeldet.** Bitte zuerst mit dem Passwort anmelden."


class SourcesTab:
    """The Quellen tab's handlers; each Gradio event of the tab calls one of them."""

    def __init__(
        self,
        service: ChatService,
        settings: Settings,
        mode: AdminMode,
        throttle: LoginThrottle,
        signed_in: SignedIn,
    ) -> None:
        self.service = service
        self.settings = settings
        self.mode = mode
        self.throttle = throttle
        self.signed_in = signed_in

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
            self.signed_in.add(client)  # its uploads are let through from now on
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
            return document_rows(self.service.sources())
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
            saved = self.service.save_upload(Path(file), Path(file).name, replace=replace)
        except UploadError as exc:
            return f"**Abgelehnt:** {exc}", gr.skip(), gr.skip()
        message = f"„{escape_markdown(saved.name)}“ gespeichert. Zum Einlesen „Jetzt einlesen“."
        return (message, *self.plan(unlocked))

    def plan(self, unlocked: bool) -> tuple[Any, ...]:
        """The dry-run plan ("Aktualisieren"). Returns (plan, run button)."""
        if not self._admin_ok(unlocked):
            return _LOCKED, gr.update(visible=False)
        report = self.service.plan()
        return plan_text(report), gr.update(visible=needs_update(report))

    def update(self, unlocked: bool, progress: gr.Progress = INGEST_PROGRESS) -> tuple[Any, ...]:
        """Run the incremental ingest in this process. Returns (result, table, run button)."""
        if not self._admin_ok(unlocked):
            return _LOCKED, gr.skip(), gr.skip()
        progress(0, desc="Einlesen startet …")
        lines: list[str] = []
        report = self.service.update(log=lines.append, show_progress=True)
        details = "\n".join(f"- {escape_markdown(line)}" for line in lines[-30:])
        return (
            result_text(report) + (f"\n\n{details}" if details else ""),
            self._table(),
            gr.update(visible=False),
        )

    def build(self, demo: gr.Blocks) -> None:
        """Lay the tab out and wire its events (inside `demo`, the page's `gr.Blocks`)."""
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
