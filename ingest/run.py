"""One ingest run: discover, plan, then write what changed, reporting as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.chunking import ChunkSizes
from ingest.corpus import CorpusError, SourceFile, discover
from ingest.index import EmbedFn, Fence, StoreWriter, embedding_text
from ingest.ownership import corpus_identities, writable_records
from ingest.plan import Plan, counts_line, make_plan
from quellenchat.lease import StoreBusy, writer_lock
from quellenchat.settings import Settings
from quellenchat.storage import SourceRecord, StoreError, open_client, unavailable_message

if TYPE_CHECKING:
    from ingest.documents import PreparedDocument
    from quellenchat.embedding import Embedder

Log = Callable[[str], None]
# Small documents are embedded together until a group holds this many chunks.
GROUP_CHUNKS = 64

EXIT_OK = 0
EXIT_SKIPPED = 1
EXIT_STORE_FAILED = 2


@dataclass
class Report:
    """What a run did; `to_json()` is the `--json` output, a contract for scripts."""

    store: str
    dry_run: bool
    plan: str = ""
    rebuild_reason: str | None = None
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    metadata_updated: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    documents_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    error: str | None = None
    busy: bool = False  # another process was writing; `error` says who

    @property
    def exit_code(self) -> int:
        """0 when everything went in, 1 when files were skipped, 2 when the store failed."""
        if self.error:
            return EXIT_STORE_FAILED
        return EXIT_SKIPPED if self.skipped else EXIT_OK

    def done(self) -> str:
        """What the run did, as a German counts line; a dry run's is its plan.

        Unlike `plan`, a file that was planned but then skipped (e.g. a broken PDF) is not
        counted as new or changed.
        """
        if self.dry_run:
            return self.plan
        return counts_line(
            new=len(self.new),
            changed=len(self.changed),
            renamed=len(self.renamed),
            removed=len(self.removed),
            unchanged=len(self.unchanged),
            redescribed=len(self.metadata_updated),
        )

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON-ready object."""
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "plan": self.plan,
            "rebuilt": self.rebuild_reason is not None,
            "rebuild_reason": self.rebuild_reason,
            "new": self.new,
            "changed": self.changed,
            "renamed": self.renamed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "metadata_updated": self.metadata_updated,
            "skipped": self.skipped,
            "chunks_embedded": self.chunks_embedded,
            "documents_total": self.documents_total,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "exit_code": self.exit_code,
        }


def chunk_sizes(settings: Settings) -> ChunkSizes:
    """The chunk sizes the settings ask for."""
    return ChunkSizes(settings.chunk_words, settings.chunk_max_words, settings.chunk_overlap_words)


def chunking_signature(settings: Settings) -> str:
    """Recorded in the store; a different value means the chunks must be rebuilt."""
    sizes = chunk_sizes(settings)
    return f"words {sizes.target}/{sizes.maximum}/{sizes.overlap}"


def run_ingest(
    settings: Settings,
    *,
    dry_run: bool = False,
    rebuild: bool = False,
    log: Log = lambda message: None,
    show_progress: bool = False,
    writer_locked: bool = False,
    embedder: Embedder | None = None,
) -> Report:
    """Bring the store in line with the corpus folders; never raises for bad documents.

    `writer_locked` says the caller already holds the embedded store's file lock (the app's
    guard); on a Chroma server every run takes the writer lease itself. `embedder` is the
    process's loaded embedder (the app's, a test session's); without it, one is loaded only if
    something needs embedding.
    """
    started = time.perf_counter()
    report = Report(store=settings.chroma_url or str(settings.store), dry_run=dry_run)
    options: dict[str, Any] = {
        "rebuild": rebuild,
        "log": log,
        "show_progress": show_progress,
        "embedder": embedder,
    }
    try:
        files, skipped = discover(
            settings.corpus, follow_outside_links=settings.follow_outside_links
        )
        report.skipped = [{"source": s.source, "reason": s.reason} for s in skipped]
        if dry_run or (writer_locked and not settings.chroma_url):  # dry runs wait for nobody
            _run(settings, files, report, **options)
        else:
            with writer_lock(settings) as lock:
                _run(settings, files, report, fence=lock.check, **options)
    except StoreBusy as exc:
        report.error, report.busy = str(exc), True
    except (StoreError, CorpusError) as exc:
        report.error = str(exc)
    except Exception as exc:  # the store itself failed: say so, keep what is stored
        report.error = _failure(settings, exc)
    report.seconds = time.perf_counter() - started
    return report


