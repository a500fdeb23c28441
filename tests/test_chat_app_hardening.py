"""Hostile requests to the app (issue #17): real servers on loopback, raw HTTP and gradio_client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio.utils import get_upload_folder
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from chat_app import ChatApp, Running, serve
from quellenchat_app.admin import LoginThrottle
from tests.app_support import app_client, app_settings, free_port, start_app
from tests.helpers import write_pdf

QUESTION = "Warum fehlt vielen Firmen das Vertrauen in KI?"


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Loopback without password: the Quellen tab is open."""
    running = start_app(app_settings(tmp_path_factory, "open-admin-app"))
    yield running
    running.stop()


def call(running: Running, api_name: str, data: list[Any]) -> tuple[str, Any]:
    """An endpoint called over Gradio's plain HTTP API, as any script could: (event, data)."""
    with httpx.Client(base_url=running.url, timeout=120) as http:
        started = http.post(f"gradio_api/call/{api_name}", json={"data": data})
        assert started.status_code == 200, started.text
        event_id = started.json()["event_id"]
        events = http.get(f"gradio_api/call/{api_name}/{event_id}").text
    last_event, last_data = "", None
    for line in events.splitlines():
        if line.startswith("event: "):
            last_event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            last_data = json.loads(line.removeprefix("data: "))
    return last_event, last_data


def test_a_forged_server_path_is_refused_before_anything_is_copied(
    open_app: Running, tmp_path: Path
) -> None:
    secret = write_pdf(tmp_path / "privat" / "geheim.pdf", ["Vertrauliche Zahlen der Firma."])
    forged = {"path": str(secret), "orig_name": "geheim.pdf", "meta": {"_type": "gradio.FileData"}}
    gradio_cache = Path(get_upload_folder())
    before = set(gradio_cache.rglob("geheim.pdf")) if gradio_cache.exists() else set()
    event, data = call(open_app, "upload", [forged, False])
    assert event == "error", (event, data)
    assert "nicht über diese App hochgeladen" in json.dumps(data, ensure_ascii=False)
    corpus = open_app.chat.settings.corpus[0]
    assert not (corpus / "literature" / "geheim.pdf").exists()
    after = set(gradio_cache.rglob("geheim.pdf")) if gradio_cache.exists() else set()
    assert after == before  # not even copied into Gradio's cache

    url = {"path": "http://127.0.0.1:9/x.pdf", "meta": {"_type": "gradio.FileData"}}
    event, _ = call(open_app, "upload", [url, False])
    assert event == "error"


def test_a_real_upload_still_works(open_app: Running, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "Echt Hochgeladen.pdf", ["Ein echtes Dokument über Roboter."])
    message, plan = app_client(open_app, tmp_path).predict(
        handle_file(pdf), False, api_name="/upload"
    )
    assert "gespeichert" in message
    assert "`literature/Echt Hochgeladen.pdf`" in plan


def test_without_admin_nobody_may_upload_files(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    running = start_app(app_settings(tmp_path_factory, "no-admin-app", host="0.0.0.0"))
    try:
        with httpx.Client(base_url=running.url) as http:
            for route in ("gradio_api/upload", "gradio_api/upload/", "/gradio_api//upload"):
                refused = http.post(route, files={"files": ("x.pdf", b"%PDF-1.4 klein")})
                assert refused.status_code == 403, route
                assert "Hochladen ist abgeschaltet" in refused.text
            assert http.get("healthz").status_code == 200
    finally:
        running.stop()


def test_no_openapi_schema_or_docs_are_served(open_app: Running) -> None:
    with httpx.Client(base_url=open_app.url) as http:
        for route in ("openapi.json", "docs", "redoc"):
            assert http.get(route).status_code == 404, route
        assert http.get("gradio_api/info").status_code == 200  # gradio_client needs it


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        (QUESTION, "kein Verlauf", "Feld „history“ muss eine Liste von [Frage, Antwort]-Paaren"),
        (QUESTION, 5, "Feld „history“ muss eine Liste von [Frage, Antwort]-Paaren"),
        (QUESTION, [["nur eine Frage"]], "Feld „history“, Eintrag 1: erwartet ein Paar"),
        (None, None, "Feld „question“ muss Text sein"),
        (42, [], "Feld „question“ muss Text sein"),
    ],
)
def test_malformed_ask_input_gets_a_german_message_naming_the_field(
    open_app: Running, tmp_path: Path, question: Any, history: Any, expected: str
) -> None:
    with pytest.raises(AppError) as error:
        app_client(open_app, tmp_path).predict(question, history, api_name="/ask")
    assert expected in str(error.value)
    assert "Error" not in str(error.value)


def test_well_formed_history_is_still_taken(open_app: Running, tmp_path: Path) -> None:
    first = "Wie viele KMU setzen bereits KI ein?"
    answer = app_client(open_app, tmp_path).predict(
        "Und bei den mittelgroßen Firmen?", [[first, "…"]], api_name="/ask"
    )
    assert answer["standalone_question"].startswith(first)


def test_guessing_the_admin_password_is_slowed_down_and_the_right_one_works_after(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    settings = app_settings(tmp_path_factory, "throttled-app", admin_password="geheim")
    throttle = LoginThrottle(free_per_client=2, first_wait=1.5)
    running = serve(ChatApp(settings, throttle=throttle), "127.0.0.1", free_port())
    try:
        client = app_client(running, tmp_path)
        for _ in range(2):
            assert "Falsches Passwort" in client.predict("falsch", api_name="/login")[0]
        refused = client.predict("geheim", api_name="/login")[0]  # even the right one must wait
        assert "Zu viele Fehlversuche" in refused
        assert "erneut versuchen" in refused
        assert "Nicht angemeldet" in client.predict(api_name="/plan")
        time.sleep(throttle.wait("127.0.0.1") + 0.1)
        status, documents = client.predict("geheim", api_name="/login")
        assert status == "Angemeldet."
        assert documents["data"]
    finally:
        running.stop()


def test_exports_are_written_when_asked_for_in_the_app_folder_and_go_at_stop(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    exports = tmp_path / "exporte"
    settings = app_settings(tmp_path_factory, "export-app", export_dir=exports)
    running = start_app(settings)
    try:
        marker = uuid.uuid4().hex
        client = app_client(running, tmp_path / "client")
        assert client.predict(api_name="/export") is None  # no conversation, no file
        client.predict(f"Wie backe ich Brot mit Sauerteig {marker}?", api_name="/chat")
        assert not exports.exists() or list(exports.iterdir()) == []  # not before it is asked for
        export = client.predict(api_name="/export")
        assert marker in Path(export).read_text(encoding="utf-8")  # downloaded over HTTP
        [written] = list(exports.glob("*/quellenchat-unterhaltung-*.md"))
        assert marker in written.read_text(encoding="utf-8")
        copies = [
            p
            for p in Path(get_upload_folder()).rglob("quellenchat-unterhaltung-*.md")
            if marker in p.read_text(encoding="utf-8")
        ]
        assert copies == []  # no copy in Gradio's temporary folder
    finally:
        running.stop()
    assert list(exports.iterdir()) == []
