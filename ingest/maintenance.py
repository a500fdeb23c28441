"""Keeping the store current from a long-running app: start-up check, plan, guarded updates.

The app is the store's one writer while it runs: `StoreGuard` holds the writer lock of the
embedded store for the app's lifetime, so a CLI ingest meanwhile is refused instead of writing
behind the app's back; the app hands the lock to its own ingest runs.
"""

from __future__ import annotations

import fcntl
import hmac
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Literal

from ingest.run import LOCK_FILE, Log, Report, run_ingest
from quellenchat.settings import Settings
from quellenchat.storage import StoreError, open_client, read_sources

AdminMode = Literal["open", "password", "disabled"]

DOCUMENT_COLUMNS = ["Titel", "Quelle", "Jahr", "Seiten", "Chunks", "sha256", "Eingelesen"]


class UpdateRunning(StoreError):
    """Another update of this app is still running."""


def needs_update(report: Report) -> bool:
    """Whether a dry-run report shows the store missing, stale or due for a rebuild."""
    return bool(
        report.rebuild_reason
        or report.new
        or report.changed
        or report.renamed
        or report.removed
        or report.metadata_updated
        or (report.documents_total == 0 and not report.error)
    )


def bring_up_to_date(settings: Settings, *, log: Log, show_progress: bool = False) -> Report:
    """Ingest when a dry run shows the store missing or stale; else return the dry run's report."""
    report = run_ingest(settings, dry_run=True)
    if report.error:
        return report
    if not needs_update(report):
        log(f"Index ist aktuell: {report.documents_total} Dokumente, {report.chunks_total} Chunks.")
        return report
    log(f"Index fehlt oder ist nicht aktuell ({report.plan}) – lese ein …")
    report = run_ingest(settings, log=log, show_progress=show_progress)
    if not report.error:
        log(
            f"Eingelesen: {report.chunks_embedded} Chunks in {report.seconds:.1f} s; Index: "
            f"{report.documents_total} Dokumente, {report.chunks_total} Chunks."
        )
    return report


def plan_text(report: Report) -> str:
    """A dry-run report in German Markdown: the summary line and the files it would touch."""
    if report.error:
        return f"**Fehler:** {report.error}"
    lines = [f"**Plan:** {report.plan}."]
    if report.rebuild_reason:
        lines.append(f"Der Index wird komplett neu aufgebaut: {report.rebuild_reason}.")
    for label, names in (
        ("Neu", report.new),
        ("Geändert", report.changed),
        ("Entfernt", report.removed),
        ("Neue Angaben (Titel, Jahr, Link)", report.metadata_updated),
    ):
        if names:
            lines.append(f"- {label}: " + ", ".join(f"`{name}`" for name in names))
    for item in report.renamed:
        lines.append(f"- Umbenannt: `{item['from']}` → `{item['to']}`")
    for item in report.skipped:
        lines.append(f"- Wird übersprungen: `{item['source']}` – {item['reason']}")
    if not needs_update(report):
        lines.append("Der Index ist aktuell; Einlesen ist nicht nötig.")
    return "\n".join(lines)


def result_text(report: Report) -> str:
    """A finished ingest in German Markdown."""
    if report.error:
        return f"**Fehler:** {report.error}"
    skipped = "".join(
        f"\n- Übersprungen: `{item['source']}` – {item['reason']}" for item in report.skipped
    )
    return (
        f"**Erledigt:** {report.plan}. {report.chunks_embedded} Chunks eingebettet in "
        f"{report.seconds:.1f} s. Index: {report.documents_total} Dokumente, "
        f"{report.chunks_total} Chunks.{skipped}"
    )


def documents_table(settings: Settings) -> list[list[object]]:
    """One row per stored document, in `DOCUMENT_COLUMNS` order."""
    return [
        [
            r.info.title,
            r.source,
            r.info.year or "",
            r.pages,
            r.chunks,
            r.doc_sha[:12],
            r.ingested_at.replace("T", " ").replace("+00:00", " UTC"),
        ]
        for r in read_sources(open_client(settings))
    ]


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the app on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_mode(settings: Settings) -> AdminMode:
    """How the Quellen tab is protected: by a password, open on loopback, else disabled."""
    if settings.admin_password:
        return "password"
    return "open" if is_loopback(settings.host) else "disabled"


def password_ok(settings: Settings, given: str | None) -> bool:
    """Constant-time password check; no password configured means no password matches."""
    expected = settings.admin_password
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class StoreGuard:
    """Holds the embedded store's writer lock for the app's lifetime; hands it to ingest runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._handle: IO[str] | None = None
        self._updating = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this process holds the writer lock (always true in server mode)."""
        return self.settings.chroma_url is not None or self._handle is not None

    def acquire(self) -> bool:
        """Take the writer lock; False when another process holds it."""
        if self.held:
            return True
        self.settings.store.mkdir(parents=True, exist_ok=True)
        handle = (self.settings.store / LOCK_FILE).open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the writer lock back."""
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None

    @contextmanager
    def handed_over(self) -> Iterator[None]:
        """Let one ingest run of this process take the lock; one at a time."""
        if not self._updating.acquire(blocking=False):
            raise UpdateRunning("Es läuft bereits eine Aktualisierung. Bitte kurz warten.")
        try:
            self.release()
            yield
        finally:
            self.acquire()
            self._updating.release()

    def run(
        self, *, dry_run: bool, log: Log = lambda message: None, show_progress: bool = False
    ) -> Report:
        """An ingest run (or dry run) while the app holds the store."""
        try:
            with self.handed_over():
                return run_ingest(
                    self.settings, dry_run=dry_run, log=log, show_progress=show_progress
                )
        except UpdateRunning as exc:
            report = Report(store=str(self.settings.store), dry_run=dry_run)
            report.error = str(exc)
            return report
