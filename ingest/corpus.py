"""Finding the documents of the corpus folders, their metadata and their checksums."""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ingest.sections import SectionMap, SectionMapError, load_section_maps
from quellenchat.checksums import file_sha256
from quellenchat.types import DocumentInfo

DOCUMENT_SUFFIXES = frozenset({".pdf", ".txt", ".md"})
METADATA_FILE = "metadata.toml"
LITERATURE_FILE = "literature.toml"
# The `kind` citations of a literature PDF show; the manifest's kind (pdf/web) says how to get it.
LITERATURE_KIND = "Literatur"
_LITERATURE_KINDS = ("pdf", "web")
_LITERATURE_FIELDS = ("kind", "url", "file", "title", "publisher", "year", "cited_as")
# Control files are recognised by name and skipped silently: they describe documents, they are none.
_CONTROL_NAMES = frozenset(
    {
        METADATA_FILE,
        LITERATURE_FILE,
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
    sha256: str  # the document's version: its bytes' sha256, with its section map if any
    info: DocumentInfo
    sections: SectionMap | None = None  # printed sections (`ingest.sections`) for a text file


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


# The one file checksum, under the name ingest code and scripts have always imported.
sha256_file = file_sha256


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


@dataclass(frozen=True)
class LiteratureEntry:
    """One document the fact sheet links: a PDF to fetch and ingest, or a web page to cite."""

    kind: str  # "pdf" or "web"
    url: str
    file: str | None = None  # file name inside the manifest's folder (pdf entries)
    title: str | None = None
    publisher: str | None = None
    year: int | None = None
    cited_as: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What a message calls the entry: its file name, else its title, else its URL."""
        return self.file or self.title or self.url

    def document_info(self) -> DocumentInfo:
        """What citations of the ingested PDF show."""
        return DocumentInfo(
            title=self.title or self.file or self.url,
            kind=LITERATURE_KIND,
            year=self.year,
            url=self.url,
            publisher=self.publisher,
        )


@dataclass(frozen=True)
class Literature:
    """The literature manifest (`literature.toml`): linked documents and where PDFs go."""

    path: Path
    folder: str  # relative to the manifest's directory, forward slashes
    documents: tuple[LiteratureEntry, ...]

    @property
    def dest(self) -> Path:
        """The folder the PDFs are fetched into."""
        return self.path.parent / self.folder

    @property
    def pdfs(self) -> list[LiteratureEntry]:
        """The entries that are fetched and ingested."""
        return [d for d in self.documents if d.kind == "pdf"]

    def infos(self) -> dict[str, DocumentInfo]:
        """Citation metadata per source path (relative to the manifest's corpus folder)."""
        return {
            (PurePosixPath(self.folder) / d.file).as_posix(): d.document_info()
            for d in self.pdfs
            if d.file
        }


def load_literature(path: Path) -> Literature:
    """Read and check a literature manifest; a German `CorpusError` names file, entry and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CorpusError(f"{path}: nicht lesbar ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: keine gültige TOML-Datei ({exc})") from exc
    unknown = sorted(set(data) - {"folder", "document"})
    if unknown:
        raise CorpusError(
            f"{path}: unbekannte Angabe „{unknown[0]}“ (erlaubt: folder, [[document]])"
        )
    folder = _literature_folder(path, data.get("folder", "literature"))
    raw = data.get("document", [])
    if not isinstance(raw, list):
        raise CorpusError(f"{path}: „document“ muss eine Liste von [[document]]-Tabellen sein")
    documents = tuple(_literature_entry(path, n, entry) for n, entry in enumerate(raw, start=1))
    for field in ("file", "url"):
        values = [getattr(d, field) for d in documents if getattr(d, field)]
        duplicate = next((v for v in values if values.count(v) > 1), None)
        if duplicate:
            raise CorpusError(f"{path}: „{field}“ = „{duplicate}“ steht in zwei Einträgen")
    return Literature(path, folder, documents)


def literature_infos(corpus: Path) -> dict[str, DocumentInfo]:
    """Citation metadata from the corpus folder's literature manifest (empty when there is none)."""
    path = corpus / LITERATURE_FILE
    return load_literature(path).infos() if path.exists() else {}


def _literature_folder(path: Path, folder: object) -> str:
    parts = PurePosixPath(folder).parts if isinstance(folder, str) else ()
    if not parts or parts[0] == "/" or ".." in parts or "\\" in str(folder):
        raise CorpusError(
            f"{path}: „folder“ muss ein Ordner relativ zur Manifest-Datei sein, z. B. „literature“"
        )
    return PurePosixPath(*parts).as_posix()


def _literature_entry(path: Path, number: int, entry: object) -> LiteratureEntry:
    where = f"{path}: Eintrag {number}"
    if not isinstance(entry, dict):
        raise CorpusError(f"{where} muss eine [[document]]-Tabelle sein")
    unknown = sorted(set(entry) - set(_LITERATURE_FIELDS))
    if unknown:
        raise CorpusError(
            f"{where}: unbekanntes Feld „{unknown[0]}“ (erlaubt: {', '.join(_LITERATURE_FIELDS)})"
        )
    kind, url = entry.get("kind"), entry.get("url")
    if kind not in _LITERATURE_KINDS:
        raise CorpusError(f"{where}: Feld „kind“ muss „pdf“ oder „web“ sein")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise CorpusError(f"{where}: Feld „url“ fehlt oder ist keine http(s)-Adresse")
    texts = {name: _optional_text(where, entry, name) for name in ("file", "title", "publisher")}
    year = entry.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        raise CorpusError(f"{where}: Feld „year“ muss eine Jahreszahl sein")
    cited_as = entry.get("cited_as", [])
    if not isinstance(cited_as, list) or not all(isinstance(c, str) for c in cited_as):
        raise CorpusError(f"{where}: Feld „cited_as“ muss eine Liste von Texten sein")
    _check_file(where, kind, texts["file"])
    return LiteratureEntry(kind, url, year=year, cited_as=tuple(cited_as), **texts)


def _optional_text(where: str, entry: dict[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise CorpusError(f"{where}: Feld „{name}“ muss ein nicht leerer Text sein")
    return value.strip() if isinstance(value, str) else None


def _check_file(where: str, kind: str, file: str | None) -> None:
    if kind == "web":
        if file is not None:
            raise CorpusError(f"{where}: Feld „file“ gibt es nur bei kind = „pdf“")
        return
    if file is None:
        raise CorpusError(f"{where}: Feld „file“ fehlt (Pflicht bei kind = „pdf“)")
    plain = "/" not in file and "\\" not in file and not is_control_file(Path(file))
    if not plain or not file.lower().endswith(".pdf"):
        raise CorpusError(
            f"{where}: Feld „file“ muss ein einfacher Dateiname auf .pdf sein, nicht „{file}“"
        )


def discover(
    corpora: Sequence[Path], *, follow_outside_links: bool = False
) -> tuple[list[SourceFile], list[Skipped]]:
    """All document files below the corpus folders, and the files skipped with a reason.

    Args:
        corpora: The corpus folders.
        follow_outside_links: Whether symbolic links that lead out of their corpus folder are
            followed (files read, folders searched); by default they are skipped with a reason.
    """
    found: list[SourceFile] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}  # sha256 -> source, to recognise duplicate files
    for corpus in corpora:
        if not corpus.is_dir():
            raise CorpusError(f"{corpus}: Korpus-Ordner nicht gefunden")
        metadata = {**literature_infos(corpus), **load_metadata(corpus)}
        try:
            section_maps = load_section_maps(corpus / METADATA_FILE)
        except SectionMapError as exc:
            raise CorpusError(str(exc)) from exc
        for path, problem in corpus_entries(corpus, follow_outside_links=follow_outside_links):
            source = shown_source(corpus, path)
            problem = problem or _problem(path, source, found)
            if problem:
                skipped.append(Skipped(source, problem))
                continue
            sha = sha256_file(path)
            if sha in seen:
                skipped.append(Skipped(source, f"inhaltsgleich mit {seen[sha]} – übersprungen"))
                continue
            seen[sha] = source
            info = metadata.get(source) or DocumentInfo(title=path.name)
            sections = section_maps.get(source) if path.suffix.lower() != ".pdf" else None
            if sections is not None:  # a new map re-ingests the document, like new content
                sha = hashlib.sha256(f"{sha}|{sections.digest}".encode()).hexdigest()
            found.append(SourceFile(corpus, path, source, path.stat().st_size, sha, info, sections))
    return found, skipped


def shown_source(corpus: Path, path: Path) -> str:
    r"""The path relative to its corpus folder; bytes that are no UTF-8 shown escaped (`\xf6`)."""
    relative = path.relative_to(corpus).as_posix()
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def corpus_entries(
    corpus: Path, *, follow_outside_links: bool = False
) -> list[tuple[Path, str | None]]:
    """The files below `corpus` in path order, each with the reason it must be skipped, if any.

    Control files and hidden folders are left out silently. Links that stay inside the corpus
    folder behave as before (a linked file is read, a linked folder is not searched: its files
    are found where they really are); links out of it are skipped unless `follow_outside_links`.
    """
    root = corpus.resolve()
    entries: list[tuple[Path, str | None]] = []
    folders = [corpus]
    visited = {root}
    while folders:
        for path in folders.pop().iterdir():
            if is_control_file(path):
                continue
            problem = _name_problem(path) or _link_problem(path, root, follow_outside_links)
            if problem or path.is_file():
                entries.append((path, problem))
            elif _searchable(path, root, visited):
                folders.append(path)
    return sorted(entries, key=lambda entry: entry[0])


def _name_problem(path: Path) -> str | None:
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "Name ist kein gültiges UTF-8 (die Bytes sind als \\x.. gezeigt) – übersprungen; "
            "bitte umbenennen"
        )
    return None


def _link_problem(path: Path, root: Path, follow_outside_links: bool) -> str | None:
    if not path.is_symlink():
        return None
    target = path.resolve()
    if not target.exists():
        return "Verknüpfung zeigt ins Leere – übersprungen"
    if target.is_relative_to(root) or follow_outside_links:
        return None
    return (
        "Verknüpfung zeigt aus dem Korpus-Ordner hinaus – übersprungen "
        "(erlauben mit QUELLENCHAT_FOLLOW_OUTSIDE_LINKS=true)"
    )


def _searchable(path: Path, root: Path, visited: set[Path]) -> bool:
    """Whether a folder is searched: real folders, and links out of the corpus (once each)."""
    if not path.is_dir():
        return False
    target = path.resolve()
    if path.is_symlink() and target.is_relative_to(root):
        return False
    if target in visited:  # a link loop
        return False
    visited.add(target)
    return True


def _problem(path: Path, source: str, found: list[SourceFile]) -> str | None:
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        return f"Dateityp {path.suffix or '(ohne Endung)'} wird nicht unterstützt – übersprungen"
    if path.stat().st_size == 0:
        return "Datei ist leer (0 Byte) – übersprungen"
    if any(f.source == source for f in found):
        return "gleicher Pfad in zwei Korpus-Ordnern – übersprungen"
    return None
