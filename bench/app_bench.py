"""App start-up benchmark: `python chat_app.py` until it prints its URL, then a first answer.

Measured as whole processes, like `make run`: once on a fresh store (ingests first), then twice
on the existing store — with the extractive backend and with the configured one (the local LLM
when installed). The baseline in the same run is `python -m ingest` on the unchanged store: the
check every start has to make. Target: ready in ≤ 10 s with an existing store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quellenchat.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Warum fehlt vielen Firmen das Vertrauen in KI?"
Row = tuple[str, str, str, str]


def start_app(env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Seconds until the app printed its URL, seconds for a first `/ask`, and its stderr."""
    from gradio_client import Client

    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "chat_app.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert process.stdout is not None
        url = next((line.split()[2] for line in process.stdout if "Quellenchat läuft" in line), "")
        ready = time.perf_counter() - started
        if not url:
            raise RuntimeError(f"chat_app.py gab keinen URL aus:\n{log.read_text()}")
        asked = time.perf_counter()
        Client(url, verbose=False, analytics_enabled=False).predict(QUESTION, api_name="/ask")
        first = time.perf_counter() - asked
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    return ready, first, log.read_text(encoding="utf-8")


def unchanged_ingest(env: dict[str, str]) -> float:
    """Seconds of a whole `python -m ingest` process that finds nothing to do."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ingest", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def app_rows(env: dict[str, str]) -> list[Row]:
    """Start-up of the app on a fresh and on an existing store of the shipped corpus."""
    with tempfile.TemporaryDirectory(prefix="quellenchat-app-bench-") as tmp:
        base = {
            **os.environ,
            **env,
            "QUELLENCHAT_CORPUS": json.dumps([str(ROOT / "corpus")]),
            "QUELLENCHAT_STORE": str(Path(tmp) / "store"),
            "QUELLENCHAT_FEEDBACK_FILE": str(Path(tmp) / "feedback.jsonl"),
            "QUELLENCHAT_HOST": "127.0.0.1",
        }
        extractive = {**base, "QUELLENCHAT_LLM_BACKEND": "extractive"}
        fresh, fresh_answer, _ = start_app(
            {**extractive, "QUELLENCHAT_PORT": str(free_port())}, Path(tmp) / "fresh.log"
        )
        check = unchanged_ingest(extractive)
        ready, answer, log = start_app(
            {**extractive, "QUELLENCHAT_PORT": str(free_port())}, Path(tmp) / "existing.log"
        )
        configured = {k: v for k, v in base.items() if k != "QUELLENCHAT_LLM_BACKEND"}
        ready_llm, answer_llm, _ = start_app(
            {**configured, "QUELLENCHAT_PORT": str(free_port())}, Path(tmp) / "configured.log"
        )
    assert "Index ist aktuell" in log, log
    backend = os.environ.get("QUELLENCHAT_LLM_BACKEND", "auto")
    return [
        (
            "App bereit, vorhandener Index (`python chat_app.py` bis URL, extraktiv)",
            f"{ready:.1f} s",
            f"`python -m ingest` ohne Änderung {check:.1f} s (×{ready / check:.1f})",
            f"Ziel ≤ 10 s; erste Antwort danach {answer:.1f} s",
        ),
        (
            f"App bereit, vorhandener Index (Backend {backend})",
            f"{ready_llm:.1f} s",
            f"extraktiv {ready:.1f} s",
            f"Ziel ≤ 10 s; erste Antwort danach {answer_llm:.1f} s",
        ),
        (
            "App bereit, frischer Index (liest das Faktenblatt erst ein)",
            f"{fresh:.1f} s",
            f"vorhandener Index {ready:.1f} s",
            f"erste Antwort danach {fresh_answer:.1f} s",
        ),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for row in app_rows({}):
        print(" | ".join(row))
