"""The chat app over HTTP: real servers on loopback, a real store, `gradio_client` as the caller."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from chat_app import Running, queue_notice, with_heartbeats
from quellenchat.storage import open_client, read_sources
from retrieval.answers import REFUSAL
from retrieval.render import answer_markdown, escape_markdown
from tests.app_support import HOSTILE_QUESTION, app_client, app_settings, free_port, start_app
from tests.helpers import MODELS_DIR, PROJECT_ROOT, write_pdf

QUESTION = "Warum fehlt vielen Firmen das Vertrauen in KI?"
OFF_TOPIC = "Wie backe ich ein Sauerteigbrot mit Roggenmehl?"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_app(app_settings(tmp_path_factory, "chat-app"))
    yield running
    running.stop()


@pytest.fixture
def client(app: Running, tmp_path: Path) -> Client:
    """A fresh session: its own conversation state."""
    return app_client(app, tmp_path)


def _final(client: Client, question: str) -> tuple[Any, ...]:
    """The chat endpoint's last output: (chat, sources, question box, download, status)."""
    return tuple(client.predict(question, api_name="/chat"))


def _texts(chat: list[dict[str, Any]]) -> list[str]:
    return ["".join(part["text"] for part in message["content"]) for message in chat]


def test_ask_answers_with_verified_citations_as_the_cli_contract(
    app: Running, client: Client
) -> None:
    result = client.predict(QUESTION, api_name="/ask")
    assert not result["refused"]
    assert result["citations"]
    assert all(c["verified"] for c in result["citations"])
    texts = {p["id"]: p["text"] for p in result["passages"]}
    for citation in result["citations"]:
        assert f"[{citation['n']}]" in result["answer"]
        assert " ".join(citation["quote"].split()) in " ".join(
            texts[citation["passage_id"]].split()
        )
    assert "Vertrauen" in result["answer"]
    # The same JSON object the answerer gives the CLI (`python -m retrieval ask --json`).
    assert result == app.chat.answerer.ask(QUESTION).to_json()


def test_chat_shows_evidence_before_the_answer_and_offers_an_export(client: Client) -> None:
    job = client.submit(QUESTION, api_name="/chat")
    job.result()
    outputs = [tuple(o) for o in job.outputs()]
    chat, sources, box, export, status = outputs[-1]
    pending = [o for o in outputs[:-1] if "die Antwort wird formuliert" in str(o[1])]
    assert pending, "the evidence must be shown before the final answer"
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert "Vertrauen" in _texts(chat)[1]
    assert "✓ geprüft" in sources
    assert 'id="quelle-1"' in sources
    assert box == ""
    assert status == ""
    assert export is None  # nothing is written before the user asks for it
    markdown = Path(client.predict(api_name="/export")).read_text(encoding="utf-8")
    assert QUESTION in markdown
    assert "### Quellen" in markdown
    assert "– geprüft" in markdown


def test_follow_up_question_uses_the_conversation(client: Client) -> None:
    first = "Wie viele KMU setzen bereits KI ein?"
    _final(client, first)
    chat, *_ = _final(client, "Und bei den mittelgroßen Firmen?")
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert "MA)" in _texts(chat)[3]  # Eurostat's share by company size (10-49 / 51-249 MA)
    markdown = Path(client.predict(api_name="/export")).read_text(encoding="utf-8")
    assert markdown.index("## Frage 1") < markdown.index("## Frage 2")
    # The API takes the history explicitly.
    answer = client.predict("Und bei den mittelgroßen Firmen?", [[first, "…"]], api_name="/ask")
    assert answer["standalone_question"].startswith(first)
    assert answer["citations"]


def test_new_conversation_forgets_the_history(client: Client) -> None:
    _final(client, QUESTION)
    cleared = client.predict(api_name="/new_conversation")
    assert cleared[0] == []
    chat, *_ = _final(client, "Wie viele KMU setzen bereits KI ein?")
    assert len(chat) == 2


