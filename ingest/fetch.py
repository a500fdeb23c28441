"""Fetching the literature PDFs the manifest lists: `python -m ingest fetch`.

Each download goes to a temporary file beside its target and replaces it by an atomic rename only
once it is complete, within the size limit and really a PDF; a failed download never touches the
file already there. The sha256 of every fetched file goes into a lock file in the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path
from typing import Any, BinaryIO

from ingest.corpus import CorpusError, LiteratureEntry, load_literature, sha256_file

Log = Callable[[str], None]
LOCK_NAME = "literature.lock"
USER_AGENT = "Quellenchat/0.1 (Literaturabruf; python-urllib)"
# Servers may put a little junk before the header; PDF readers look for it in the first 1 KiB.
PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
READ_BLOCK = 1 << 16

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2

STATUS_LABELS = {
    "new": "neu",
    "changed": "geändert",
    "unchanged": "unverändert",
    "failed": "fehlgeschlagen",
}
# Downloads and the lock are ordinary data files (mkstemp would leave them private to the owner).
FILE_MODE = 0o644


@dataclass(frozen=True)
class FetchLimits:
    """How patient and how generous a download is."""

    timeout: float = 30.0  # seconds per connect or read
    attempts: int = 3  # tries per entry; only transient failures are retried
    backoff: float = 1.0  # seconds before the 2nd try, doubled for each further one
    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float = 600.0  # a whole download, however steadily the bytes trickle


class FetchError(Exception):
    """A download failed; the message is the German reason, `retry` says whether to try again."""

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.retry = retry


@dataclass
class FetchResult:
    """What happened to one pdf entry."""

    file: str
    url: str
    title: str | None
    status: str  # new | unchanged | changed | failed
    attempts: int = 0
    sha256: str | None = None  # of the file now in place (the old one when the fetch failed)
    previous_sha256: str | None = None
    size: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready object."""
        return {
            "file": self.file,
            "url": self.url,
            "title": self.title,
            "status": self.status,
            "sha256": self.sha256,
            "previous_sha256": self.previous_sha256,
            "size": self.size,
            "attempts": self.attempts,
            "reason": self.reason,
        }


@dataclass
class FetchReport:
    """What a fetch run did; `to_json()` is the `--json` output, a contract for scripts."""

    manifest: str
    dest: str = ""
    lock: str = ""
    results: list[FetchResult] = field(default_factory=list)
    web_links: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """0 when every PDF is in place, 1 when some failed, 2 when the manifest is unusable."""
        if self.error:
            return EXIT_UNUSABLE
        return EXIT_FAILED if any(r.status == "failed" for r in self.results) else EXIT_OK

    def files(self, status: str) -> list[str]:
        """The file names with one status."""
        return [r.file for r in self.results if r.status == status]

    def summary(self) -> str:
        """One German line, e.g. `2 neu, 0 geändert, 5 unverändert, 1 fehlgeschlagen`."""
        return ", ".join(f"{len(self.files(s))} {label}" for s, label in STATUS_LABELS.items())

    def to_json(self) -> dict[str, Any]:
        """The run as one JSON-ready object."""
        return {
            "manifest": self.manifest,
            "dest": self.dest,
            "lock": self.lock,
            "documents": [r.to_json() for r in self.results],
            "new": self.files("new"),
            "changed": self.files("changed"),
            "unchanged": self.files("unchanged"),
            "failed": [
                {"file": r.file, "reason": r.reason} for r in self.results if r.status == "failed"
            ],
            "web_links": self.web_links,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "exit_code": self.exit_code,
        }


