"""Keeping the store current from a long-running app: start-up check, plan, guarded updates.

The app is the embedded store's one writer while it runs: `StoreGuard` holds its writer lock
for the app's lifetime, so a CLI ingest meanwhile is refused instead of writing behind the app's
back; the app hands the lock to its own ingest runs. On a Chroma server many replicas share the
store: each ingest run takes the store's writer lease for its duration, so one replica writes at
a time and the others (and CLI ingests) are refused while it does.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from ingest.run import Log, Report, run_ingest
from quellenchat.lease import FileLock, StoreBusy
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
    """Holds the embedded store's writer lock for the app's lifetime; hands it to ingest runs.

    In server mode it holds nothing: every run takes the server's writer lease itself.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = None if settings.chroma_url else FileLock(settings.store)
        self._updating = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether nothing keeps this app from writing (always true in server mode)."""
        return self._lock is None or self._lock.held

    def acquire(self) -> bool:
        """Take the writer lock; False when another process holds it."""
        if self._lock is None:
            return True
        try:
            self._lock.acquire()
        except StoreBusy:
            return False
        return True

    def release(self) -> None:
        """Give the writer lock back."""
        if self._lock is not None:
            self._lock.release()

    @contextmanager
    def handed_over(self, *, writes: bool = True) -> Iterator[None]:
        """Let one ingest run of this process take the lock; one at a time (dry runs keep it)."""
        if not self._updating.acquire(blocking=False):
            raise UpdateRunning("Es läuft bereits eine Aktualisierung. Bitte kurz warten.")
        try:
            if writes:
                self.release()
            yield
        finally:
            if writes:
                self.acquire()
            self._updating.release()

    def run(
        self, *, dry_run: bool, log: Log = lambda message: None, show_progress: bool = False
    ) -> Report:
        """An ingest run (or dry run) while the app holds the store."""
        try:
            with self.handed_over(writes=not dry_run):
                return run_ingest(
                    self.settings, dry_run=dry_run, log=log, show_progress=show_progress
                )
        except UpdateRunning as exc:
            report = Report(self.settings.chroma_url or str(self.settings.store), dry_run)
            report.error, report.busy = str(exc), True
            return report
