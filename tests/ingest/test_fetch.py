"""`python -m ingest fetch` against a real HTTP server on loopback, serving PDFs written here."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.fetch import LOCK_NAME, FetchLimits, fetch_literature, read_lock
from quellenchat.ports import free_port
from quellenchat.settings import Settings
from tests.fakes import ingest_fake
from tests.helpers import PROJECT_ROOT, write_pdf

# Short limits: the slow route outwaits `timeout`, no test waits for a backoff.
LIMITS = FetchLimits(timeout=0.5, attempts=2, backoff=0.0, max_bytes=200_000)
HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>Wartungsarbeiten</title></head>"
    b"<body><h1>Die Seite ist vor\xc3\xbcbergehend nicht erreichbar.</h1></body></html>\n"
)


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/pdf"
    delay: float = 0.0  # seconds before the answer: longer than LIMITS.timeout means a timeout
    content_length: bool = True  # False: no Content-Length, the body ends when the socket closes
    failures: int = 0  # answer 503 this many times before serving


class PdfServer:
    """A threaded HTTP server on 127.0.0.1 whose routes a test can change between fetches."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path, Route(b"nicht gefunden", 404, "text/plain"))
                time.sleep(route.delay)
                status = route.status
                if route.failures:
                    route.failures -= 1
                    status = 503
                # The client may have given up (timeout, size limit): that is the point.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", route.content_type)
                    if route.content_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture
def server() -> Iterator[PdfServer]:
    pdf_server = PdfServer()
    pdf_server.thread.start()
    yield pdf_server
    pdf_server.httpd.shutdown()
    pdf_server.httpd.server_close()


def pdf_bytes(tmp_path: Path, pages: list[str], name: str = "quelle.pdf") -> bytes:
    return write_pdf(tmp_path / "written" / name, pages).read_bytes()


def write_manifest(path: Path, entries: list[dict[str, object]]) -> Path:
    lines = ['folder = "literature"']
    for entry in entries:
        lines.append("\n[[document]]")
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in entry.items()
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pdf_entry(server: PdfServer, name: str, **extra: object) -> dict[str, object]:
    return {"kind": "pdf", "file": f"{name}.pdf", "url": server.url(f"/{name}.pdf"), **extra}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


GOOD = ["Die KfW-Studie beschreibt hohe Wachstumschancen durch künstliche Intelligenz."]
GOOD_V2 = [*GOOD, "Eine zweite Auflage ergänzt Zahlen zur Verbreitung im Mittelstand."]
WIK = ["Die Kurzstudie untersucht die Verfügbarkeit von Trainingsdaten im Mittelstand."]


def test_good_pdf_is_new_then_unchanged_and_untouched(tmp_path: Path, server: PdfServer) -> None:
    body = pdf_bytes(tmp_path, GOOD)
    server.routes["/gut.pdf"] = Route(body)
    manifest = write_manifest(tmp_path / "literature.toml", [pdf_entry(server, "gut")])

    first = fetch_literature(manifest, limits=LIMITS)
    assert first.exit_code == 0, first.to_json()
    assert first.files("new") == ["gut.pdf"]
    target = tmp_path / "literature" / "gut.pdf"
    assert target.read_bytes() == body
    sha = hashlib.sha256(body).hexdigest()
    assert read_lock(tmp_path / "literature" / LOCK_NAME)["gut.pdf"]["sha256"] == sha
    assert first.results[0].sha256 == sha
    assert first.results[0].size == len(body)
    before = target.stat()
    lock_before = (tmp_path / "literature" / LOCK_NAME).read_text(encoding="utf-8")

    again = fetch_literature(manifest, limits=LIMITS)
    assert again.exit_code == 0
    assert again.files("unchanged") == ["gut.pdf"]
    assert again.results[0].previous_sha256 == sha
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (tmp_path / "literature" / LOCK_NAME).read_text(encoding="utf-8") == lock_before
    assert leftovers(tmp_path / "literature") == []
    assert server.hits["/gut.pdf"] == 2


