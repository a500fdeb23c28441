"""Server mode against a real `chroma run`: CLIs, two app replicas, the writer lease, faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from chat_app import ChatApp, Running, serve
from ingest.ownership import ID_FILE
from quellenchat.lease import LeaseLost, ServerLease, StoreBusy, current_lease, server_time
from quellenchat.settings import Settings
from quellenchat.storage import (
    CHUNKS,
    PAGES,
    SOURCES,
    StoreError,
    get_collection,
    open_client,
    read_page_text,
    read_sources,
)
from retrieval.answers import REFUSAL
from retrieval.search import Searcher
from tests.app_support import free_port
from tests.helpers import FACT_SHEET, MODELS_DIR, PROJECT_ROOT, ingest_corpus, write_pdf
from tests.server_support import AppProcess, ChromaServer

QUESTION = "Warum fehlt vielen Firmen das Vertrauen in KI?"
FOLLOW_UP = "Wie viele KMU setzen bereits KI ein?"
ROBOT_PAGES = ["Kollaborative Roboter entlasten Beschäftigte in der Montage kleiner Betriebe."]
ROBOT_QUESTION = "Wer entlastet Beschäftigte in der Montage?"
# Short enough that a test can wait for a lease to run out; renewed four times per length.
LEASE = 6.0


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma")
    server.start()
    yield server
    server.stop()


def fact_sheet(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FACT_SHEET, folder / FACT_SHEET.name)
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", folder / "metadata.toml")
    return folder


def server_settings(server: ChromaServer, corpus: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "corpus": [corpus],
        "store": corpus.parent / "nie-benutzt",
        "chroma_url": server.url,
        "models_dir": MODELS_DIR,
        "llm_backend": "extractive",
        "feedback_file": corpus.parent / "feedback.jsonl",
        "writer_lease_seconds": LEASE,
        "chroma_timeout": 3.0,
    }
    values.update(overrides)
    return Settings(**values)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
            **(env or {}),
        },
    )


def _final(client: Client, question: str) -> tuple[Any, ...]:
    """The chat endpoint's last output: (chat, sources, question box, export, status)."""
    return tuple(client.predict(question, api_name="/chat"))


def _client(url: str, downloads: Path) -> Client:
    return Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)


def assert_consistent(settings: Settings) -> None:
    """Every committed document complete, nothing pending."""
    client = open_client(settings)
    chunks, pages, sources = (get_collection(client, n) for n in (CHUNKS, PAGES, SOURCES))
    assert chunks is not None
    assert pages is not None
    assert sources is not None
    for record in read_sources(client):
        ids = chunks.get(where={"doc_sha": record.doc_sha}, include=[])["ids"]
        assert len(ids) == record.chunks, record.source
        assert len(pages.get(where={"doc_sha": record.doc_sha}, include=[])["ids"]) == record.pages
    assert sources.get(where={"pending": True}, include=[])["ids"] == []


# -- CLIs ------------------------------------------------------------------------------------


