"""What an ingest run has to do: compare the corpus with the store's manifest (pure logic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.corpus import SourceFile
from quellenchat.storage import SourceRecord


@dataclass(frozen=True)
class Plan:
    """The difference between the corpus and the store, per source."""

    new: list[SourceFile] = field(default_factory=list)
    changed: list[tuple[SourceFile, SourceRecord]] = field(default_factory=list)
    renamed: list[tuple[SourceFile, SourceRecord]] = field(default_factory=list)
    removed: list[SourceRecord] = field(default_factory=list)
    unchanged: list[tuple[SourceFile, SourceRecord]] = field(default_factory=list)

    @property
    def to_embed(self) -> list[SourceFile]:
        """Files whose content must be loaded, chunked and embedded."""
        return [*self.new, *(f for f, _ in self.changed)]

    @property
    def redescribed(self) -> list[tuple[SourceFile, SourceRecord]]:
        """Unchanged files whose record is stale: new title, year, URL … or corpus folder.

        Only their manifest record is rewritten; chunks and vectors stay as they are.
        """
        return [
            (f, r) for f, r in self.unchanged if f.info != r.info or f.corpus.as_posix() != r.corpus
        ]

    @property
    def has_work(self) -> bool:
        """Whether the store needs any write at all (metadata updates included)."""
        return bool(self.new or self.changed or self.renamed or self.removed or self.redescribed)

    def summary(self) -> str:
        """One German line, e.g. `3 neu, 1 geändert, 2 entfernt, 10 unverändert`."""
        return counts_line(
            new=len(self.new),
            changed=len(self.changed),
            renamed=len(self.renamed),
            removed=len(self.removed),
            unchanged=len(self.unchanged),
            redescribed=len(self.redescribed),
        )


def counts_line(
    *, new: int, changed: int, renamed: int, removed: int, unchanged: int, redescribed: int
) -> str:
    """The German counts line of a plan or of a finished run (renames only when there are any)."""
    parts = [f"{new} neu", f"{changed} geändert"]
    if renamed:
        parts.append(f"{renamed} umbenannt")
    parts += [f"{removed} entfernt", f"{unchanged} unverändert"]
    if redescribed:
        parts[-1] += f" (davon {redescribed} mit neuen Angaben)"
    return ", ".join(parts)


def make_plan(files: Sequence[SourceFile], records: Sequence[SourceRecord]) -> Plan:
    """Classify every file and manifest record; an identical file under a new name is a rename."""
    by_source = {r.source: r for r in records}
    present = {f.source for f in files}
    gone = [r for r in records if r.source not in present]
    vanished = {r.doc_sha: r for r in reversed(gone)}  # first record wins per checksum
    plan = Plan()
    for file in files:
        record = by_source.get(file.source)
        if record is None and file.sha256 in vanished:
            plan.renamed.append((file, vanished.pop(file.sha256)))
        elif record is None:
            plan.new.append(file)
        elif record.doc_sha != file.sha256:
            plan.changed.append((file, record))
        else:
            plan.unchanged.append((file, record))
    renamed_from = {r.source for _, r in plan.renamed}
    plan.removed.extend(r for r in gone if r.source not in renamed_from)
    return plan
