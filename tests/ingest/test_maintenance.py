"""The app's side of ingest: start-up check, plans, the held writer lock, admin access."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.maintenance import StoreGuard, bring_up_to_date, needs_update
from quellenchat.lease import LOCK_FILE
from quellenchat.settings import Settings
from quellenchat_app.admin import (
    LoginThrottle,
    admin_mode,
    documents_table,
    is_loopback,
    password_ok,
    plan_text,
    result_text,
)
from tests.fakes import FakeClock, ingest_fake
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
    assert needs_update(ingest_fake(settings, dry_run=True))
    report = bring_up_to_date(settings, log=messages.append)
    assert report.error is None
    assert report.new == ["chancen.txt"]
    assert not needs_update(ingest_fake(settings, dry_run=True))
    bring_up_to_date(settings, log=messages.append)
    assert messages[-1].startswith("Index ist aktuell: 1 Dokumente")
    [row] = documents_table(settings)
    assert row[:5] == ["chancen.txt", "chancen.txt", "", 1, 1]


def test_plan_names_new_files(small_corpus: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    ingest_fake(settings)
    (small_corpus / "neu.txt").write_text("Ein neues Dokument über Robotik.", encoding="utf-8")
    report = ingest_fake(settings, dry_run=True)
    assert needs_update(report)
    text = plan_text(report)
    assert "1 neu" in text
    assert "- Neu: `neu.txt`" in text


def test_the_result_counts_only_what_went_in_not_what_was_planned(
    small_corpus: Path, make_settings: Callable[..., Settings]
) -> None:
    (small_corpus / "kaputt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    settings = make_settings()
    assert "2 neu" in plan_text(ingest_fake(settings, dry_run=True))
    report = ingest_fake(settings)
    text = result_text(report)
    assert text.startswith("**Erledigt:** 1 neu, 0 geändert, 0 entfernt, 0 unverändert."), text
    assert "Übersprungen: `kaputt.pdf` – kaputt.pdf: PDF ist beschädigt" in text
    assert report.to_json()["plan"].startswith("2 neu")  # the JSON field stays the plan


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
        # The app's own runs work under the lock it holds.
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
    with guard.updating():
        report = guard.run(dry_run=True)
    assert report.error is not None
    assert "bereits eine Aktualisierung" in report.error


# Another process that takes the writer lock the moment it is free, as a CLI ingest would.
SNATCHER = """
import fcntl, pathlib, sys, time
lock, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
print("bereit", flush=True)
while not stop.exists():
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        print("Sperre bekommen", flush=True)
        sys.exit(1)
"""


def _ingest_cli(settings: Settings, corpus: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ingest", "--store", str(settings.store),
            "--corpus", str(corpus), *extra]  # fmt: skip


def test_the_lock_stays_with_the_app_between_and_during_its_runs(
    small_corpus: Path, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    ingest_fake(settings)
    guard = StoreGuard(settings)
    assert guard.hold()
    stop = tmp_path / "stop"
    snatcher = subprocess.Popen(
        [sys.executable, "-c", SNATCHER, str(settings.store / LOCK_FILE), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert snatcher.stdout is not None
        assert snatcher.stdout.readline().strip() == "bereit"
        for number in range(3):
            (small_corpus / f"neu-{number}.txt").write_text(
                f"Dokument {number} über Robotik in der Montage.", encoding="utf-8"
            )
            assert guard.run(dry_run=True).new == [f"neu-{number}.txt"]
            assert guard.run(dry_run=False).error is None
    finally:
        stop.touch()
        out, _ = snatcher.communicate(timeout=60)
    assert snatcher.returncode == 0, out  # it never got the lock
    assert guard.held
    cli = subprocess.run(
        _ingest_cli(settings, small_corpus, "--json"),
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert "anderen Prozess" in json.loads(cli.stdout)["error"]
    guard.release()
    cli = subprocess.run(
        _ingest_cli(settings, small_corpus, "--json"),
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr


def test_the_app_takes_the_lock_once_a_running_cli_ingest_ends(
    fact_sheet_corpus: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    cli = subprocess.Popen(
        _ingest_cli(settings, fact_sheet_corpus),
        stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    guard = StoreGuard(settings)
    try:
        assert cli.stderr is not None
        # "Plan: …" is logged under the lock; embedding the fact sheet takes a while after it.
        for line in cli.stderr:
            if line.startswith("Plan:"):
                break
        assert not guard.hold(retry_seconds=0.2)
        assert guard.run(dry_run=True).error is None  # a plan needs no lock
        refused = guard.run(dry_run=False)
        assert refused.busy
        assert "anderen Prozess" in (refused.error or "")
        assert "sobald er frei ist" in (refused.error or "")
        cli.stderr.read()
        assert cli.wait(timeout=600) == 0
        deadline = time.monotonic() + 60  # a bound for a busy machine, not a speed assertion
        while not guard.held and time.monotonic() < deadline:
            time.sleep(0.1)
        assert guard.held
        assert guard.run(dry_run=True).error is None
        again = subprocess.run(
            _ingest_cli(settings, fact_sheet_corpus, "--json"),
            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300, check=False,
        )  # fmt: skip
        assert again.returncode == 2, again.stderr
    finally:
        cli.kill()
        cli.wait()
        guard.release()


def test_a_released_guard_stops_trying(
    small_corpus: Path, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    other = StoreGuard(settings)  # stands for another process: flock locks are per open file
    assert other.acquire()
    guard = StoreGuard(settings)
    assert not guard.hold(retry_seconds=0.05)
    guard.release()
    other.release()
    time.sleep(0.3)
    assert not guard.held


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


def test_wrong_passwords_make_a_client_wait_longer_and_longer() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock, free_per_client=3, first_wait=1.0, max_wait=8.0)
    for _ in range(3):  # a few typos cost nothing
        assert throttle.wait("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    waits = []
    for _ in range(5):
        waits.append(throttle.wait("10.0.0.1"))
        clock.now += waits[-1]
        throttle.failed("10.0.0.1")
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]  # doubling up to the cap
    assert throttle.wait("10.0.0.2") == 0  # another client is not held up by one guesser
    clock.now += 8.0
    assert throttle.wait("10.0.0.1") == 0  # after the wait: a try, and the right one counts
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 0  # starts afresh after a success


def test_many_clients_together_make_everybody_wait() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock, free_per_client=3, free_total=5, max_total_wait=4.0)
    for n in range(5):  # five addresses, one guess each: within the free total
        throttle.failed(f"10.0.0.{n}")
    assert throttle.wait("10.0.0.99") == 1.0
    for n in range(5, 9):
        clock.now += throttle.wait("10.0.0.99")
        throttle.failed(f"10.0.0.{n}")
    assert throttle.wait("10.0.0.99") == 4.0  # capped
    clock.now += throttle.window + 1
    assert throttle.wait("10.0.0.99") == 0  # old guesses are forgotten
