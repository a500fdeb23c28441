"""One writer at a time: a file lock beside an embedded store, a lease held in a Chroma server.

Embedded: an flock on `ingest.lock` in the store folder; the OS frees it when the process ends.

Server: the lease lives in the store itself, as a series of marker collections
`qc_writer_0000000001`, `…02`, … The highest one is the lease; its metadata names the holder and
when the lease ends, on the server's clock. Chroma refuses a second collection of the same name,
so of several writers that find the lease free, exactly one creates the next generation. The
holder renews the lease every quarter of its length. A writer that stops renewing (killed,
frozen, cut off) loses it once it has run out, and from then on `check()` refuses its writes:
the ingest's commit protocol treats that like a crash, and the next writer cleans up.

Why a lease cannot be held twice: a contender reads the server's clock *before* it reads the
lease, and takes it only if it had run out by then. The holder trusts its lease only until its own
monotonic clock says the lease length has passed since it asked the server for the time of its
last renewal, less a margin, and a renewal counts only if it came back before that deadline; so
every renewal that counts reached the server before the lease it extends ran out.

The fence, and why it cannot be strict: before each write batch `check()` first trusts its own
clock as above, then reads the lease back from the server and refuses unless the highest
generation is still its own (same name, same fencing token) and has not run out on the server's
clock. That also catches what the local clock cannot see: a machine or VM that was suspended
(Linux's monotonic clock stops while suspended, so the holder's deadline seems still ahead), or
a lease taken over by hand. A strict fence would need the store to refuse a write whose token is
stale, in the same step as the write; Chroma has no compare-and-set, no transactions and no
conditional upsert, so a writer frozen *between* its check and its write still lands that one
batch. The window is one request wide: the check runs right before every batch (at most
`ingest.index.WRITE_BATCH` chunks). What slips through is harmless by construction: a document
counts only once its manifest record is committed, the stale writer's next check (before its
next batch, and before the commit) refuses, and the next writer deletes what a run left
uncommitted.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import filelock

from quellenchat.storage import StoreError, describe, open_client, translate_errors

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from quellenchat.settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = "ingest.lock"
LEASE_PREFIX = "qc_writer_"
_GENERATION = re.compile(rf"{LEASE_PREFIX}(\d{{10}})")
# Renewals per lease length, and the share of it the holder keeps in hand for clock drift.
RENEWALS = 4
MARGIN = 0.1


class StoreBusy(StoreError):
    """Another process is writing the store right now."""


class LeaseLost(StoreError):
    """This writer's lease ran out (it was frozen or cut off); it must not write any more."""


class LeaseTakenOver(LeaseLost, StoreBusy):
    """Another writer holds the lease now; this one must not write any more."""


class WriterLock(Protocol):
    """What a writer holds while it writes: acquire, check before every write, release."""

    def acquire(self) -> None:
        """Take the lock; raises `StoreBusy` when another process holds it."""

    def check(self) -> None:
        """Raise `LeaseLost` unless the lock is still held."""

    def release(self) -> None:
        """Give the lock back (never raises)."""


class FileLock:
    """The embedded store's lock: an flock on a file in the store folder (via `filelock`)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        # Not thread-local: the app takes the lock in one thread and may give it back in another.
        self._lock = filelock.FileLock(store / LOCK_FILE, thread_local=False)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> None:
        """Take the lock; raises `StoreBusy` when another process holds it."""
        if self._lock.is_locked:
            return
        self.store.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(blocking=False)
        except filelock.Timeout:
            raise StoreBusy(
                f"Der Speicher {self.store} wird gerade von einem anderen Prozess beschrieben "
                "(Einlesen läuft bereits). Bitte warten und dann erneut versuchen."
            ) from None

    def check(self) -> None:
        """An flock cannot be lost while the process lives."""

    def release(self) -> None:
        """Give the lock back."""
        if self._lock.is_locked:
            self._lock.release(force=True)


@dataclass(frozen=True)
class LeaseInfo:
    """One generation of the server lease, as its marker collection records it."""

    generation: int
    holder: str
    expires_at: float  # seconds since the epoch, server clock
    released: bool

    def valid_at(self, now: float) -> bool:
        """Whether the lease still binds at server time `now`."""
        return not self.released and now < self.expires_at

    def until(self) -> str:
        """When the lease runs out, as local clock time."""
        return datetime.fromtimestamp(self.expires_at).strftime("%H:%M:%S")


def server_time(client: ClientAPI) -> float:
    """The Chroma server's clock in seconds since the epoch."""
    with translate_errors(describe(client)):
        return client.heartbeat() / 1e9


