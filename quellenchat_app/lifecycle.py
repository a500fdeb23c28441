"""Start and stop: the server thread, the background warm-up and export sweeping, Ctrl+C."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quellenchat_app.service import ChatService

if TYPE_CHECKING:
    from quellenchat_app.app import ChatApp

log = logging.getLogger("quellenchat.app")

# How often expired conversation exports are deleted.
SWEEP_SECONDS = 30.0


class Background:
    """The app's background threads: warm-up at start, export sweeping until `stop()`."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self._sweeping = threading.Event()

    def warm_up(self) -> threading.Thread:
        """Load the embedder, then the local model with its primed prefix, in the background."""
        thread = threading.Thread(
            target=self.service.warm_up, name="quellenchat-warm-up", daemon=True
        )
        thread.start()
        return thread

    def sweep_exports(self, interval: float = SWEEP_SECONDS) -> threading.Thread:
        """Delete expired exports every `interval` seconds until `stop()`."""
        exports = self.service.exports

        def run() -> None:
            while not self._sweeping.wait(interval):
                exports.prune()

        self._sweeping.clear()
        exports.prune()  # leftovers of an app that was killed
        thread = threading.Thread(target=run, name="quellenchat-exports", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the sweeping."""
        self._sweeping.set()


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

    chat.service.hold_store()
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


def serve_until_interrupted(running: Running, say: Callable[[str], None]) -> None:
    """Serve until the server ends or Ctrl+C, then stop the app and release the store."""
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=1)
    except KeyboardInterrupt:
        say("Beende …")
    running.stop()