def test_changed_pdf_replaces_the_file_and_updates_the_lock(
    tmp_path: Path, server: PdfServer
) -> None:
    old, new = pdf_bytes(tmp_path, GOOD, "v1.pdf"), pdf_bytes(tmp_path, GOOD_V2, "v2.pdf")
    server.routes["/studie.pdf"] = Route(old)
    manifest = write_manifest(tmp_path / "literature.toml", [pdf_entry(server, "studie")])
    assert fetch_literature(manifest, limits=LIMITS).files("new") == ["studie.pdf"]

    server.routes["/studie.pdf"] = Route(new)
    report = fetch_literature(manifest, limits=LIMITS)
    assert report.exit_code == 0
    assert report.files("changed") == ["studie.pdf"]
    [result] = report.results
    assert result.previous_sha256 == hashlib.sha256(old).hexdigest()
    assert result.sha256 == hashlib.sha256(new).hexdigest()
    assert (tmp_path / "literature" / "studie.pdf").read_bytes() == new
    lock = read_lock(tmp_path / "literature" / LOCK_NAME)
    assert lock["studie.pdf"] == {
        "url": server.url("/studie.pdf"),
        "sha256": hashlib.sha256(new).hexdigest(),
        "size": len(new),
        "fetched_at": lock["studie.pdf"]["fetched_at"],
    }


@pytest.mark.parametrize(
    ("route", "reason", "attempts"),
    [
        pytest.param(Route(b"nicht gefunden", 404, "text/html"), "HTTP 404", 1, id="404"),
        pytest.param(Route(HTML_ERROR), "kein PDF", 1, id="html-served-as-pdf"),
        pytest.param(Route(b"%PDF-1.4\n" + b"0" * 300_000), "zu groß", 1, id="oversized"),
        pytest.param(
            Route(b"%PDF-1.4\n" + b"0" * 300_000, content_length=False),
            "zu groß: mehr als",
            1,
            id="oversized-streamed",
        ),
        pytest.param(Route(delay=2.0), "Zeitüberschreitung", 2, id="timeout"),
        pytest.param(Route(status=500, content_type="text/plain"), "HTTP 500", 2, id="500"),
    ],
)
def test_failed_download_never_replaces_the_good_file(
    tmp_path: Path, server: PdfServer, route: Route, reason: str, attempts: int
) -> None:
    good = pdf_bytes(tmp_path, GOOD)
    server.routes["/bericht.pdf"] = Route(good)
    manifest = write_manifest(tmp_path / "literature.toml", [pdf_entry(server, "bericht")])
    assert fetch_literature(manifest, limits=LIMITS).exit_code == 0
    lock_before = (tmp_path / "literature" / LOCK_NAME).read_text(encoding="utf-8")

    server.routes["/bericht.pdf"] = route
    report = fetch_literature(manifest, limits=LIMITS)
    assert report.exit_code == 1
    [result] = report.results
    assert result.status == "failed"
    assert reason in (result.reason or "")
    assert "die vorhandene Datei bleibt unverändert" in (result.reason or "")
    assert result.attempts == attempts  # transient failures are retried, the others are not
    assert result.sha256 == hashlib.sha256(good).hexdigest()
    assert (tmp_path / "literature" / "bericht.pdf").read_bytes() == good
    assert (tmp_path / "literature" / LOCK_NAME).read_text(encoding="utf-8") == lock_before
    assert leftovers(tmp_path / "literature") == []


def test_transient_failure_is_retried_then_succeeds(tmp_path: Path, server: PdfServer) -> None:
    server.routes["/wackelig.pdf"] = Route(pdf_bytes(tmp_path, GOOD), failures=1)
    manifest = write_manifest(tmp_path / "literature.toml", [pdf_entry(server, "wackelig")])
    waits: list[float] = []
    report = fetch_literature(
        manifest, limits=FetchLimits(timeout=2, attempts=3, backoff=0.25), sleep=waits.append
    )
    assert report.files("new") == ["wackelig.pdf"]
    assert report.results[0].attempts == 2
    assert waits == [0.25]
    assert server.hits["/wackelig.pdf"] == 2