def test_cli_ingests_searches_and_answers_through_a_chroma_server(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    corpus = fact_sheet(tmp_path / "corpus")
    done = cli("ingest", "--corpus", str(corpus), "--chroma-url", chroma.url, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["new"] == ["ki-faktenblatt.txt"]
    assert summary["store"] == chroma.url

    status = cli("ingest", "status", "--json", env={"QUELLENCHAT_CHROMA_URL": chroma.url})
    [document] = json.loads(status.stdout)["documents"]
    assert document["chunks"] == summary["chunks_total"]

    search = cli("retrieval", "search", QUESTION, "--chroma-url", chroma.url, "--json")
    passages = json.loads(search.stdout)["passages"]
    assert passages[0]["source"] == "ki-faktenblatt.txt"
    assert "Vertrauen" in passages[0]["text"]

    ask = cli("retrieval", "ask", QUESTION, "--backend", "extractive", "--chroma-url", chroma.url,
              "--json")  # fmt: skip
    answer = json.loads(ask.stdout)
    assert not answer["refused"]
    assert answer["citations"]
    assert all(c["verified"] for c in answer["citations"])

    # Everything readers need is in the server: manifest, chunks and the page texts quotes are
    # checked against.
    client = open_client(Settings(chroma_url=chroma.url))
    [record] = read_sources(client)
    assert read_page_text(client, record.doc_sha, 0)
    names = {c.name for c in client.list_collections()}
    assert {CHUNKS, PAGES, SOURCES} <= names

    both = cli("ingest", "status", "--store", str(tmp_path / "s"), "--chroma-url", chroma.url)
    assert both.returncode == 2
    assert "schließen sich aus" in both.stderr


# -- replicas --------------------------------------------------------------------------------


def _replica_env(server: ChromaServer, root: Path, corpus: Path, **extra: str) -> dict[str, str]:
    return {
        "QUELLENCHAT_CHROMA_URL": server.url,
        "QUELLENCHAT_CORPUS": json.dumps([str(corpus)]),
        "QUELLENCHAT_STORE": str(root / "nie-benutzt"),
        "QUELLENCHAT_FEEDBACK_FILE": str(root / "feedback.jsonl"),
        "QUELLENCHAT_WRITER_LEASE_SECONDS": str(LEASE),
        **extra,
    }


def test_two_app_replicas_share_one_store_and_write_one_at_a_time(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    corpus_a = fact_sheet(tmp_path / "a" / "corpus")
    corpus_b = tmp_path / "b" / "corpus"  # replica B has no documents of its own
    corpus_b.mkdir(parents=True)
    a = AppProcess(_replica_env(chroma, tmp_path / "a", corpus_a), tmp_path / "a.log")
    b = AppProcess(
        _replica_env(chroma, tmp_path / "b", corpus_b, QUELLENCHAT_STARTUP_INGEST="false"),
        tmp_path / "b.log",
    )
    try:
        a.wait_ready()  # A read its corpus into the server before it served
        b.wait_ready()
        for replica in (a, b):
            code, health = replica.health()
            assert code == 200, health
            assert health["status"] == "ok"
            assert health["store"] == {**health["store"], "documents": 1, "reachable": True}
        client_a, client_b = _client(a.url, tmp_path / "da"), _client(b.url, tmp_path / "db")
        from_a = client_a.predict(QUESTION, api_name="/ask")
        from_b = client_b.predict(QUESTION, api_name="/ask")
        assert from_a == from_b
        assert from_a["citations"]
        assert all(c["verified"] for c in from_a["citations"])

        # While someone else holds the writer lease, a replica's ingest is refused by name;
        # its dry run still works, and B's empty corpus does not withdraw A's documents.
        lease = ServerLease(open_client(Settings(chroma_url=chroma.url)), 30, "Wartungsjob x1")
        lease.acquire()
        try:
            result, _ = client_b.predict(api_name="/update")
            assert "wird gerade von Wartungsjob x1 beschrieben" in result
            plan = client_b.predict(api_name="/plan")
            assert "0 entfernt" in plan
            assert "Index ist aktuell" in plan
        finally:
            lease.release()

        # An upload through A lands in A's corpus; once A has read it in, B answers from it.
        pdf = write_pdf(tmp_path / "Robotik Studie.pdf", ROBOT_PAGES)
        message, plan = client_a.predict(handle_file(pdf), False, api_name="/upload")
        assert "1 neu" in plan, message
        result, table = client_a.predict(api_name="/update")
        assert result.startswith("**Erledigt:** 1 neu"), result
        assert "literature/Robotik Studie.pdf" in [row[1] for row in table["data"]]
        assert (corpus_a / "literature" / "Robotik Studie.pdf").is_file()
        answer = client_b.predict(ROBOT_QUESTION, api_name="/ask")
        assert answer["citations"][0]["source"] == "literature/Robotik Studie.pdf"
        assert answer["citations"][0]["verified"]
        assert b.health()[1]["store"] == {**b.health()[1]["store"], "documents": 2}
    finally:
        a.stop()
        b.stop()
    assert "Traceback" not in a.stderr() + b.stderr()


# -- faults ----------------------------------------------------------------------------------


def test_chroma_outage_mid_session_shows_a_german_message_and_recovers(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    settings = server_settings(chroma, fact_sheet(tmp_path / "corpus"))
    assert ingest_corpus(settings).exit_code == 0
    running = serve(ChatApp(settings), "127.0.0.1", free_port())
    try:
        client = _client(running.url, tmp_path / "downloads")
        before, *_ = _final(client, QUESTION)
        assert len(before) == 2

        chroma.stop()
        chat, _, box, _, status = _final(client, FOLLOW_UP)
        assert "nicht erreichbar" in status
        assert "bitte gleich erneut versuchen" in status
        assert chat == before  # the conversation stays
        assert box == FOLLOW_UP  # and so does the question, to send again
        with pytest.raises(AppError, match="nicht erreichbar"):
            client.predict(QUESTION, api_name="/ask")
        health = httpx.get(running.url + "healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "nicht erreichbar" in health.json()["problem"]
        # An outage is never mistaken for an empty store (that would be a wrong refusal).
        with pytest.raises(StoreError, match="nicht erreichbar"):
            running.chat.answerer.searcher.search(QUESTION)
        ask = cli("retrieval", "ask", QUESTION, "--backend", "extractive", "--chroma-url",
                  chroma.url)  # fmt: skip
        assert ask.returncode == 2
        assert "nicht erreichbar" in ask.stderr
        assert REFUSAL not in ask.stdout

        chroma.start()  # same data, same port: the app recovers by itself
        chat, _, box, _, status = _final(client, FOLLOW_UP)
        assert status == ""
        assert len(chat) == 4
        assert box == ""
        assert httpx.get(running.url + "healthz", timeout=30).status_code == 200

        chroma.freeze()  # a hanging server: requests give up after chroma_timeout
        try:
            with pytest.raises(AppError, match="antwortet nicht"):
                client.predict(QUESTION, api_name="/ask")
        finally:
            chroma.thaw()
        assert client.predict(QUESTION, api_name="/ask")["citations"]
    finally:
        running.stop()


class SilentEndpoint:
    """A TCP server that accepts connections and never answers: an LLM endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture(scope="module")
def hanging_llm_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An app on a Chroma server whose LLM endpoint accepts requests and never answers."""
    root = tmp_path_factory.mktemp("hanging")
    server = ChromaServer(root / "chroma")
    server.start()
    endpoint = SilentEndpoint()
    settings = server_settings(
        server,
        fact_sheet(root / "corpus"),
        llm_backend="openai",
        openai_base_url=endpoint.url,
        openai_model="schweigt",
        llm_timeout=2.0,
    )
    assert ingest_corpus(settings).exit_code == 0
    running = serve(ChatApp(settings), "127.0.0.1", free_port())
    yield running
    running.stop()
    endpoint.close()
    server.stop()


def test_an_llm_endpoint_that_hangs_gives_an_extractive_answer_with_a_notice(
    hanging_llm_app: Running, tmp_path: Path
) -> None:
    client = _client(hanging_llm_app.url, tmp_path)
    answer = client.predict(QUESTION, api_name="/ask")
    assert answer["backend"] == "extractive"
    assert "nicht erreichbar oder zu langsam" in answer["notice"]
    assert answer["citations"]
    assert all(c["verified"] for c in answer["citations"])
    chat, _, _, _, status = _final(client, QUESTION)
    assert status == ""
    text = "".join(part["text"] for part in chat[-1]["content"])
    assert "Hinweis: Das Sprachmodell (openai)" in text


@pytest.mark.parametrize(
    ("question", "message"),
    [
        pytest.param("", "Bitte eine Frage eingeben", id="empty"),
        pytest.param(" \x00\x07\x1b ", "Bitte eine Frage eingeben", id="only-control-characters"),
        pytest.param("Warum " * 2000, "zu lang", id="10000-characters"),
    ],
)
def test_malformed_questions_get_a_clear_message(
    hanging_llm_app: Running, tmp_path: Path, question: str, message: str
) -> None:
    client = _client(hanging_llm_app.url, tmp_path)
    chat, _, _, _, status = _final(client, question)
    assert chat == []
    assert message in status
    with pytest.raises(AppError, match=message):
        client.predict(question, api_name="/ask")
    assert httpx.get(hanging_llm_app.url + "healthz", timeout=30).status_code == 200


def test_control_characters_inside_a_question_are_dropped(
    hanging_llm_app: Running, tmp_path: Path
) -> None:
    client = _client(hanging_llm_app.url, tmp_path)
    answer = client.predict("Wie viele\x00 KMU\x07 setzen\x1b[31m bereits KI ein?", api_name="/ask")
    assert answer["question"] == "Wie viele KMU setzen [31m bereits KI ein?"
    assert not answer["refused"]
    assert answer["citations"]


# -- the writer lease ------------------------------------------------------------------------


def test_one_writer_at_a_time_and_a_released_lease_is_free_at_once(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    client = open_client(Settings(chroma_url=chroma.url))
    first = ServerLease(client, 2.0, holder="Instanz A")
    first.acquire()
    time.sleep(5)  # longer than the lease: it lives on only because it is renewed
    first.check()
    second = ServerLease(client, 2.0, holder="Instanz B")
    with pytest.raises(StoreBusy, match="wird gerade von Instanz A beschrieben"):
        second.acquire()
    corpus = fact_sheet(tmp_path / "corpus")
    busy = cli("ingest", "--corpus", str(corpus), "--chroma-url", chroma.url, "--json")
    assert busy.returncode == 2
    assert "wird gerade von Instanz A beschrieben" in json.loads(busy.stdout)["error"]
    planned = cli("ingest", "--dry-run", "--corpus", str(corpus), "--chroma-url", chroma.url)
    assert planned.returncode == 0, planned.stderr  # a dry run writes nothing, needs no lease
    lease = current_lease(client)
    assert lease is not None
    assert lease.holder == "Instanz A"
    first.release()
    assert current_lease(client) is None
    second.acquire()
    second.check()
    second.release()
    with pytest.raises(LeaseLost):
        second.check()


HOLD_LEASE = """
import sys, time
from quellenchat.lease import ServerLease
from quellenchat.settings import Settings
from quellenchat.storage import open_client
lease = ServerLease(open_client(Settings(chroma_url=sys.argv[1])), float(sys.argv[2]))
lease.acquire()
print("gehalten", flush=True)
time.sleep(600)
"""


def test_a_killed_writers_lease_is_taken_over_once_it_has_run_out(chroma: ChromaServer) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LEASE, chroma.url, "10"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "gehalten"
    holder.kill()  # no release: the lease must run out on its own
    holder.wait(timeout=30)
    client = open_client(Settings(chroma_url=chroma.url))
    taker = ServerLease(client, 10, holder="Nachfolger")
    with pytest.raises(StoreBusy, match=f"PID {holder.pid}"):
        taker.acquire()
    killed = current_lease(client)
    assert killed is not None
    deadline = time.monotonic() + 120
    while True:
        try:
            taker.acquire()
            break
        except StoreBusy:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    try:
        assert server_time(client) >= killed.expires_at
        now = current_lease(client)
        assert now is not None
        assert now.holder == "Nachfolger"
    finally:
        taker.release()


LONG_PAGE = " ".join(
    f"Satz {n} beschreibt, wie Betrieb {n % 17} mit KI die Wartung von Maschine {n % 5} plant."
    for n in range(90)
)


def test_a_frozen_writer_loses_its_lease_its_successor_cleans_up_and_it_stops_writing(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    write_pdf(corpus / "gross.pdf", [LONG_PAGE] * 12)  # more chunks than one write batch
    write_pdf(corpus / "klein.pdf", ["Ein kleines Dokument über Robotik im Handwerk."])
    settings = server_settings(chroma, corpus)
    writer = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--corpus", str(corpus), "--chroma-url", chroma.url,
         "--json"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
             "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
             "QUELLENCHAT_WRITER_LEASE_SECONDS": str(LEASE)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stderr is not None
    for line in writer.stderr:
        if "gross.pdf: 64/" in line:  # the first batch is stored, the document not committed
            writer.send_signal(signal.SIGSTOP)
            break
    else:
        raise AssertionError(f"kein Fortschritt: {writer.communicate()}")
    try:
        deadline = time.monotonic() + 120
        messages: list[str] = []
        while True:
            report = ingest_corpus(settings, log=messages.append)
            if not report.busy:
                break
            assert time.monotonic() < deadline, report.error
            time.sleep(0.5)
        assert report.exit_code == 0, report.to_json()
        assert any("Reste eines abgebrochenen Laufs entfernt: 64 Chunks" in m for m in messages)
        assert sorted(report.new) == ["gross.pdf", "klein.pdf"]
    finally:
        writer.send_signal(signal.SIGCONT)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 2, err
    assert "abgelaufen" in json.loads(out)["error"]
    assert_consistent(settings)
    assert {r.source for r in read_sources(open_client(settings))} == {"gross.pdf", "klein.pdf"}


class SuspendableClock:
    """`time` for quellenchat.lease whose monotonic clock stops while "suspended".

    Linux's monotonic clock does not advance while a machine or VM is suspended: after waking,
    a writer's own deadline still seems ahead although its lease ran out on the server.
    """

    def __init__(self) -> None:
        self.lost = 0.0
        self.since: float | None = None

    def monotonic(self) -> float:
        now = time.monotonic() if self.since is None else self.since
        return now - self.lost

    def suspend(self) -> None:
        self.since = time.monotonic()

    def resume(self) -> None:
        assert self.since is not None
        self.lost += time.monotonic() - self.since
        self.since = None

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def test_a_writer_frozen_between_its_check_and_its_write_is_refused_at_its_next_batch(
    chroma: ChromaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fence reads the lease back before each batch; the one batch in flight slips through.

    Chroma has no compare-and-set, so a write that passed its check cannot be stopped: that is
    the documented window (quellenchat/lease.py). Everything after it is refused.
    """
    import quellenchat.lease as lease_module
    from ingest.index import WRITE_BATCH, StoreWriter
    from quellenchat.storage import SourceRecord
    from quellenchat.types import Chunk, DocumentInfo, Page

    clock = SuspendableClock()
    monkeypatch.setattr(lease_module, "time", clock)
    client = open_client(Settings(chroma_url=chroma.url))
    stale = ServerLease(client, 3.0, holder="Instanz A")
    successor = ServerLease(open_client(Settings(chroma_url=chroma.url)), 3.0, holder="Instanz B")
    stale.acquire()
    text = "Ein Satz über Wartung mit KI. " * 300
    page = Page(0, text)
    chunks = [Chunk("f" * 64, 0, i, i + 10, text[i : i + 10]) for i in range(3 * WRITE_BATCH)]
    record = SourceRecord(
        source="frozen.txt", doc_sha="f" * 64, info=DocumentInfo("Eingefroren"), size=len(text),
        pages=1, chunks=len(chunks), ingested_at="2026-01-01T00:00:00.000+00:00",
    )  # fmt: skip
    batches: list[int] = []
    frozen: list[bool] = []

    def freeze_in_the_second_batch() -> None:
        stale.check()
        if len(batches) == 2 and not frozen:  # its check passed; now the process is suspended
            frozen.append(True)
            stale._stop.set()  # its renewer stops with it
            clock.suspend()
            deadline = time.monotonic() + 60
            while True:
                try:
                    successor.acquire()  # once the lease has run out on the server's clock
                    break
                except StoreBusy:
                    assert time.monotonic() < deadline
                    time.sleep(0.3)
            clock.resume()  # wakes up: by its own clock hardly any time has passed
            assert stale.held  # so its local deadline alone would let it write on

    def embed(texts: Any) -> Any:
        import numpy as np

        batches.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    writer = StoreWriter(client, "fake", "words", freeze_in_the_second_batch)
    try:
        with pytest.raises(LeaseLost, match="liegt inzwischen bei Instanz B") as refused:
            writer.write_document(record, [page], chunks, embed)
        assert isinstance(refused.value, StoreBusy)
        stored = get_collection(client, CHUNKS)
        assert stored is not None
        # The first batch, and the one frozen after its check (the window), but not the third.
        assert batches == [WRITE_BATCH] * 3
        assert len(stored.get(include=[])["ids"]) == 2 * WRITE_BATCH
        assert read_sources(client) == []  # never committed: the next writer cleans it up
        with pytest.raises(LeaseLost):
            stale.check()
        successor.check()
    finally:
        successor.release()
        stale.release()


# -- replicas never delete each other's documents ---------------------------------------------


def test_writers_remove_only_documents_of_their_own_corpus_folders(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    def folder(name: str, docs: dict[str, str]) -> Path:
        path = tmp_path / name / "corpus"
        path.mkdir(parents=True)
        for source, text in docs.items():
            (path / source).write_text(text, encoding="utf-8")
        return path

    a = folder("a", {"a1.txt": "Chatbots im Kundenservice.", "a2.txt": "Bilderkennung im Lager."})
    b = folder("b", {"b1.txt": "Absatzprognosen in der Bäckerei."})
    settings_a, settings_b = server_settings(chroma, a), server_settings(chroma, b)
    assert ingest_corpus(settings_a).new == ["a1.txt", "a2.txt"]
    first_b = ingest_corpus(settings_b)
    assert first_b.new == ["b1.txt"]
    assert first_b.removed == []  # A's documents are not B's to withdraw
    assert first_b.documents_total == 3

    (a / "a2.txt").unlink()
    assert ingest_corpus(settings_b).removed == []
    assert ingest_corpus(settings_a).removed == ["a2.txt"]

    # Another machine mounting the same folder is the same corpus: it may withdraw.
    (a / "a1.txt").unlink()
    shared = server_settings(chroma, a)
    assert (a / ID_FILE).is_file()
    assert ingest_corpus(shared).removed == ["a1.txt"]

    # A different folder under the same path (another machine's disk) is not.
    shutil.rmtree(b)
    b.mkdir()
    (b / "other.txt").write_text("Ein anderes Dokument.", encoding="utf-8")
    other_disk = ingest_corpus(server_settings(chroma, b))
    assert other_disk.new == ["other.txt"]
    assert other_disk.removed == []
    assert {r.source for r in read_sources(open_client(settings_a))} == {"b1.txt", "other.txt"}


def test_a_replica_with_other_settings_neither_rebuilds_nor_misreads_the_shared_store(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "doc.txt").write_text("Vorausschauende Wartung mit KI im Betrieb.", encoding="utf-8")
    settings = server_settings(chroma, corpus)
    assert ingest_corpus(settings).exit_code == 0
    other = server_settings(chroma, corpus, chunk_words=120)
    refused = ingest_corpus(other)
    assert refused.exit_code == 2
    assert "Im Servermodus wird er nicht von selbst neu aufgebaut" in (refused.error or "")
    assert len(read_sources(open_client(settings))) == 1  # nothing was reset
    rebuilt = ingest_corpus(other, rebuild=True)
    assert rebuilt.exit_code == 0
    assert rebuilt.rebuild_reason is not None

    converted = MODELS_DIR / "multilingual-e5-small"
    with pytest.raises(StoreError, match="Einbettungsmodell"):
        Searcher(server_settings(chroma, corpus, embedder=str(converted))).search("Wartung")


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_local_model_answers_one_question_at_a_time_and_the_other_sees_the_queue(
    chroma: ChromaServer, tmp_path: Path
) -> None:
    settings = server_settings(
        chroma,
        fact_sheet(tmp_path / "corpus"),
        llm_backend="local",
        llm_max_tokens=60,
        llm_threads=2,
        llm_context=2048,
        llm_timeout=900.0,
    )
    assert ingest_corpus(settings).exit_code == 0
    running = serve(ChatApp(settings), "127.0.0.1", free_port())
    try:
        questions = [QUESTION, FOLLOW_UP]
        clients = [_client(running.url, tmp_path / str(n)) for n in range(2)]
        jobs = [c.submit(q, api_name="/chat") for c, q in zip(clients, questions, strict=True)]
        for job in jobs:
            job.result(timeout=900)
        outputs = [[tuple(o) for o in job.outputs()] for job in jobs]
    finally:
        running.stop()
    statuses = [o[4] for job in outputs for o in job]
    assert any("Sie sind Nr. 1 in der Warteschlange" in s for s in statuses), statuses
    for job, question in zip(outputs, questions, strict=True):
        chat, _, _, _, status = job[-1]
        assert status == ""
        assert [m["role"] for m in chat] == ["user", "assistant"]
        assert "".join(p["text"] for p in chat[0]["content"]) == question
        answer = "".join(p["text"] for p in chat[1]["content"])
        assert "nicht erreichbar oder zu langsam" not in answer  # the model answered, no fallback
