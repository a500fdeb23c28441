"""Feedback from the app, appended to a JSON Lines file and pruned after the retention period.

An entry holds what is needed to judge an answer and nothing about the person: question, answer,
passage ids, backend, time, the kind of feedback and an optional comment. No IP address, no
session, no user name ever reaches this module.
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import filelock

from retrieval.answers import Answer

Kind = Literal["hilfreich", "nicht_hilfreich", "zitat_falsch"]
KINDS: tuple[Kind, ...] = ("hilfreich", "nicht_hilfreich", "zitat_falsch")
MAX_COMMENT = 2000
# Pruning rewrites the file; doing it on every append would be wasteful.
PRUNE_EVERY = timedelta(hours=1)

STORED_NOTE = (
    "Bei einer Rückmeldung (👍/👎 oder „Zitat falsch“) werden nur Frage, Antwort, Passagen-IDs, "
    "Antwort-Backend, Zeitpunkt, Art der Rückmeldung, gegebenenfalls das gemeldete Zitat und Ihr "
    "Kommentar gespeichert – keine IP-Adresse und keine Nutzerdaten. Einträge werden nach {days} "
    "Tagen gelöscht."
)
# Beside the "Zitat falsch" buttons of the sources panel.
QUOTE_NOTE = (
    "„Zitat falsch“ speichert das Zitat mit Frage, Antwort und Passagen-IDs – keine IP-Adresse, "
    "keine Nutzerdaten."
)

STORED_SHORT = "(Keine IP-Adresse, keine Nutzerdaten.)"


class FeedbackError(ValueError):
    """Feedback that cannot be stored; the message is German."""


@dataclass(frozen=True)
class FeedbackEntry:
    """One line of the feedback file."""

    time: str  # ISO 8601, UTC
    kind: Kind
    question: str
    answer: str
    passage_ids: list[str]
    backend: str
    comment: str | None = None
    citation: int | None = None  # the citation number, for `zitat_falsch`
    quote: str | None = None
    cited_passage_id: str | None = None

    @classmethod
    def build(
        cls,
        kind: Kind,
        answer: Answer,
        now: datetime,
        comment: str | None = None,
        citation: int | None = None,
    ) -> FeedbackEntry:
        """An entry about `answer`; `citation` names the cited quote reported as wrong."""
        if kind not in KINDS:
            raise FeedbackError(f"Unbekannte Art der Rückmeldung: {kind}")
        cited = next((c for c in answer.citations if c.n == citation), None)
        if citation is not None and cited is None:
            raise FeedbackError(f"Die Antwort hat kein Zitat [{citation}].")
        return cls(
            time=now.astimezone(UTC).isoformat(timespec="seconds"),
            kind=kind,
            question=answer.question,
            answer=answer.answer,
            passage_ids=[p.id for p in answer.passages],
            backend=answer.backend,
            comment=clean_comment(comment),
            citation=citation,
            quote=cited.quote if cited else None,
            cited_passage_id=cited.passage.id if cited else None,
        )


def clean_comment(comment: str | None) -> str | None:
    """The comment without control characters, cut to `MAX_COMMENT`; None when empty."""
    if not comment:
        return None
    kept = "".join(
        ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in comment
    )
    return kept.strip()[:MAX_COMMENT] or None


class FeedbackStore:
    """Appends entries to a JSON Lines file; safe across threads and processes."""

    def __init__(self, path: Path, retention_days: int) -> None:
        self.path = path
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._pruned_at: datetime | None = None

    def append(self, entry: FeedbackEntry, now: datetime | None = None) -> None:
        """Add one entry; prunes expired ones at most once an hour."""
        line = json.dumps(asdict(entry), ensure_ascii=False) + "\n"
        now = now or datetime.now(UTC)
        with self._locked():
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                self._prune(now)

    def prune(self, now: datetime | None = None) -> int:
        """Delete entries older than the retention period; returns how many were removed."""
        with self._locked():
            return self._prune(now or datetime.now(UTC))

    def read(self) -> list[dict[str, Any]]:
        """All stored entries, oldest first (unreadable lines are skipped)."""
        with self._locked():
            return list(_parse(self._lines()))

    def _prune(self, now: datetime) -> int:
        self._pruned_at = now
        lines = self._lines()
        cutoff = now - self.retention
        kept = [line for line in lines if not _expired(line, cutoff)]
        if len(kept) == len(lines):
            return 0
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, self.path)
        return len(lines) - len(kept)

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [line for line in handle if line.strip()]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        # The thread lock orders this process's writers; the file lock other processes'.
        with self._lock, filelock.FileLock(lock_path):
            yield


def _parse(lines: Sequence[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def _expired(line: str, cutoff: datetime) -> bool:
    try:
        when = datetime.fromisoformat(json.loads(line)["time"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return False  # never drop what we cannot read
    return when < cutoff
