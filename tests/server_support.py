"""Real processes for server-mode tests: a `chroma run` server and `python chat_app.py` replicas."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from quellenchat.ports import free_port
from tests.helpers import MODELS_DIR, PROJECT_ROOT

# The server binary ships in the chromadb wheel, beside the interpreter of the virtualenv.
CHROMA = Path(sys.executable).with_name("chroma")
START_TIMEOUT = 120.0


def chroma_binary() -> str:
    """The `chroma` command of the installed chromadb (never skipped: it must be there)."""
    found = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    assert found, f"chroma fehlt neben {sys.executable} – chromadb installiert?"
    return found


class ChromaServer:
    """`chroma run --path DIR --port PORT` on loopback; stop and start it again on the same port."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.log = path.parent / f"chroma-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it answers its heartbeat."""
        assert self.process is None or self.process.poll() is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [chroma_binary(), "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"chroma run antwortet nicht: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop the server (as an orchestrator would: SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen server must be able to exit
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def freeze(self) -> None:
        """Stop the process without closing its socket: requests hang instead of failing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class AppProcess:
    """`python chat_app.py` in a subprocess, configured by QUELLENCHAT_* variables only."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = int(env.get("QUELLENCHAT_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        environment = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
            "QUELLENCHAT_HOST": "127.0.0.1",
            "QUELLENCHAT_LLM_BACKEND": "extractive",
            **env,
            "QUELLENCHAT_PORT": str(self.port),
        }
        self._stderr: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "chat_app.py"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Wait for the start-up line with the URL the app serves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise AssertionError(f"App beendet: {self.stderr()[-3000:]}") from None
                continue
            if line.startswith("Quellenchat läuft:"):
                assert self.url in line, line
                return
        raise AssertionError(f"App nicht bereit: {self.stderr()[-3000:]}")

    def health(self) -> tuple[int, dict[str, object]]:
        """Status code and body of `/healthz`."""
        response = httpx.get(self.url + "healthz", timeout=60)
        return response.status_code, json.loads(response.text)

    def stderr(self) -> str:
        """What the app logged so far."""
        if not self._stderr.closed:
            self._stderr.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Interrupt the app (Strg+C) and wait for it to end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._stderr.close()
