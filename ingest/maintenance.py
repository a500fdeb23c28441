"""Keeping the store current from a long-running app: start-up check, plan, guarded updates.

The app is the embedded store's one writer while it runs: `StoreGuard` holds its writer lock
for the app's lifetime, so a CLI ingest meanwhile is refused instead of writing behind the app's
back; the app's own ingest runs work under the lock it holds. On a Chroma server many replicas
share the store: each ingest run takes the store's writer lease for its duration, so one replica
writes at a time and the others (and CLI ingests) are refused while it does.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ingest.run import Log, Report, run_ingest
from quellenchat.lease import FileLock, StoreBusy
from quellenchat.settings import Settings
from quellenchat.storage import StoreError, open_client, read_sources

AdminMode = Literal["open", "password", "disabled"]

# How often the app tries again for a writer lock that another process held at its start.
RETRY_SECONDS = 5.0
_logger = logging.getLogger("quellenchat.ingest")

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
        f"**Erledigt:** {report.done()}. {report.chunks_embedded} Chunks eingebettet in "
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


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Rising waits after wrong admin passwords: per client, and for all clients together.

    A client may guess `free_per_client` times; after that each wrong guess doubles its wait
    (from `first_wait` up to `max_wait` seconds). Wrong guesses of all clients within `window`
    seconds beyond `free_total` make everybody wait, too (at most `max_total_wait`), so many
    addresses do not help. While a wait runs no password is checked; afterwards the right one
    works at once. A client's count is forgotten `window` seconds after its last wrong guess,
    and on a right one.
    """

    clock: Callable[[], float] = time.monotonic
    free_per_client: int = 3
    free_total: int = 20
    first_wait: float = 1.0
    max_wait: float = 300.0
    max_total_wait: float = 60.0
    window: float = 3600.0
    _clients: dict[str, _Failures] = field(default_factory=dict)
    _recent: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before its next try (0 when it may try now)."""
        with self._lock:
            now = self.clock()
            self._forget(now)
            mine = self._clients.get(client, _Failures())
            own = mine.last + self._delay(mine.count, self.free_per_client, self.max_wait)
            total = 0.0
            if self._recent:
                extra = self._delay(len(self._recent), self.free_total, self.max_total_wait)
                total = self._recent[-1] + extra
            return max(0.0, own - now, total - now)

    def failed(self, client: str) -> None:
        """Record a wrong password from `client`."""
        with self._lock:
            now = self.clock()
            mine = self._clients.setdefault(client, _Failures())
            mine.count += 1
            mine.last = now
            self._recent.append(now)

    def succeeded(self, client: str) -> None:
        """The right password: `client` starts afresh."""
        with self._lock:
            self._clients.pop(client, None)

    def _delay(self, count: int, free: int, cap: float) -> float:
        if count < free:
            return 0.0
        return min(cap, self.first_wait * 2.0 ** min(count - free, 30))

    def _forget(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        for client in [c for c, f in self._clients.items() if f.last <= now - self.window]:
            del self._clients[client]


def throttled_message(seconds: float) -> str:
    """What a client hears while it must wait before the next password try."""
    return (
        "**Zu viele Fehlversuche.** Bitte in "
        f"{math.ceil(seconds)} s erneut versuchen (jeder weitere Fehlversuch verlängert die "
        "Wartezeit)."
    )


class StoreGuard:
    """Holds the embedded store's writer lock for the app's lifetime; its ingest runs use it.

    The lock is never let go between the app's runs, so a CLI ingest cannot slip in. When another
    process holds it at start, `hold()` keeps trying in the background until it is free. In server
    mode it holds nothing: every run takes the server's writer lease itself.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
                )
        except UpdateRunning as exc:
            report.error, report.busy = str(exc), True
            return report