def test_off_topic_question_is_refused_with_related_passages_not_as_support(
    client: Client,
) -> None:
    result = client.predict(OFF_TOPIC, api_name="/ask")
    assert result["refused"]
    assert result["answer"] == REFUSAL
    assert result["citations"] == []
    chat, sources, *_ = _final(client, OFF_TOPIC)
    assert _texts(chat)[1].startswith(REFUSAL)
    assert "Möglicherweise verwandt (kein Beleg)" in sources
    assert "qc-copy" not in sources


def test_empty_and_overlong_questions_get_a_clear_message(client: Client) -> None:
    chat, _, _, _, status = _final(client, "   ")
    assert chat == []
    assert "Bitte eine Frage eingeben" in status
    with pytest.raises(AppError, match="zu lang"):
        client.predict("Warum " * 1000, api_name="/ask")


def test_hostile_document_text_reaches_the_browser_only_escaped(client: Client) -> None:
    chat, sources, *_ = _final(client, HOSTILE_QUESTION)
    answer = _texts(chat)[1]
    assert "Prompt" in answer
    assert "<img" not in answer
    assert "&lt;img src=x onerror=alert(1)&gt;" in answer
    assert "<img" not in sources
    assert "&lt;img src=x onerror=alert(1)&gt;" in sources


def test_feedback_is_written_without_personal_data(app: Running, client: Client) -> None:
    assert "Noch keine Antwort" in client.predict("", api_name="/rate_up")[0]
    _final(client, QUESTION)
    expected = client.predict(QUESTION, api_name="/ask")
    status, comment = client.predict("Zu allgemein", api_name="/rate_down")
    assert status.startswith("Danke")
    assert comment == ""
    lines = app.chat.settings.feedback_file.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[-1])
    assert entry["kind"] == "nicht_hilfreich"
    assert entry["question"] == QUESTION
    assert entry["answer"] == expected["answer"]
    assert entry["passage_ids"] == [p["id"] for p in expected["passages"]]
    assert entry["backend"] == "extractive"
    assert entry["comment"] == "Zu allgemein"
    assert "127.0.0.1" not in lines[-1]
    assert not {"ip", "host", "session", "user", "client"} & set(entry)


def test_corpus_pdfs_are_served_at_their_page_and_nothing_else(
    app: Running, client: Client
) -> None:
    _, sources, *_ = _final(client, HOSTILE_QUESTION)
    settings = app.chat.settings
    records = {r.source: r for r in read_sources(open_client(settings))}
    pdf_sha = records["literature/ki-sicherheit.pdf"].doc_sha
    assert f'href="quellen/{pdf_sha}.pdf#page=2"' in sources
    with httpx.Client(base_url=app.url) as http:
        served = http.get(f"quellen/{pdf_sha}.pdf")
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/pdf"
        assert served.content.startswith(b"%PDF-")
        text_sha = records["ki-faktenblatt.txt"].doc_sha
        assert http.get(f"quellen/{text_sha}.pdf").status_code == 404
        assert http.get("quellen/..%2F..%2Fetc%2Fpasswd").status_code == 404
        metadata = settings.corpus[0].resolve() / "metadata.toml"
        assert http.get(f"gradio_api/file={metadata}").status_code in (403, 404)


