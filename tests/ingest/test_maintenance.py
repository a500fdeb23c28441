"""The app's side of ingest: start-up check, plans, the held writer lock, admin access."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.maintenance import (
    StoreGuard,
    admin_mode,
    bring_up_to_date,
    documents_table,
    is_loopback,
    needs_update,
    password_ok,
    plan_text,
)
from ingest.run import run_ingest
from quellenchat.settings import Settings
from tests.helpers import PROJECT_ROOT


@pytest.fixture
def small_corpus(corpus_dir: Path) -> Path:
    (corpus_dir / "chancen.txt").write_text(
        "KI-basierte Analysen von Kundendaten ermöglichen neue Geschäftsmodelle.", encoding="utf-8"
    )
    return corpus_dir


def test_start_up_ingests_a_missing_store_and_then_finds_it_current(
    small_corpus: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    messages: list[str] = []
    assert needs_update(run_ingest(settings, dry_run=True))
    report = bring_up_to_date(settings, log=messages.append)
    assert report.error is None
    assert report.new == ["chancen.txt"]
    assert not needs_update(run_ingest(settings, dry_run=True))
    bring_up_to_date(settings, log=messages.append)
    assert messages[-1].startswith("Index ist aktuell: 1 Dokumente")
    [row] = documents_table(settings)
    assert row[:5] == ["chancen.txt", "chancen.txt", "", 1, 1]


def test_plan_names_new_files(small_corpus: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    run_ingest(settings)
    (small_corpus / "neu.txt").write_text("Ein neues Dokument über Robotik.", encoding="utf-8")
    report = run_ingest(settings, dry_run=True)
    assert needs_update(report)
    text = plan_text(report)
    assert "1 neu" in text
    assert "- Neu: `neu.txt`" in text


def test_cli_ingest_is_refused_while_the_app_holds_the_store(
    small_corpus: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    guard = StoreGuard(settings)
    assert guard.acquire()
    try:
        cli = subprocess.run(
            [sys.executable, "-m", "ingest", "--store", str(settings.store),
             "--corpus", str(small_corpus), "--json"],
            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300, check=False,
        )  # fmt: skip
        assert cli.returncode == 2, cli.stderr
        assert "anderen Prozess" in json.loads(cli.stdout)["error"]
        # The app's own runs get the lock handed over, and take it back afterwards.
        report = guard.run(dry_run=False)
        assert report.error is None
        assert report.new == ["chancen.txt"]
        assert guard.held
    finally:
        guard.release()


def test_a_second_update_while_one_runs_is_refused(
    small_corpus: Path, make_settings: Callable[..., Settings]
) -> None:
    guard = StoreGuard(make_settings())
    with guard.handed_over():
        report = guard.run(dry_run=True)
    assert report.error is not None
    assert "bereits eine Aktualisierung" in report.error


@pytest.mark.parametrize(
    ("host", "password", "mode"),
    [
        pytest.param("127.0.0.1", None, "open", id="loopback"),
        pytest.param("localhost", None, "open", id="localhost"),
        pytest.param("::1", None, "open", id="ipv6-loopback"),
        pytest.param("0.0.0.0", None, "disabled", id="all-interfaces"),
        pytest.param("192.168.1.20", None, "disabled", id="lan"),
        pytest.param("0.0.0.0", "geheim", "password", id="password"),
        pytest.param("127.0.0.1", "geheim", "password", id="password-on-loopback"),
    ],
)
def test_admin_mode(host: str, password: str | None, mode: str) -> None:
    assert admin_mode(Settings(host=host, admin_password=password)) == mode


def test_password_check() -> None:
    settings = Settings(admin_password="geheim")
    assert password_ok(settings, "geheim")
    assert not password_ok(settings, "Geheim")
    assert not password_ok(settings, "")
    assert not password_ok(Settings(admin_password=None), "")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("example.org")
