"""The chat app with the real local model: warm-up at start, and each waiting user's own place.

A real Gradio server on loopback, `gradio_client` as the users, the bundled model behind it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from chat_app import ChatApp, Running, progress_notice, serve
from quellenchat.llm_model import LocalServer, ServerOptions, local_model_path, shared_server
from quellenchat.settings import Settings
from retrieval.answers import Progress
from tests.app_support import app_settings, free_port

pytestmark = pytest.mark.slow

FIRST = "Wer betreibt das Netzwerk der KI-Trainer?"
# Not a list question: a listing section would answer that verbatim, without the model.
SECOND = "Warum fehlt vielen Firmen das Vertrauen in KI?"


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings = app_settings(
        tmp_path_factory,
        "llm-app",
        llm_backend="local",
        llm_max_tokens=40,
        llm_threads=2,
        llm_context=2048,
    )
    running = serve(ChatApp(settings), "127.0.0.1", free_port())
    yield running
    running.stop()


def _server(settings: Settings) -> LocalServer:
    """The app's local model server (one per model and options in this process)."""
    path = local_model_path(settings)
    assert path is not None
    return shared_server(ServerOptions.from_settings(path, settings))


def _client(running: Running, downloads: Path) -> Client:
    return Client(
        running.url, verbose=False, download_files=str(downloads), analytics_enabled=False
    )


def _statuses(job: Any) -> list[str]:
    """The status line of every output the chat endpoint streamed so far, repeats dropped."""
    statuses: list[str] = []
    for output in job.outputs():
        status = tuple(output)[4]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
    return statuses


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _seen(job: Any, text: str) -> Callable[[], bool]:
    return lambda: any(text in status for status in _statuses(job))


def test_busy_model_tells_each_waiting_user_their_place(llm_app: Running, tmp_path: Path) -> None:
    server = _server(llm_app.chat.settings)
    first = _client(llm_app, tmp_path / "eins")
    second = _client(llm_app, tmp_path / "zwei")
    with server.gate.turn():  # the model is busy with someone else's question
        warm_up = llm_app.chat.warm_up()  # as at app start: it queues like a question
        _wait_for(lambda: server.gate.waiting == 1, "the warm-up never queued")
        job = first.submit(FIRST, api_name="/chat")
        _wait_for(_seen(job, "Sie sind Nr. 2 in der Warteschlange"), "first: no place shown")
        later = second.submit(SECOND, api_name="/chat")
        _wait_for(_seen(later, "Sie sind Nr. 3 in der Warteschlange"), "second: no place shown")
    job.result(timeout=600)
    later.result(timeout=600)
    warm_up.join(timeout=600)

    assert server.running  # started by the warm-up, not by a question
    for done, places in ((job, ["Nr. 2", "Nr. 1"]), (later, ["Nr. 3", "Nr. 2", "Nr. 1"])):
        statuses = _statuses(done)
        waiting = [s for s in statuses if "Warteschlange" in s]
        assert [s.split("Sie sind ")[1].split(" in")[0] for s in waiting] == places
        assert all("Die Belege stehen schon rechts" in s for s in waiting)  # evidence first
        reading = next(i for i, s in enumerate(statuses) if "liest die Belege" in s)
        # Once its turn came, it is never told the model is busy with others.
        assert not any("Warteschlange" in s for s in statuses[reading:])
        assert statuses[-1] == ""
        chat, *_ = done.outputs()[-1]
        answer = "".join(part["text"] for part in chat[-1]["content"])
        assert re.search(r"\\?\[\d\\?\]", answer), answer  # cited (brackets escaped)
        assert "wörtlichen Belegstellen" not in answer  # the model's answer, no fallback


def test_progress_notices_name_the_stage() -> None:
    assert "Sie sind Nr. 2 in der Warteschlange" in progress_notice(
        Progress("queued", 2), evidence_shown=False
    )
    assert "Folgefrage" in progress_notice(Progress("condensing"), evidence_shown=False)
    reading = progress_notice(Progress("generating"), evidence_shown=True)
    assert "liest die Belege" in reading
    assert "andere" not in reading