def test_cli_ingest_is_refused_while_the_app_runs(app: Running) -> None:
    settings = app.chat.settings
    cli = subprocess.run(
        [sys.executable, "-m", "ingest", "--store", str(settings.store),
         "--corpus", str(settings.corpus[0]), "--json"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert cli.returncode == 2
    assert "anderen Prozess" in json.loads(cli.stdout)["error"]


DEV_QUESTIONS = [
    json.loads(line)["question"]
    for line in (PROJECT_ROOT / "eval" / "dev-faktenblatt.jsonl").read_text().splitlines()
    if line.strip() and json.loads(line)["answerable"]
][:10]


def test_ten_clients_asking_at_once_all_get_complete_answers(app: Running, tmp_path: Path) -> None:
    assert len(DEV_QUESTIONS) == 10

    def ask(index: int) -> tuple[str, Any]:
        client = app_client(app, tmp_path / str(index))
        question = DEV_QUESTIONS[index]
        if index % 2:
            return "chat", _final(client, question)
        return "ask", client.predict(question, api_name="/ask")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(ask, range(10)))
    for index, (kind, result) in enumerate(results):
        expected = app.chat.answerer.ask(DEV_QUESTIONS[index])
        if kind == "ask":
            assert result == expected.to_json()
        else:
            chat, _, _, _, status = result
            assert status == ""
            assert _texts(chat) == [escape_markdown(expected.question), answer_markdown(expected)]


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_app(
        app_settings(tmp_path_factory, "admin-app", admin_password="geheim", upload_max_mb=1)
    )
    yield running
    running.stop()


def test_admin_password_is_enforced_then_upload_and_reingest(
    admin_app: Running, tmp_path: Path
) -> None:
    corpus = admin_app.chat.settings.corpus[0]
    pdf = write_pdf(
        tmp_path / "Robotik Studie.pdf",
        ["Kollaborative Roboter entlasten Beschäftigte in der Montage kleiner Betriebe."],
    )
    stranger = app_client(admin_app, tmp_path / "stranger")
    with httpx.Client(base_url=admin_app.url) as http:  # not even into Gradio's temp folder
        refused = http.post("gradio_api/upload", files={"files": (pdf.name, pdf.read_bytes())})
    assert refused.status_code == 403
    assert "erst nach der Anmeldung" in refused.text
    with pytest.raises(httpx.HTTPStatusError):  # gradio_client sends the file first
        stranger.predict(handle_file(pdf), False, api_name="/upload")
    assert not (corpus / "literature" / "Robotik Studie.pdf").exists()
    assert "Nicht angemeldet" in stranger.predict(api_name="/plan")
    assert "Nicht angemeldet" in stranger.predict(api_name="/update")[0]
    assert "Falsches Passwort" in stranger.predict("falsch", api_name="/login")[0]
    assert "Nicht angemeldet" in stranger.predict(api_name="/plan")

    admin = app_client(admin_app, tmp_path / "admin")
    status, documents = admin.predict("geheim", api_name="/login")
    assert status == "Angemeldet."
    assert len(documents["data"]) == 2
    fake = tmp_path / "fake.pdf"
    fake.write_text("<html>kein PDF</html>", encoding="utf-8")
    assert "kein PDF" in admin.predict(handle_file(fake), False, api_name="/upload")[0]
    message, plan = admin.predict(handle_file(pdf), False, api_name="/upload")
    assert "gespeichert" in message
    assert "1 neu" in plan
    assert "`literature/Robotik Studie.pdf`" in plan
    result, table = admin.predict(api_name="/update")
    assert result.startswith("**Erledigt:** 1 neu"), result
    assert "literature/Robotik Studie.pdf" in [row[1] for row in table["data"]]
    answer = admin.predict("Wer entlastet Beschäftigte in der Montage?", api_name="/ask")
    assert answer["citations"][0]["source"] == "literature/Robotik Studie.pdf"


def test_an_oversized_upload_is_refused_before_it_is_stored(
    admin_app: Running, tmp_path: Path
) -> None:
    status, _ = app_client(admin_app, tmp_path / "admin").predict("geheim", api_name="/login")
    assert status == "Angemeldet."  # only signed-in clients may send files at all
    big = tmp_path / "gross.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1))  # the limit is 1 MB here
    with httpx.Client(base_url=admin_app.url) as http:
        with big.open("rb") as handle:
            refused = http.post("gradio_api/upload", files={"files": ("gross.pdf", handle)})
        assert refused.status_code == 413
        with big.open("rb") as handle:
            small = http.post("gradio_api/upload", files={"files": ("klein.pdf", handle.read(64))})
        assert small.status_code == 200
    # gradio_client reads the limit from the app's config and refuses before sending.
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes"):
        app_client(admin_app, tmp_path / "admin").predict(
            handle_file(big), False, api_name="/upload"
        )
    assert not (admin_app.chat.settings.corpus[0] / "literature" / "gross.pdf").exists()


def test_admin_tab_is_disabled_off_loopback_without_password(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # The app believes it binds to every interface; the test still serves it on loopback only.
    settings = app_settings(tmp_path_factory, "open-app", host="0.0.0.0")
    running = start_app(settings)
    try:
        client = app_client(running, tmp_path)
        endpoints = client.view_api(print_info=False, return_format="dict")
        names = set(endpoints["named_endpoints"]) | set(endpoints["unnamed_endpoints"])
        assert not {"/upload", "/update", "/plan", "/login"} & names
        config = httpx.get(running.url + "config").text
        assert "ist gesperrt" in config
    finally:
        running.stop()


def test_heartbeats_fill_silences_and_pass_errors_on() -> None:
    release = threading.Event()

    def slow() -> Iterator[str]:
        yield "belege"
        release.wait(60)  # the LLM is busy with someone else
        yield "antwort"

    beats = with_heartbeats(slow(), 0.01)
    assert next(beats) == "belege"
    assert next(beats) is None  # nothing arrives until the model is free
    release.set()
    assert [event for event in beats if event is not None] == ["antwort"]

    def failing() -> Iterator[str]:
        yield "belege"
        raise RuntimeError("Speicher nicht erreichbar")

    with pytest.raises(RuntimeError, match="Speicher nicht erreichbar"):
        list(with_heartbeats(failing(), 0.01))
    assert "Sie sind Nr. 3 in der Warteschlange" in queue_notice(3, evidence_shown=True)
    assert "Belege stehen schon rechts" in queue_notice(3, evidence_shown=True)
    assert "Sie sind Nr. 1 in der Warteschlange" in queue_notice(1, evidence_shown=False)
    assert "Belege" not in queue_notice(1, evidence_shown=False)


@dataclass
class Launched:
    """`python chat_app.py` running as its own process."""

    process: subprocess.Popen[str]
    url: str
    stderr: Path

    def stop(self, how: signal.Signals = signal.SIGINT) -> str:
        """Ctrl+C, as a user would (or SIGTERM, as docker stop); returns the app's stderr."""
        self.process.send_signal(how)
        try:
            assert self.process.wait(timeout=120) == 0
        except subprocess.TimeoutExpired:  # show where it hangs: every thread's stack
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.process.kill()
            raise AssertionError(self.stderr.read_text(encoding="utf-8")) from None
        return self.stderr.read_text(encoding="utf-8")


def launch(env: dict[str, str], stderr: Path) -> Launched:
    """Start `python chat_app.py` like `make run` does; returns once it has printed its URL."""
    with stderr.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "chat_app.py"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process does
        if line.startswith("Quellenchat läuft: "):
            return Launched(process, line.split()[2], stderr)
    process.wait()
    raise AssertionError(f"kein URL ausgegeben:\n{stderr.read_text(encoding='utf-8')}")


def test_python_chat_app_ingests_a_fresh_store_then_reuses_it(
    fact_sheet_corpus: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "QUELLENCHAT_CORPUS": json.dumps([str(fact_sheet_corpus)]),
        "QUELLENCHAT_STORE": str(tmp_path / "store"),
        "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
        "QUELLENCHAT_LLM_BACKEND": "extractive",
        "QUELLENCHAT_FEEDBACK_FILE": str(tmp_path / "feedback.jsonl"),
        "QUELLENCHAT_HOST": "127.0.0.1",
        "QUELLENCHAT_PORT": str(free_port()),
    }
    runs = []
    for run, how in (("frisch", signal.SIGINT), ("vorhanden", signal.SIGTERM)):
        app = launch(env, tmp_path / f"{run}.log")
        try:
            assert app.url == f"http://127.0.0.1:{env['QUELLENCHAT_PORT']}/"
            result = Client(app.url, verbose=False, analytics_enabled=False).predict(
                QUESTION, api_name="/ask"
            )
            assert result["citations"]
            assert all(c["verified"] for c in result["citations"])
        finally:
            if app.process.poll() is None:
                runs.append(app.stop(how))
    fresh, existing = runs
    assert "Index fehlt oder ist nicht aktuell (1 neu" in fresh
    assert "Eingelesen:" in fresh
    assert "Index ist aktuell: 1 Dokumente" in existing
    assert "lese ein" not in existing
    assert "Beende" in fresh  # Ctrl+C
    assert "Beende" in existing  # SIGTERM stops it just as cleanly
