"""`python chat_app.py`: bring the store up to date, then serve Quellenchat and print its URL.

The app itself lives in `quellenchat_app/`: `wiring` builds the parts once, `service` is the UI's
one door into retrieval and ingest, `chat_tab` and `sources_tab` are the two tabs, `api` the `ask`
endpoint, `routes` the HTTP routes, `lifecycle` start and stop. The names below stay importable
from here for tests and benchmarks.
"""

import faulthandler
import os
import signal
import sys
from types import FrameType

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ingest.maintenance import bring_up_to_date
from quellenchat.embedding import make_embedder
from quellenchat.logs import configure_logging
from quellenchat.settings import Settings
from quellenchat.storage import StoreError
from quellenchat_app.api import api_history, api_question
from quellenchat_app.app import ChatApp
from quellenchat_app.chat_tab import (
    history,
    messages,
    progress_notice,
    queue_notice,
    with_heartbeats,
)
from quellenchat_app.lifecycle import Running, serve, serve_until_interrupted
from quellenchat_app.wiring import wire

__all__ = [
    "ChatApp",
    "Running",
    "api_history",
    "api_question",
    "history",
    "main",
    "messages",
    "progress_notice",
    "queue_notice",
    "serve",
    "with_heartbeats",
]


def main() -> int:
    """`python chat_app.py`: bring the store up to date, then serve until interrupted."""
    settings = Settings()
    configure_logging(settings.log_level)
    _stop_on_signals()
    say = _stderr
    embedder = make_embedder(settings)  # the process's one model; it loads on first use
    if settings.startup_ingest:
        report = bring_up_to_date(
            settings, log=say, show_progress=sys.stderr.isatty(), embedder=embedder
        )
        if report.error and report.busy:
            say(f"Hinweis: {report.error} Diese Instanz zeigt bis dahin den vorhandenen Stand.")
        elif report.error:
            say(f"FEHLER: {report.error}")
            return 2
    try:
        chat = ChatApp(settings, parts=wire(settings, embedder=embedder))
        # The store must fit (same embedder) before the app serves; this also builds the
        # lexical index now, not on the first question.
        chat.service.snapshot()
    except StoreError as exc:
        say(f"FEHLER: {exc}")
        return 2
    chat.service.prune_feedback()
    # The embedder, the local model and its cold prompt prefix load in the background while the
    # app already serves: early questions wait for them (and see their place in the queue).
    chat.warm_up()
    try:
        running = serve(chat, settings.host, settings.port)
    except RuntimeError as exc:
        say(f"FEHLER: {exc}")
        return 2
    if not chat.service.store_held:
        say(
            "Hinweis: Ein anderer Prozess liest gerade ein; die App übernimmt den Speicher, "
            "sobald er frei ist (bis dahin kann der Reiter „Quellen“ nicht einlesen)."
        )
    print(f"Quellenchat läuft: {running.url}  (Beenden mit Strg+C)", flush=True)
    serve_until_interrupted(running, say)
    return 0


def _stop_on_signals() -> None:
    """Ctrl+C and SIGTERM (docker stop, systemd) stop the app cleanly.

    The store is released and the exports are deleted. Set explicitly, because a process started
    with SIGINT ignored (a background job of a non-interactive shell) would otherwise ignore
    Ctrl+C. SIGUSR1 writes every thread's stack to stderr, for a process that does not stop.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
