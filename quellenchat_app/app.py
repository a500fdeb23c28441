"""The app: one service over the wired parts, its two tabs, the `ask` API and the HTTP routes."""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from quellenchat.settings import Settings
from quellenchat_app.admin import LoginThrottle, SignedIn, admin_mode
from quellenchat_app.api import AskApi
from quellenchat_app.chat_tab import ChatTab
from quellenchat_app.lifecycle import SWEEP_SECONDS, Background
from quellenchat_app.page import INTRO, PAGE_JS, TITLE
from quellenchat_app.routes import NO_UPLOADS, SIGN_IN_FIRST, asgi
from quellenchat_app.service import ChatService
from quellenchat_app.sources_tab import SourcesTab
from quellenchat_app.wiring import Components, wire
from retrieval.answering import Answerer
from retrieval.export import ExportFolder


class ChatApp:
    """The app's parts and its Gradio interface; everything it does goes through `service`."""

    def __init__(
        self,
        settings: Settings,
        answerer: Answerer | None = None,
        throttle: LoginThrottle | None = None,
        *,
        parts: Components | None = None,
    ) -> None:
        """Wire the app for `settings` (or use `parts`, already wired; or `answerer`'s parts).

        Raises:
            StoreError: the store cannot be opened.
        """
        self.settings = settings
        self.service = ChatService(parts or wire(settings, answerer=answerer))
        self.mode = admin_mode(settings)
        self.signed_in = SignedIn()
        self.chat_tab = ChatTab(self.service, settings)
        self.sources_tab = SourcesTab(
            self.service, settings, self.mode, throttle or LoginThrottle(), self.signed_in
        )
        self.api = AskApi(self.service)
        self.background = Background(self.service)

    @property
    def answerer(self) -> Answerer:
        """The answerer behind the app (tests compare the app's answers with its own)."""
        return self.service.answerer

    @property
    def exports(self) -> ExportFolder:
        """The folder the conversation exports are written to."""
        return self.service.exports

    def blocks(self) -> gr.Blocks:
        """The Gradio interface."""
        with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
            gr.Markdown(f"# {TITLE}\n{INTRO}")
            with gr.Tabs():
                with gr.Tab("Chat", id="chat"):
                    self.chat_tab.build()
                with gr.Tab("Quellen", id="quellen"):
                    self.sources_tab.build(demo)
            # As a load event: `mount_gradio_app(js=…)` misses the config the page embeds.
            demo.load(None, js=PAGE_JS, api_visibility="private")
            self.api.register()
        return demo

    def asgi(self) -> Any:
        """The FastAPI app: `/healthz`, the corpus PDF route, and the Gradio interface at `/`."""
        return asgi(
            self.service,
            self.blocks(),
            upload_refusal=self._upload_refusal,
            upload_max_mb=self.settings.upload_max_mb,
            exports=self.service.exports.root,
        )

    def _upload_refusal(self, client: str) -> str | None:
        """Why `client` may not send files to Gradio's upload route (None: it may)."""
        if self.mode == "disabled":
            return NO_UPLOADS
        if self.mode == "password" and client not in self.signed_in:
            return SIGN_IN_FIRST
        return None

    def warm_up(self) -> threading.Thread:
        """Load the embedder, then the local model with its primed prefix, in the background.

        One after the other: on two cores, loading both at once only slows both.
        """
        return self.background.warm_up()

    def sweep_exports(self, interval: float = SWEEP_SECONDS) -> threading.Thread:
        """Delete expired exports every `interval` seconds until `close()`."""
        return self.background.sweep_exports(interval)

    def close(self) -> None:
        """Release the store for other writers; delete this app's exports."""
        self.background.stop()
        self.service.close()