def _failure(settings: Settings, exc: Exception) -> str:
    import httpx

    if settings.chroma_url and isinstance(exc, httpx.TransportError):
        return unavailable_message(f"Chroma-Server {settings.chroma_url}", exc)
    return f"Fehler beim Schreiben des Speichers: {type(exc).__name__}: {exc}"


def _run(
    settings: Settings,
    files: list[SourceFile],
    report: Report,
    *,
    rebuild: bool,
    log: Log,
    show_progress: bool,
    embedder: Embedder | None,
    fence: Fence = lambda: None,
) -> None:
    client = open_client(settings)
    writer = StoreWriter(client, settings.embedder, chunking_signature(settings), fence)
    mismatch = writer.rebuild_reason()
    shared = bool(settings.chroma_url) and not report.dry_run
    if mismatch and shared and not rebuild and writer.records():
        raise StoreError(_shared_mismatch(settings, mismatch))
    reason = mismatch or ("Neuaufbau angefordert (--rebuild)" if rebuild else None)
    if reason:
        report.rebuild_reason = reason
        log(f"Index wird komplett neu aufgebaut: {reason}")
    if reason and not report.dry_run:
        writer.reset()
    if not report.dry_run and (removed := writer.collect_garbage()):
        log(f"Reste eines abgebrochenen Laufs entfernt: {removed} Chunks")
    identities = (
        corpus_identities(settings.corpus, create=not report.dry_run) if settings.chroma_url else {}
    )
    records = [] if reason else writer.records()
    if settings.chroma_url:
        records = writable_records(files, records, identities)
    plan = make_plan(files, records)
    report.plan = plan.summary()
    report.unchanged = [f.source for f, _ in plan.unchanged]
    log(f"Plan: {report.plan}")
    if report.dry_run:
        _fill_planned(report, plan)
    elif plan.has_work:
        _apply(
            settings, writer, plan, report, identities,
            log=log, show_progress=show_progress, embedder=embedder,
        )  # fmt: skip
    records = writer.records()
    report.documents_total = len(records)
    report.chunks_total = sum(r.chunks for r in records)


def _shared_mismatch(settings: Settings, reason: str) -> str:
    return (
        f"Der gemeinsame Index auf {settings.chroma_url} passt nicht zu den Einstellungen dieser "
        f"Instanz: {reason}. Im Servermodus wird er nicht von selbst neu aufgebaut – eine falsch "
        "eingestellte Instanz würde sonst den Index aller löschen. Einstellungen angleichen oder "
        "bewusst neu aufbauen: python -m ingest --rebuild --chroma-url …"
    )


def _fill_planned(report: Report, plan: Plan) -> None:
    report.new = [f.source for f in plan.new]
    report.changed = [f.source for f, _ in plan.changed]
    report.renamed = [{"from": r.source, "to": f.source} for f, r in plan.renamed]
    report.removed = [r.source for r in plan.removed]
    report.metadata_updated = [f.source for f, _ in plan.redescribed]


def _apply(
    settings: Settings,
    writer: StoreWriter,
    plan: Plan,
    report: Report,
    identities: Mapping[str, str],
    *,
    log: Log,
    show_progress: bool,
    embedder: Embedder | None,
) -> None:
    _embed_documents(
        settings, writer, plan, report, identities,
        log=log, show_progress=show_progress, embedder=embedder,
    )  # fmt: skip
    for file, old in plan.renamed:
        writer.commit(_record(file, old.pages, old.chunks, old.encoding, identities))
        writer.remove(old)
        report.renamed.append({"from": old.source, "to": file.source})
        log(f"umbenannt: {old.source} → {file.source}")
    for old in plan.removed:
        writer.remove(old)
        report.removed.append(old.source)
        log(f"entfernt: {old.source}")
    for file, old in plan.redescribed:
        # Only the record changes (title, URL … live there, not in the chunks). It gets a fresh
        # timestamp: readers notice manifest changes by (source, doc_sha, ingested_at), which is
        # why that is precise to the millisecond.
        writer.commit(_record(file, old.pages, old.chunks, old.encoding, identities))
        report.metadata_updated.append(file.source)
        if file.info != old.info:
            log(f"Angaben aktualisiert: {file.source} („{file.info.title}“)")


