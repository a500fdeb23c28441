"""Finding the documents of the corpus folders, their metadata and their checksums."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quellenchat.types import DocumentInfo

DOCUMENT_SUFFIXES = frozenset({".pdf", ".txt", ".md"})
METADATA_FILE = "metadata.toml"
# Control files are recognised by name and skipped silently: they describe documents, they are none.
_CONTROL_NAMES = frozenset(
    {
        METADATA_FILE,
        "literature.toml",
        "literature.yaml",
        "literature.yml",
        "literature.lock",
        "literature.lock.json",
        "manifest.toml",
        "manifest.json",
        "notice",
        "license",
        "licence",
    }
)


class CorpusError(Exception):
    """A corpus folder or its metadata file is unusable; the German message names file and field."""


@dataclass(frozen=True)
class SourceFile:
    """A document file found in a corpus folder."""

    corpus: Path
    path: Path
    source: str  # relative to its corpus folder, forward slashes
    size: int
    sha256: str
    info: DocumentInfo


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why (German)."""

    source: str
    reason: str


def is_control_file(path: Path) -> bool:
    """Metadata, manifests, lock files, READMEs and hidden files are not documents."""
    name = path.name.lower()
    return (
        name in _CONTROL_NAMES
        or name.startswith(("readme", "."))
        or name.endswith((".lock", ".part", ".tmp"))
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_metadata(corpus: Path) -> dict[str, DocumentInfo]:
    """Per-document metadata from `metadata.toml` in a corpus folder (empty when there is none)."""
    path = corpus / METADATA_FILE
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: keine gültige TOML-Datei ({exc})") from exc
    return {name: _document_info(path, name, entry) for name, entry in data.items()}


def _document_info(path: Path, name: str, entry: object) -> DocumentInfo:
    if not isinstance(entry, dict):
        raise CorpusError(f"{path}: Eintrag „{name}“ muss eine Tabelle sein")
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CorpusError(f"{path}: Eintrag „{name}“: Feld „title“ fehlt oder ist leer")
    year = entry.get("year")
    if year is not None and not isinstance(year, int):
        raise CorpusError(f"{path}: Eintrag „{name}“: Feld „year“ muss eine Jahreszahl sein")
    for field in ("kind", "url", "publisher"):
        if entry.get(field) is not None and not isinstance(entry[field], str):
            raise CorpusError(f"{path}: Eintrag „{name}“: Feld „{field}“ muss Text sein")
    return DocumentInfo(
        title=title.strip(),
        kind=entry.get("kind", "Dokument"),
        year=year,
        url=entry.get("url"),
        publisher=entry.get("publisher"),
    )


def discover(corpora: Sequence[Path]) -> tuple[list[SourceFile], list[Skipped]]:
    """All document files below the corpus folders, and the files skipped with a reason."""
    found: list[SourceFile] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}  # sha256 -> source, to recognise duplicate files
    for corpus in corpora:
        if not corpus.is_dir():
            raise CorpusError(f"{corpus}: Korpus-Ordner nicht gefunden")
        metadata = load_metadata(corpus)
        for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
            source = path.relative_to(corpus).as_posix()
            if any(is_control_file(Path(part)) for part in Path(source).parts):
                continue
            problem = _problem(path, source, found)
            if problem:
                skipped.append(Skipped(source, problem))
                continue
            sha = sha256_file(path)
            if sha in seen:
                skipped.append(Skipped(source, f"inhaltsgleich mit {seen[sha]} – übersprungen"))
                continue
            seen[sha] = source
            info = metadata.get(source) or DocumentInfo(title=path.name)
            found.append(SourceFile(corpus, path, source, path.stat().st_size, sha, info))
    return found, skipped


def _problem(path: Path, source: str, found: list[SourceFile]) -> str | None:
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        return f"Dateityp {path.suffix or '(ohne Endung)'} wird nicht unterstützt – übersprungen"
    if path.stat().st_size == 0:
        return "Datei ist leer (0 Byte) – übersprungen"
    if any(f.source == source for f in found):
        return "gleicher Pfad in zwei Korpus-Ordnern – übersprungen"
    return None
