"""A conversation with its sources as a Markdown document, for the app's download."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from retrieval.answers import Answer
from retrieval.citation_text import citation_text, flat
from retrieval.render import escape_markdown


def conversation_markdown(turns: Sequence[Answer], exported_at: datetime) -> str:
    """Every question and answer in order, each followed by its numbered, checked sources."""
    lines = [
        "# Quellenchat – Unterhaltung",
        "",
        f"Exportiert am {exported_at:%d.%m.%Y um %H:%M} Uhr. Jede Quelle ist als Zitat mit "
        "Dokument, Herausgeber und Jahr (soweit angegeben), Seite und Link angegeben; "
        "„geprüft“ heißt: das Zitat steht wörtlich im gespeicherten Text der Quelle.",
    ]
    for number, turn in enumerate(turns, start=1):
        lines += ["", f"## Frage {number}", "", escape_markdown(flat(turn.question)), ""]
        lines += ["### Antwort", "", escape_markdown(turn.answer)]
        if turn.unsupported:
            lines += ["", "Ohne Beleg (nicht durch die Quellen gestützt):", ""]
            lines += [f"- {escape_markdown(flat(s))}" for s in turn.unsupported]
        if turn.notice:
            lines += ["", f"Hinweis: {escape_markdown(turn.notice)}"]
        if turn.citations:
            lines += ["", "### Quellen", ""]
            for citation in turn.citations:
                check = "geprüft" if citation.verified else "nicht geprüft"
                quote = escape_markdown(citation_text(citation))
                lines.append(f"- \\[{citation.n}\\] {quote} – {check}")
    return "\n".join(lines) + "\n"


def export_file_name(exported_at: datetime) -> str:
    """The download's file name."""
    return f"quellenchat-unterhaltung-{exported_at:%Y-%m-%d-%H%M}.md"


class ExportFolder:
    """The app's conversation exports on disk, each in a folder of its own with a random name.

    An export is deleted `keep_seconds` after it was written (`prune`, on every new export and by
    the app's sweeper) and, with all others this app wrote, when the app stops (`clear`).
    """

    def __init__(
        self, root: Path, keep_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._mine: set[Path] = set()

    def write(self, turns: Sequence[Answer], now: datetime) -> Path:
        """Write the conversation as Markdown; returns the file's path."""
        self.prune()
        folder = self.root / f"{int(self.clock())}-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        self._mine.add(folder)
        path = folder / export_file_name(now)
        path.write_text(conversation_markdown(turns, now), encoding="utf-8")
        return path

    def prune(self) -> int:
        """Delete the exports older than `keep_seconds` (of any app sharing the folder)."""
        if not self.root.is_dir():
            return 0
        limit = self.clock() - self.keep_seconds
        old = [f for f in self.root.iterdir() if f.is_dir() and _written(f) < limit]
        for folder in old:
            self._remove(folder)
        return len(old)

    def clear(self) -> None:
        """Delete every export this app wrote (at shutdown)."""
        for folder in list(self._mine):
            self._remove(folder)

    def _remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self._mine.discard(folder)


def _written(folder: Path) -> float:
    """When an export folder was written: from its name, else from the file system."""
    stamp = folder.name.split("-", 1)[0]
    return float(stamp) if stamp.isdigit() else folder.stat().st_mtime
