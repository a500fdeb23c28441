"""The Quellen tab's policy and texts: who may administer, and how plans and results read.

Admin mode (password, open on loopback, disabled), the constant-time password check, the
throttle after wrong passwords, the documents table's columns, and the German Markdown of an
ingest plan or result. The ingest itself (`ingest/`) knows none of this.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ingest.maintenance import needs_update
from ingest.run import Report
from quellenchat.settings import Settings
from quellenchat.storage import SourceRecord, open_client, read_sources

AdminMode = Literal["open", "password", "disabled"]

DOCUMENT_COLUMNS = ["Titel", "Quelle", "Jahr", "Seiten", "Chunks", "sha256", "Eingelesen"]


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
    """One row per document in the store `settings` name, in `DOCUMENT_COLUMNS` order."""
    return document_rows(read_sources(open_client(settings)))


def document_rows(records: Iterable[SourceRecord]) -> list[list[object]]:
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
        for r in records
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


@dataclass
class SignedIn:
    """Clients (by address) that logged in to the Quellen tab recently.

    In password mode only they may send files to Gradio's upload route: without it anybody
    could fill Gradio's temp folder before logging in. An address, not a session, because the
    upload route knows nothing of Gradio sessions; behind a reverse proxy every client has the
    proxy's address (README, „Sicherheit“).
    """

    clock: Callable[[], float] = time.monotonic
    lifetime: float = 8 * 3600.0
    _until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, client: str) -> None:
        """`client` has just given the right password."""
        with self._lock:
            now = self.clock()
            self._until = {c: t for c, t in self._until.items() if t > now}
            self._until[client] = now + self.lifetime

    def __contains__(self, client: object) -> bool:
        with self._lock:
            return isinstance(client, str) and self._until.get(client, 0.0) > self.clock()


def throttled_message(seconds: float) -> str:
    """What a client hears while it must wait before the next password try."""
    return (
        "**Zu viele Fehlversuche.** Bitte in "
        f"{math.ceil(seconds)} s erneut versuchen (jeder weitere Fehlversuch verlängert die "
        "Wartezeit)."
    )