def _embed_documents(
    settings: Settings,
    writer: StoreWriter,
    plan: Plan,
    report: Report,
    identities: Mapping[str, str],
    *,
    log: Log,
    show_progress: bool,
    embedder: Embedder | None,
) -> None:
    if not plan.to_embed:
        return
    from tqdm import tqdm

    if embedder is None:
        from quellenchat.embedding import make_embedder

        log("Lade Einbettungsmodell …")
        embedder = make_embedder(settings)
    # Two bars: documents prepared, and chunks stored (its total grows as documents are read).
    # The chunk bar is made first: Gradio's tqdm tracking (the app's progress bar) follows the
    # most recent bar, which must be the one iterated.
    with tqdm(total=0, desc="Chunks", unit="Chunk", disable=not show_progress) as chunks:
        stage = _EmbeddingStage(settings, writer, embedder, plan, report, log)
        stage.identities = identities
        stage.chunk_bar = chunks
        for file in tqdm(plan.to_embed, desc="Dokumente", unit="Dok", disable=not show_progress):
            stage.add(file)
        stage.flush()


class _VectorFeed:
    """Hands out vectors embedded ahead of time, batch by batch, in chunk order."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.offset = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.vectors[self.offset : self.offset + len(texts)]
        self.offset += len(texts)
        return batch


class _EmbeddingStage:
    """Prepares documents and embeds small ones together, so batches stay full.

    Each document is still written and committed on its own, in the order of the plan.
    """

    def __init__(
        self,
        settings: Settings,
        writer: StoreWriter,
        embedder: Embedder,
        plan: Plan,
        report: Report,
        log: Log,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.embedder = embedder
        self.report = report
        self.log = log
        self.replaced = {f.source: r.doc_sha for f, r in plan.changed}
        self.group: list[tuple[SourceFile, PreparedDocument]] = []
        self.identities: Mapping[str, str] = {}
        self.chunk_bar: Any = None  # a tqdm bar over all chunks of the run, when shown

    def add(self, file: SourceFile) -> None:
        """Prepare one document; write it now if it is large, else once the group is full."""
        # Cleaning pulls in pypdf and wordfreq: loaded only when something must be embedded.
        from ingest.documents import prepare
        from ingest.loaders import DocumentError

        try:
            prepared = prepare(file, chunk_sizes(self.settings))
        except DocumentError as exc:
            kept = (
                " – die bisherige Fassung bleibt im Index" if file.source in self.replaced else ""
            )
            self.report.skipped.append({"source": file.source, "reason": str(exc) + kept})
            self.log(f"übersprungen: {exc}{kept}")
            return
        if prepared.encoding and prepared.encoding != "utf-8":
            self.log(f"{file.source}: kein UTF-8, gelesen als {prepared.encoding}")
        if self.chunk_bar is not None:
            self.chunk_bar.total += len(prepared.chunks)
            self.chunk_bar.refresh()
        if len(prepared.chunks) >= GROUP_CHUNKS:
            self.flush()
            self._write(file, prepared, self.embedder.embed_passages)
            return
        self.group.append((file, prepared))
        if sum(len(p.chunks) for _, p in self.group) >= GROUP_CHUNKS:
            self.flush()

    def flush(self) -> None:
        """Embed the waiting small documents in one call, then write each of them."""
        if not self.group:
            return
        texts = [embedding_text(c) for _, p in self.group for c in p.chunks]
        feed = _VectorFeed(self.embedder.embed_passages(texts))
        for file, prepared in self.group:
            self._write(file, prepared, feed)
        self.group = []

    def _write(self, file: SourceFile, prepared: PreparedDocument, embed: EmbedFn) -> None:
        record = _record(
            file, len(prepared.units), len(prepared.chunks), prepared.encoding, self.identities
        )
        replaces = self.replaced.get(file.source)
        total = len(prepared.chunks)
        stored = 0

        def progress(count: int) -> None:
            nonlocal stored
            stored += count
            if self.chunk_bar is not None:
                self.chunk_bar.update(count)
            if stored < total:  # only documents written in several batches say how far they are
                self.log(f"{file.source}: {stored}/{total} Chunks gespeichert")

        self.writer.write_document(
            record, prepared.units, prepared.chunks, embed, replaces, progress=progress
        )
        self.report.chunks_embedded += len(prepared.chunks)
        (self.report.changed if replaces else self.report.new).append(file.source)
        self.log(
            f"eingelesen: {file.source} ({len(prepared.units)} Seiten/Abschnitte, "
            f"{len(prepared.chunks)} Chunks)"
        )


def _record(
    file: SourceFile,
    pages: int,
    chunks: int,
    encoding: str | None,
    identities: Mapping[str, str],
) -> SourceRecord:
    return SourceRecord(
        source=file.source,
        doc_sha=file.sha256,
        info=file.info,
        size=file.size,
        pages=pages,
        chunks=chunks,
        ingested_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        corpus=file.corpus.as_posix(),
        encoding=encoding,
        corpus_id=identities.get(file.corpus.as_posix(), ""),
    )