def test_html_error_page_is_not_stored_and_entries_are_independent(
    tmp_path: Path, server: PdfServer
) -> None:
    server.routes["/a.pdf"] = Route(pdf_bytes(tmp_path, GOOD))
    server.routes["/fehlerseite.pdf"] = Route(HTML_ERROR)
    manifest = write_manifest(
        tmp_path / "literature.toml",
        [
            pdf_entry(server, "fehlerseite", title="Studie"),
            pdf_entry(server, "a"),
            {"kind": "web", "url": "https://example.org/seite", "title": "Nur ein Link"},
        ],
    )
    report = fetch_literature(manifest, limits=LIMITS)
    assert report.exit_code == 1
    assert report.files("new") == ["a.pdf"]
    summary = report.to_json()
    assert summary["failed"] == [
        {
            "file": "fehlerseite.pdf",
            "reason": "kein PDF: die Antwort beginnt mit „<!DOCTYPE html>“, "
            "ausgeliefert als application/pdf",
        }
    ]
    assert summary["web_links"] == 1
    assert sorted(p.name for p in (tmp_path / "literature").iterdir()) == ["a.pdf", LOCK_NAME]
    assert set(read_lock(tmp_path / "literature" / LOCK_NAME)) == {"a.pdf"}


def test_offline_every_entry_fails_fast_and_existing_files_stay(tmp_path: Path) -> None:
    dest = tmp_path / "ziel"
    dest.mkdir()
    kept = write_pdf(dest / "vorhanden.pdf", GOOD).read_bytes()
    # `.invalid` never resolves (RFC 6761): what every host looks like without internet.
    manifest = write_manifest(
        tmp_path / "literature.toml",
        [
            {"kind": "pdf", "file": "vorhanden.pdf", "url": "http://quellenchat.invalid/a.pdf"},
            {"kind": "pdf", "file": "neu.pdf", "url": "https://quellenchat.invalid/b.pdf"},
        ],
    )
    report = fetch_literature(manifest, dest, limits=LIMITS)
    assert report.exit_code == 1
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert all("nicht auflösbar" in (r.reason or "") for r in report.results)
    assert [r.attempts for r in report.results] == [1, 1]  # offline is not retried
    assert (dest / "vorhanden.pdf").read_bytes() == kept
    assert sorted(p.name for p in dest.iterdir()) == ["vorhanden.pdf"]  # no lock, no leftovers
    assert not (tmp_path / "literature").exists()  # --dest replaces the manifest's folder


def test_refused_connection_is_retried_then_reported(tmp_path: Path) -> None:
    port = free_port()  # nobody listens on it
    manifest = write_manifest(
        tmp_path / "literature.toml",
        [{"kind": "pdf", "file": "x.pdf", "url": f"http://127.0.0.1:{port}/x.pdf"}],
    )
    [result] = fetch_literature(manifest, limits=LIMITS).results
    assert result.status == "failed"
    assert result.reason == "Verbindung abgelehnt"
    assert result.attempts == LIMITS.attempts


def test_unusable_manifest_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "literature.toml"
    manifest.write_text('[[document]]\nkind = "pdf"\nurl = "https://example.org/a.pdf"\n')
    report = fetch_literature(manifest, limits=LIMITS)
    assert report.exit_code == 2
    assert "Feld „file“ fehlt" in (report.error or "")
    assert not (tmp_path / "literature").exists()

    manifest.write_text('[[document]]\nkind = "web"\nurl = "https://example.org/"\n')
    blocked = tmp_path / "eine-datei"
    blocked.write_text("kein Ordner")
    report = fetch_literature(manifest, blocked / "ziel", limits=LIMITS)
    assert report.exit_code == 2
    assert "Zielordner nicht anlegbar" in (report.error or "")


def run_fetch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", "fetch", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


