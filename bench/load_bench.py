"""`make bench-load`: simulated users against a real app on loopback; latency, errors, memory.

The app runs as `python chat_app.py` in a subprocess on a temporary copy of the fact sheet,
exactly as deployed. N users (threads, each its own `gradio_client` session) ask the dev
questions through the `/ask` API, bounded in requests and seconds per level. Reported per level:
throughput, p50/p95 latency, errors; for the embedded store and for a `chroma run` server. Then
the app's peak RSS with the local LLM loaded (app plus its llama.cpp child, after one answer).
Results go to stdout and to bench/results/load.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quellenchat.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "eval" / "dev-faktenblatt.jsonl"
RESULTS = ROOT / "bench" / "results" / "load.md"
TARGET_P95 = 1.5  # seconds, extractive, 16 users
TARGET_RSS = 3.0  # GB, app with the local LLM loaded
MODES = {"embedded": "eingebettet", "server": "Chroma-Server"}
# gradio_client opens a new httpx client for every request, and each of those builds a TLS
# context from the CA bundle (about 35 ms CPU) although a loopback http:// URL never uses TLS.
# One context shared by all simulated users keeps that cost of the load generator from being
# charged to the app on the same two cores. httpx takes an SSLContext wherever it takes `verify`.
LOOPBACK_TLS = ssl.create_default_context()


def machine() -> str:
    """CPU model, cores, memory and the versions that matter here."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kb = int(Path("/proc/meminfo").read_text().split()[1])
    from importlib.metadata import version

    return (
        f"{cpu}, {os.cpu_count()} cores, {kb / 1024 / 1024:.0f} GiB RAM; "
        f"Python {platform.python_version()}, gradio {version('gradio')}, "
        f"chromadb {version('chromadb')}"
    )


def dev_questions() -> list[str]:
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    return [row["question"] for row in rows]


class App:
    """`python chat_app.py` on loopback, configured through the environment."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = (root / f"app-{self.port}.log").open("wb")
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "QUELLENCHAT_HOST": "127.0.0.1",
            "QUELLENCHAT_PORT": str(self.port),
            "QUELLENCHAT_CORPUS": json.dumps([str(root / "corpus")]),
            "QUELLENCHAT_STORE": str(root / "store"),
            "QUELLENCHAT_FEEDBACK_FILE": str(root / "feedback.jsonl"),
            "QUELLENCHAT_MODELS_DIR": os.environ.get(
                "QUELLENCHAT_MODELS_DIR", str(ROOT / "data" / "models")
            ),
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "chat_app.py"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def wait_ready(self, timeout: float = 900.0) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            if line.startswith("Quellenchat läuft:"):
                return
            if time.monotonic() > deadline:
                break
        raise SystemExit(f"App nicht gestartet, siehe {self.log.name}")

    def pids(self) -> list[int]:
        """The app and all its descendants (the llama.cpp server among them)."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo.extend(int(c) for c in (task / "children").read_text().split())
                except OSError:  # the thread ended meanwhile
                    continue
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def peak_rss_gb(pids: Sequence[int]) -> float:
    """Sum of each process's peak resident set (VmHWM): an upper bound of their joint peak."""
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024 / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Level:
    users: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    app_cpu: float = 0.0  # CPU seconds the app used for this level
    client_cpu: float = 0.0  # CPU seconds the simulated users (this process) used

    def per_answer(self, seconds: float) -> str:
        return f"{1000 * seconds / len(self.latencies):.0f} ms" if self.latencies else "–"

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q * 100) - 1]


def run_level(
    url: str, users: int, questions: Sequence[str], requests: int, budget: float, app_pid: int
) -> Level:
    """`users` sessions asking round-robin until `requests` each or `budget` seconds are used."""
    from gradio_client import Client

    downloads = tempfile.mkdtemp(prefix="quellenchat-load-")
    clients = [
        Client(
            url,
            verbose=False,
            download_files=downloads,
            analytics_enabled=False,
            ssl_verify=LOOPBACK_TLS,  # type: ignore[arg-type]
        )
        for _ in range(users)
    ]
    level = Level(users)
    lock = threading.Lock()
    start = threading.Barrier(users + 1)
    stop_at: list[float] = []

    def user(index: int) -> None:
        start.wait()
        for n in range(requests):
            if time.monotonic() > stop_at[0]:
                return
            question = questions[(index * requests + n) % len(questions)]
            began = time.perf_counter()
            try:
                answer = clients[index].predict(question, api_name="/ask")
                ok = isinstance(answer, dict) and "answer" in answer
                problem = None if ok else f"unerwartete Antwort: {answer!r:.80}"
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            took = time.perf_counter() - began
            with lock:
                if problem:
                    level.errors.append(problem)
                else:
                    level.latencies.append(took)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    stop_at.append(time.monotonic() + budget)
    app_cpu, client_cpu = cpu_seconds(app_pid), time.process_time()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    level.seconds = time.perf_counter() - began
    level.app_cpu = cpu_seconds(app_pid) - app_cpu
    level.client_cpu = time.process_time() - client_cpu
    shutil.rmtree(downloads, ignore_errors=True)
    return level