def current_lease(client: ClientAPI) -> LeaseInfo | None:
    """The lease that binds right now, or None when the store is free to write."""
    now = server_time(client)
    generations = _generations(client)
    if not generations:
        return None
    info = _info(*generations[-1])
    return info if info.valid_at(now) else None


def _generations(client: ClientAPI) -> list[tuple[int, Collection]]:
    with translate_errors(describe(client)):
        collections = client.list_collections()
    found = []
    for collection in collections:
        match = _GENERATION.fullmatch(collection.name)
        if match:
            found.append((int(match.group(1)), collection))
    return sorted(found, key=lambda item: item[0])


def _info(generation: int, collection: Collection) -> LeaseInfo:
    meta = collection.metadata or {}
    return LeaseInfo(
        generation=generation,
        holder=str(meta.get("holder", "?")),
        expires_at=float(meta.get("expires_at", 0.0)),
        released=bool(meta.get("released", False)),
    )


class ServerLease:
    """The writer lease of a store on a Chroma server, renewed in the background while held."""

    def __init__(self, client: ClientAPI, seconds: float, holder: str | None = None) -> None:
        self.client = client
        self.seconds = seconds
        self.holder = holder or f"{socket.gethostname()} (PID {os.getpid()})"
        self.where = describe(client)
        self._token = uuid.uuid4().hex
        self._collection: Collection | None = None
        self._deadline = 0.0  # monotonic clock
        self._lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this writer holds the lease and may still trust it."""
        with self._lock:
            return self._collection is not None and not self._lost and self._in_time()

    def acquire(self) -> None:
        """Take the lease; raises `StoreBusy` while another writer holds it."""
        if self._collection is not None:
            return
        asked = time.monotonic()
        now = server_time(self.client)  # before reading the lease: see the module docstring
        generations = _generations(self.client)
        if generations and (top := _info(*generations[-1])).valid_at(now):
            raise self._busy(top)
        number = generations[-1][0] + 1 if generations else 1
        collection = self._create(number, now + self.seconds)
        # A writer with an old view may have re-created a generation deleted meanwhile: the
        # lease is always the highest one.
        higher = [g for g in _generations(self.client) if g[0] > number]
        if higher:
            self._delete(collection.name)
            raise self._busy(_info(*higher[-1]))
        with self._lock:
            self._collection = collection
            self._deadline = asked + self.seconds * (1 - MARGIN)
            self._lost = False
        log.info("Schreib-Lease %s übernommen (%s)", collection.name, self.where)
        for _, older in generations:
            self._delete(older.name)
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="quellenchat-lease")
        self._renewer.daemon = True
        self._renewer.start()

    def check(self) -> None:
        """Raise `LeaseLost` unless the lease is still held; call right before every write.

        Checks the local deadline, then reads the lease back from the server: the highest
        generation must still be this writer's (its fencing token) and not have run out on the
        server's clock. `LeaseTakenOver` (also a `StoreBusy`) says who holds it now. The write
        that follows is not fenced by the server itself; see the module docstring.
        """
        with self._lock:
            collection = self._collection
            if collection is None:
                raise LeaseLost(f"Kein Schreibrecht auf den Index ({self.where}).")
            if self._lost or not self._in_time():
                self._lost = True
                raise self._expired()
        now = server_time(self.client)
        generations = _generations(self.client)
        top = generations[-1] if generations else None
        if top is None or top[1].name != collection.name or not self._owns(top[1]):
            with self._lock:
                self._lost = True
            holder = _info(*top).holder if top is not None else "niemandem"
            raise LeaseTakenOver(
                f"Das Schreibrecht (Lease) auf den Index ({self.where}) liegt inzwischen bei "
                f"{holder} – dieser Prozess hing oder war vom Server getrennt. Der Lauf bricht "
                "ab; das nächste Einlesen räumt Reste auf."
            )
        if not _info(*top).valid_at(now):
            with self._lock:
                self._lost = True
            raise self._expired()

    def _owns(self, collection: Collection) -> bool:
        return (collection.metadata or {}).get("token") == self._token

    def _expired(self) -> LeaseLost:
        return LeaseLost(
            f"Das Schreibrecht (Lease) auf den Index ({self.where}) ist abgelaufen – "
            "der Prozess hing oder war vom Server getrennt. Der Lauf bricht ab; "
            "das nächste Einlesen räumt Reste auf."
        )

    def renew(self) -> None:
        """Extend the lease by its full length; raises `LeaseLost` when too late."""
        collection = self._collection
        if collection is None:
            raise LeaseLost(f"Kein Schreibrecht auf den Index ({self.where}).")
        asked = time.monotonic()
        now = server_time(self.client)
        with translate_errors(self.where):
            collection.modify(metadata=self._metadata(now + self.seconds))
        with self._lock:
            if self._lost or not self._in_time():  # it may have reached the server too late
                self._lost = True
                raise LeaseLost(f"Das Schreibrecht auf den Index ({self.where}) ist abgelaufen.")
            self._deadline = asked + self.seconds * (1 - MARGIN)

    def release(self) -> None:
        """Give the lease back at once, so the next writer need not wait for it to run out."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        collection, self._collection = self._collection, None
        if collection is None:
            return
        try:
            if not self._lost:
                with translate_errors(self.where):
                    collection.modify(metadata={**self._metadata(0.0), "released": True})
        except StoreError as exc:  # it runs out on its own
            log.warning("Schreib-Lease nicht freigegeben: %s", exc)

    def _in_time(self) -> bool:
        return time.monotonic() < self._deadline

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / RENEWALS):
            try:
                self.renew()
            except LeaseLost as exc:
                log.error("%s", exc)
                return
            except StoreError as exc:  # try again; the deadline decides when it is lost
                log.warning("Schreib-Lease nicht verlängert: %s", exc)

    def _metadata(self, expires_at: float) -> dict[str, str | float | bool]:
        return {
            "holder": self.holder,
            "token": self._token,
            "expires_at": expires_at,
            "released": False,
        }

    def _create(self, number: int, expires_at: float) -> Collection:
        name = f"{LEASE_PREFIX}{number:010d}"
        try:
            with translate_errors(self.where):
                return self.client.create_collection(
                    name, metadata=self._metadata(expires_at), embedding_function=None
                )
        except StoreError:
            winner = next((g for g in _generations(self.client) if g[0] == number), None)
            if winner is None:
                raise
            raise self._busy(_info(*winner)) from None

    def _delete(self, name: str) -> None:
        try:
            with translate_errors(self.where):
                self.client.delete_collection(name)
        except StoreError as exc:  # gone already, or the next writer deletes it
            log.debug("Alte Lease %s nicht gelöscht: %s", name, exc)

    def _busy(self, info: LeaseInfo) -> StoreBusy:
        return StoreBusy(
            f"Der Index ({self.where}) wird gerade von {info.holder} beschrieben "
            f"(Schreib-Lease bis {info.until()}, verlängert sich, solange das Einlesen läuft). "
            "Bitte warten und dann erneut versuchen."
        )


def make_lock(settings: Settings) -> FileLock | ServerLease:
    """The writer lock that fits the store: a file lock, or a lease on the Chroma server."""
    if settings.chroma_url:
        return ServerLease(open_client(settings), settings.writer_lease_seconds)
    return FileLock(settings.store)


@contextmanager
def writer_lock(settings: Settings) -> Iterator[FileLock | ServerLease]:
    """Hold the store's writer lock for the block; a second writer is refused, not interleaved."""
    lock = make_lock(settings)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