def test_cli_json_on_stdout_german_messages_on_stderr(tmp_path: Path, server: PdfServer) -> None:
    server.routes["/gut.pdf"] = Route(pdf_bytes(tmp_path, GOOD))
    manifest = write_manifest(
        tmp_path / "literature.toml", [pdf_entry(server, "gut"), pdf_entry(server, "fehlt")]
    )
    done = run_fetch("--manifest", str(manifest), "--timeout", "5", "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)  # stdout carries only the JSON object
    assert summary["new"] == ["gut.pdf"]
    assert summary["failed"] == [
        {"file": "fehlt.pdf", "reason": "HTTP 404 Not Found"},
    ]
    assert summary["exit_code"] == 1
    assert summary["lock"] == str(tmp_path / "literature" / LOCK_NAME)
    assert {d["status"] for d in summary["documents"]} == {"new", "failed"}
    assert "neu: gut.pdf" in done.stderr
    assert "fehlgeschlagen: fehlt.pdf: HTTP 404" in done.stderr
    assert "1 neu, 0 geändert, 0 unverändert, 1 fehlgeschlagen" in done.stderr

    server.routes["/fehlt.pdf"] = Route(pdf_bytes(tmp_path, GOOD_V2))
    again = run_fetch("--manifest", str(manifest), "--dest", str(tmp_path / "literature"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "1 neu, 0 geändert, 1 unverändert, 0 fehlgeschlagen" in again.stderr

    broken = run_fetch("--manifest", str(tmp_path / "gibt-es-nicht.toml"), "--json")
    assert broken.returncode == 2
    assert json.loads(broken.stdout)["error"].endswith("nicht lesbar (No such file or directory)")
    assert "FEHLER" in broken.stderr


def test_bare_ingest_form_still_parses_beside_fetch() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=True,
    )
    assert "--dry-run" in done.stdout
    assert "fetch" in done.stdout


def test_fetched_literature_is_ingested_with_manifest_metadata_and_only_changes_re_embedded(
    tmp_path: Path, server: PdfServer, make_settings: Callable[..., Settings]
) -> None:
    from quellenchat.storage import open_client, read_sources

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    server.routes["/kfw.pdf"] = Route(pdf_bytes(tmp_path, GOOD, "kfw.pdf"))
    server.routes["/wik.pdf"] = Route(pdf_bytes(tmp_path, WIK, "wik.pdf"))
    manifest = write_manifest(
        corpus / "literature.toml",
        [
            pdf_entry(
                server, "kfw", title="KI im Mittelstand", publisher="KfW Research", year=2021
            ),
            pdf_entry(server, "wik", title="Trainingsdaten", publisher="WIK Consult", year=2021),
        ],
    )
    assert fetch_literature(manifest, limits=LIMITS).files("new") == ["kfw.pdf", "wik.pdf"]
    settings = make_settings()
    first = ingest_fake(settings)
    assert first.exit_code == 0, first.to_json()
    assert first.new == ["literature/kfw.pdf", "literature/wik.pdf"]  # manifest and lock skipped
    records = {r.source: r for r in read_sources(open_client(settings))}
    kfw = records["literature/kfw.pdf"].info
    assert (kfw.title, kfw.publisher, kfw.year, kfw.kind) == (
        "KI im Mittelstand",
        "KfW Research",
        2021,
        "Literatur",
    )
    assert kfw.url == server.url("/kfw.pdf")

    server.routes["/wik.pdf"] = Route(pdf_bytes(tmp_path, [*WIK, "Neu: offene Datenräume."], "v2"))
    assert fetch_literature(manifest, limits=LIMITS).files("changed") == ["wik.pdf"]
    second = ingest_fake(settings)
    assert second.changed == ["literature/wik.pdf"]
    assert second.unchanged == ["literature/kfw.pdf"]
    wik = next(r for r in read_sources(open_client(settings)) if r.source.endswith("wik.pdf"))
    assert second.chunks_embedded == wik.chunks  # only the changed PDF was embedded again
    assert wik.pages == 2