def prepare(root: Path) -> None:
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "corpus" / "ki-faktenblatt.txt", corpus)
    shutil.copy(ROOT / "corpus" / "metadata.toml", corpus)


def start_chroma(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(root / "chroma"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=(root / "chroma.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("chroma run startet nicht")


def load_rows(args: argparse.Namespace, questions: list[str]) -> list[list[str]]:
    rows = []
    for mode in args.modes:
        with tempfile.TemporaryDirectory(prefix="quellenchat-load-") as tmp:
            root = Path(tmp)
            prepare(root)
            env = {"QUELLENCHAT_LLM_BACKEND": "extractive"}
            chroma = None
            if mode == "server":
                chroma, env["QUELLENCHAT_CHROMA_URL"] = start_chroma(root)
            app = App(root, env)
            try:
                app.wait_ready()
                pid = app.process.pid
                run_level(app.url, 2, questions, 3, 60, pid)  # warm up: sessions, caches
                for users in args.users:
                    level = run_level(app.url, users, questions, args.requests, args.seconds, pid)
                    rows.append(_row(mode, level))
                    print(" | ".join(rows[-1]), flush=True)
                    for problem in sorted(set(level.errors))[:3]:
                        print(f"  Fehler: {problem}", flush=True)
            finally:
                app.stop()
                if chroma is not None:
                    chroma.terminate()
                    chroma.wait(timeout=60)
    return rows


def _row(mode: str, level: Level) -> list[str]:
    target = f"p95 ≤ {TARGET_P95:g} s, 0 Fehler" if level.users == 16 else "0 Fehler"
    return [
        f"extraktiv, {MODES[mode]}, {level.users} Nutzer",
        f"{len(level.latencies)} Antworten in {level.seconds:.1f} s",
        f"{level.throughput:.1f}/s",
        f"{level.quantile(0.5):.2f} s",
        f"{level.quantile(0.95):.2f} s",
        str(len(level.errors)),
        f"{level.per_answer(level.app_cpu)} / {level.per_answer(level.client_cpu)}",
        target,
    ]


def rss_row(questions: list[str]) -> list[str]:
    """Two answers with the local LLM, then the peak RSS of the app and its children."""
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="quellenchat-rss-") as tmp:
        root = Path(tmp)
        prepare(root)
        app = App(root, {"QUELLENCHAT_LLM_BACKEND": "local"})
        try:
            app.wait_ready()
            client = Client(app.url, verbose=False, analytics_enabled=False)
            latencies, backends = [], set()
            for question in questions[:2]:
                began = time.perf_counter()
                backends.add(client.predict(question, api_name="/ask")["backend"])
                latencies.append(time.perf_counter() - began)
            pids = app.pids()
            gb = peak_rss_gb(pids)
        finally:
            app.stop()
    return [
        f"Spitzen-RSS mit lokalem LLM (Backend {', '.join(sorted(backends))})",
        f"{len(latencies)} Antworten, {len(pids)} Prozesse",
        "–",
        f"{statistics.median(latencies):.1f} s",
        "–",
        "0",
        "–",
        f"{gb:.2f} GB (Ziel ≤ {TARGET_RSS:g} GB)",
    ]


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description="Lasttest der Chat-App (nur Loopback).")
    parser.add_argument("--users", type=_numbers, default=[1, 4, 16], help="z. B. 1,4,16")
    parser.add_argument(
        "--modes", type=lambda s: s.split(","), default=list(MODES), help="embedded,server"
    )
    parser.add_argument("--requests", type=int, default=12, help="höchstens so viele je Nutzer")
    parser.add_argument("--seconds", type=float, default=30.0, help="höchstens so lange je Stufe")
    parser.add_argument("--no-rss", action="store_true", help="ohne Messung mit lokalem LLM")
    args = parser.parse_args()
    if set(args.modes) - set(MODES):
        parser.error(f"--modes: nur {', '.join(MODES)}")
    if max(args.users) > 64 or args.requests > 100 or args.seconds > 300:
        parser.error("höchstens 64 Nutzer, 100 Anfragen je Nutzer und 300 s je Stufe")
    questions = dev_questions()
    header = ["Messung", "Umfang", "Durchsatz", "p50", "p95", "Fehler",
              "CPU je Antwort: App / Nutzer", "Ziel / Ergebnis"]  # fmt: skip
    rows = load_rows(args, questions)
    if not args.no_rss:
        rows.append(rss_row(questions))
        print(" | ".join(rows[-1]), flush=True)
    table = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    text = "\n".join(
        [
            "# Lasttest (make bench-load)",
            "",
            f"Maschine: {machine()}. Geteilte Maschine: Zeiten schwanken.",
            f"{len(questions)} Dev-Fragen (eval/dev-faktenblatt.jsonl) über `/ask`, reihum; "
            f"höchstens {args.requests} je Nutzer und {args.seconds:g} s je Stufe. Die simulierten "
            "Nutzer laufen auf derselben Maschine und brauchen selbst CPU (letzte Spalte).",
            "",
            *table,
            "",
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
