"""Keeping the store current from a long-running app: start-up check, guarded updates.

The app is the embedded store's one writer while it runs: `StoreGuard` holds its writer lock
for the app's lifetime, so a CLI ingest meanwhile is refused instead of writing behind the app's
back; the app's own ingest runs work under the lock it holds. On a Chroma server many replicas
share the store: each ingest run takes the store's writer lease for its duration, so one replica
writes at a time and the others (and CLI ingests) are refused while it does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ingest.run import Log, Report, run_ingest
from quellenchat.lease import FileLock, StoreBusy
from quellenchat.settings import Settings
from quellenchat.storage import StoreError

if TYPE_CHECKING:
    from quellenchat.embedding import Embedder

# How often the app tries again for a writer lock that another process held at its start.
RETRY_SECONDS = 5.0
_logger = logging.getLogger("quellenchat.ingest")


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


def bring_up_to_date(
    settings: Settings,
    *,
    log: Log,
    show_progress: bool = False,
    embedder: Embedder | None = None,
) -> Report:
    """Ingest when a dry run shows the store missing or stale; else return the dry run's report.

    `embedder` is the process's embedder (the app's), so the ingest loads no second model.
    """
    report = run_ingest(settings, dry_run=True)
    if report.error:
        return report
    if not needs_update(report):
        log(f"Index ist aktuell: {report.documents_total} Dokumente, {report.chunks_total} Chunks.")
        return report
    log(f"Index fehlt oder ist nicht aktuell ({report.plan}) – lese ein …")
    if embedder is None:
        from quellenchat.embedding import make_embedder

        log("Lade Einbettungsmodell …")
        embedder = make_embedder(settings)
    # Loaded before the run takes the server's writer lease: a load that stalls the process for
    # seconds (a busy machine, short of memory) would starve the lease's renewer and end the run.
    getattr(embedder, "model", None)
    report = run_ingest(settings, log=log, show_progress=show_progress, embedder=embedder)
    if not report.error:
        log(
            f"Eingelesen: {report.chunks_embedded} Chunks in {report.seconds:.1f} s; Index: "
            f"{report.documents_total} Dokumente, {report.chunks_total} Chunks."
        )
    return report


class StoreGuard:
    """Holds the embedded store's writer lock for the app's lifetime; its ingest runs use it.

    The lock is never let go between the app's runs, so a CLI ingest cannot slip in. When another
    process holds it at start, `hold()` keeps trying in the background until it is free. In server
    mode it holds nothing: every run takes the server's writer lease itself. Its runs embed with
    `embedder`, the app's, so an admin ingest loads no second model.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self._lock = None if settings.chroma_url else FileLock(settings.store)
        self._lock_guard = threading.Lock()
        self._updating = threading.Lock()
        self._closed = threading.Event()
        self._retrying: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether nothing keeps this app from writing (always true in server mode)."""
        return self._lock is None or self._lock.held

    def acquire(self) -> bool:
        """Take the writer lock; False when another process holds it."""
        return self._take(retrying=False)

    def _take(self, *, retrying: bool) -> bool:
        with self._lock_guard:
            if self._lock is None or self._lock.held:
                return True
            if retrying and self._closed.is_set():
                return True  # released meanwhile: the retries end
            try:
                self._lock.acquire()
            except StoreBusy:
                return False
            return True

    def hold(self, retry_seconds: float = RETRY_SECONDS) -> bool:
        """Take the writer lock now, or keep trying every `retry_seconds` until it is free.

        Returns whether it is held now.
        """
        self._closed.clear()
        if self.acquire():
            return True
        if self._retrying is None or not self._retrying.is_alive():
            self._retrying = threading.Thread(
                target=self._retry,
                args=(retry_seconds,),
                name="quellenchat-store-lock",
                daemon=True,
            )
            self._retrying.start()
        return False

    def _retry(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            if self._take(retrying=True):
                if self.held and not self._closed.is_set():
                    _logger.info("Schreibsperre von %s übernommen.", self.settings.store)
                return

    def release(self) -> None:
        """Give the writer lock back and stop trying to take it."""
        self._closed.set()
        with self._lock_guard:
            if self._lock is not None:
                self._lock.release()

    @contextmanager
    def updating(self) -> Iterator[None]:
        """One update of this app at a time."""
        if not self._updating.acquire(blocking=False):
            raise UpdateRunning("Es läuft bereits eine Aktualisierung. Bitte kurz warten.")
        try:
            yield
        finally:
            self._updating.release()

    def run(
        self, *, dry_run: bool, log: Log = lambda message: None, show_progress: bool = False
    ) -> Report:
        """An ingest run (or dry run) under the lock the app holds (server mode: the lease)."""
        report = Report(store=self.settings.chroma_url or str(self.settings.store), dry_run=dry_run)
        try:
            with self.updating():
                if not dry_run and not self.acquire():
                    report.error = (
                        f"Der Speicher {self.settings.store} wird gerade von einem anderen "
                        "Prozess beschrieben (z. B. `python -m ingest`). Die App übernimmt ihn, "
                        "sobald er frei ist; bitte später erneut versuchen."
                    )
                    report.busy = True
                    return report
                return run_ingest(
                    self.settings,
                    dry_run=dry_run,
                    log=log,
                    show_progress=show_progress,
                    writer_locked=self._lock is not None,
                    embedder=self.embedder,
                )
        except UpdateRunning as exc:
            report.error, report.busy = str(exc), True
            return report