def fetch_literature(
    manifest: Path,
    dest: Path | None = None,
    *,
    limits: FetchLimits | None = None,
    log: Log = lambda message: None,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchReport:
    """Download every pdf entry of the manifest into `dest` (default: the manifest's folder)."""
    started = time.perf_counter()
    report = FetchReport(manifest=str(manifest))
    try:
        literature = load_literature(manifest)
        target = dest if dest is not None else literature.dest
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CorpusError(
                f"{target}: Zielordner nicht anlegbar ({exc.strerror or exc})"
            ) from exc
        report.dest, report.lock = str(target), str(target / LOCK_NAME)
        report.web_links = len(literature.documents) - len(literature.pdfs)
        log(
            f"Literatur aus {manifest} nach {target}: {len(literature.pdfs)} PDF-Dokumente "
            f"(dazu {report.web_links} Webseiten, die nur verlinkt werden)"
        )
        _fetch_all(literature.pdfs, target, report, limits or FetchLimits(), log, sleep)
    except CorpusError as exc:
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


def _fetch_all(
    entries: list[LiteratureEntry],
    target: Path,
    report: FetchReport,
    limits: FetchLimits,
    log: Log,
    sleep: Callable[[float], None],
) -> None:
    lock = read_lock(target / LOCK_NAME, log)
    for entry in entries:
        result = fetch_entry(entry, target, limits, sleep)
        report.results.append(result)
        log(describe(result))
        _lock_result(lock, result)
    try:
        write_lock(target / LOCK_NAME, lock)
    except OSError as exc:
        raise CorpusError(
            f"{target / LOCK_NAME}: nicht schreibbar ({exc.strerror or exc})"
        ) from exc


def fetch_entry(
    entry: LiteratureEntry,
    dest: Path,
    limits: FetchLimits,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """Fetch one pdf entry with retries; the file in place changes only after a good download."""
    assert entry.file is not None  # the manifest checks that pdf entries name their file
    target = dest / entry.file
    result = FetchResult(file=entry.file, url=entry.url, title=entry.title, status="failed")
    previous = sha256_file(target) if target.is_file() else None
    for attempt in range(1, max(1, limits.attempts) + 1):
        result.attempts = attempt
        try:
            temp, sha, size = download(entry.url, dest, entry.file, limits)
        except FetchError as exc:
            result.reason = str(exc)
            if exc.retry and attempt < limits.attempts:
                sleep(limits.backoff * 2 ** (attempt - 1))
                continue
            break
        if sha == previous:
            temp.unlink()  # identical: the file in place stays untouched, mtime included
            status = "unchanged"
        else:
            try:
                os.replace(temp, target)
            except OSError as exc:
                temp.unlink(missing_ok=True)
                result.reason = f"{target}: nicht schreibbar ({exc.strerror or exc})"
                break
            status = "changed" if previous else "new"
        result.status, result.reason, result.sha256, result.size = status, None, sha, size
        result.previous_sha256 = previous
        return result
    if previous:
        result.sha256 = result.previous_sha256 = previous
        result.reason = f"{result.reason} – die vorhandene Datei bleibt unverändert"
    return result


def download(url: str, dest: Path, name: str, limits: FetchLimits) -> tuple[Path, str, int]:
    """Download `url` into a hidden temporary file in `dest`; returns it with its sha256 and size.

    Raises:
        FetchError: with a German reason; nothing is left behind.
    """
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/pdf, */*;q=0.5"}
    )
    try:
        response = urllib.request.urlopen(request, timeout=limits.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(
            f"HTTP {exc.code} {exc.reason}".rstrip(), retry=exc.code in RETRY_STATUS
        ) from None
    except urllib.error.URLError as exc:
        raise _network_error(exc.reason, limits) from None
    except (OSError, HTTPException) as exc:
        raise _network_error(exc, limits) from None
    with response:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limits.max_bytes:
            raise FetchError(_too_large(int(length), limits))
        try:
            descriptor, name_tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
        except OSError as exc:
            raise FetchError(f"{dest}: nicht beschreibbar ({exc.strerror or exc})") from None
        temp = Path(name_tmp)
        try:
            os.fchmod(descriptor, FILE_MODE)
            with os.fdopen(descriptor, "wb") as out:
                sha, size, head = _copy(response, out, limits)
                out.flush()
                os.fsync(out.fileno())
            if PDF_MAGIC not in head:
                raise FetchError(_not_a_pdf(head, response.headers.get("Content-Type")))
        except OSError as exc:  # our side: disk full, folder gone …
            temp.unlink(missing_ok=True)
            raise FetchError(
                f"{temp.parent}: Schreiben fehlgeschlagen ({exc.strerror or exc})"
            ) from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return temp, sha, size


def _copy(response: BinaryIO, out: BinaryIO, limits: FetchLimits) -> tuple[str, int, bytes]:
    """Stream the body into `out`; returns sha256, size and the first bytes (for the magic)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    deadline = time.monotonic() + limits.max_seconds
    while True:
        try:
            block = response.read(READ_BLOCK)
        except (OSError, HTTPException) as exc:
            raise _network_error(exc, limits) from None
        if not block:
            return digest.hexdigest(), size, head
        size += len(block)
        if size > limits.max_bytes:
            raise FetchError(_too_large(size, limits, at_least=True))
        if time.monotonic() > deadline:
            raise FetchError(
                f"Download dauert länger als {limits.max_seconds:g} s – abgebrochen", retry=True
            )
        if len(head) < MAGIC_WINDOW:
            head += block[: MAGIC_WINDOW - len(head)]
        digest.update(block)
        out.write(block)


def _network_error(reason: object, limits: FetchLimits) -> FetchError:
    """A German reason for a failed connection; offline conditions are not retried."""
    if isinstance(reason, socket.gaierror):
        return FetchError(f"Rechnername nicht auflösbar – keine Internetverbindung? ({reason})")
    if isinstance(reason, TimeoutError):
        return FetchError(f"Zeitüberschreitung nach {limits.timeout:g} s", retry=True)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return FetchError(f"TLS-Zertifikat nicht vertrauenswürdig ({reason.verify_message})")
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return FetchError(f"Netz nicht erreichbar – keine Internetverbindung? ({reason})")
    if isinstance(reason, ConnectionRefusedError):
        return FetchError("Verbindung abgelehnt", retry=True)
    if isinstance(reason, HTTPException):
        return FetchError(f"Übertragung abgebrochen ({type(reason).__name__})", retry=True)
    return FetchError(f"Verbindungsfehler: {reason}", retry=True)


def _too_large(size: int, limits: FetchLimits, *, at_least: bool = False) -> str:
    more = "mehr als " if at_least else ""
    return f"zu groß: {more}{_mb(size)} (Grenze {_mb(limits.max_bytes)})"


def _not_a_pdf(head: bytes, content_type: str | None) -> str:
    start = head[:40].decode("latin-1").split("\n")[0].strip() or "(leer)"
    served = f", ausgeliefert als {content_type}" if content_type else ""
    return f"kein PDF: die Antwort beginnt mit „{start}“{served}"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB".replace(".", ",")


def describe(result: FetchResult) -> str:
    """One German line about an entry's outcome."""
    label = STATUS_LABELS[result.status]
    if result.status == "failed":
        return f"{label}: {result.file}: {result.reason}"
    size = f" ({_mb(result.size)})" if result.size is not None else ""
    if result.status == "changed" and result.previous_sha256 and result.sha256:
        return (
            f"{label}: {result.file}{size}, sha256 {result.previous_sha256[:12]}… → "
            f"{result.sha256[:12]}…"
        )
    return f"{label}: {result.file}{size}"


def read_lock(path: Path, log: Log = lambda message: None) -> dict[str, dict[str, Any]]:
    """The lock file's entries per file name; an unreadable lock is reported and started afresh."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"{path}: Lock-Datei unlesbar ({type(exc).__name__}) – wird neu geschrieben")
        return {}
    return {name: entry for name, entry in files.items() if isinstance(entry, dict)}


def write_lock(path: Path, files: dict[str, dict[str, Any]]) -> None:
    """Write the lock file atomically, and only when its content changes."""
    data = {
        "comment": "Von `python -m ingest fetch` geschrieben: Prüfsummen der geladenen Literatur.",
        "version": 1,
        "files": dict(sorted(files.items())),
    }
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if path.exists() and path.read_text(encoding="utf-8", errors="replace") == text:
        return
    if not path.exists() and not files:
        return  # nothing fetched yet: no lock file to clutter the folder
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def _lock_result(lock: dict[str, dict[str, Any]], result: FetchResult) -> None:
    """Record a successful fetch; a failed one keeps whatever the lock said before."""
    if result.status == "failed":
        return
    known = lock.get(result.file, {})
    if known.get("sha256") == result.sha256 and known.get("url") == result.url:
        return  # keep the lock stable when nothing changed
    lock[result.file] = {
        "url": result.url,
        "sha256": result.sha256,
        "size": result.size,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
