"""What the app's tabs and routes may ask of retrieval and ingest: the one door into both.

The UI calls these methods only; it never reaches into the answerer, the searcher or the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from ingest.run import Log, Report
from ingest.upload import save_upload, upload_dir
from quellenchat.storage import SourceRecord, read_sources
from quellenchat_app.wiring import Components
from retrieval.answering import Answerer, History
from retrieval.answers import Answer, StreamEvent
from retrieval.corpus_files import CorpusFiles
from retrieval.export import ExportFolder
from retrieval.feedback import FeedbackEntry, FeedbackStore
from retrieval.health import Health, check_health

log = logging.getLogger("quellenchat.app")

# What the embedder embeds once at start, so the first question finds it loaded.
WARM_UP_QUERY = "Künstliche Intelligenz"


class ChatService:
    """Answers, sources, the store's ingest, feedback and exports, over the wired components."""

    def __init__(self, parts: Components) -> None:
        self.settings = parts.settings
        self._parts = parts
        self.feedback = FeedbackStore(
            self.settings.feedback_file, self.settings.feedback_retention_days
        )
        self.exports = ExportFolder(
            self.settings.export_dir.absolute(), self.settings.export_retention_minutes * 60
        )
        self._files = CorpusFiles(self.settings.corpus)

    @property
    def answerer(self) -> Answerer:
        """The answerer (for tests and benchmarks that compare the app with it)."""
        return self._parts.answerer

    # -- answers ----------------------------------------------------------------------------

    def stream(self, question: str, history: History = ()) -> Iterator[StreamEvent]:
        """The answer's events: progress, evidence, tokens, then the `Answer`."""
        return self._parts.answerer.stream(question, history)

    def ask(self, question: str, history: History = ()) -> Answer:
        """The whole answer at once."""
        return self._parts.answerer.ask(question, history)

    def snapshot(self) -> None:
        """Load the store's content now (the lexical index, too); raises when it does not fit.

        Raises:
            StoreError: the store is unreachable or was built with another embedder.
        """
        self._parts.searcher.snapshot()

    def warm_up(self) -> None:
        """Load the embedder, then the local model with its primed prefix (blocking).

        One after the other: on two cores, loading both at once only slows both.
        """
        try:
            self._parts.embedder.embed_query(WARM_UP_QUERY)
        except Exception as exc:  # the first question reports it to the user
            log.warning("Einbettungsmodell nicht vorgeladen: %s", exc)
        self._parts.answerer.warm_up()

    def health(self) -> Health:
        """What `/healthz` reports."""
        return check_health(self._parts.answerer)

    # -- sources ----------------------------------------------------------------------------

    def sources(self) -> list[SourceRecord]:
        """The documents in the store.

        Raises:
            StoreError: the store is unreachable.
        """
        return read_sources(self._parts.client)

    def pdf_path(self, doc_sha: str) -> Path | None:
        """The corpus PDF stored as `doc_sha`; None for anything else."""
        return self._files.pdf_path(self.sources(), doc_sha)

    # -- ingest -----------------------------------------------------------------------------

    def save_upload(self, file: Path, name: str, *, replace: bool) -> Path:
        """Save an uploaded PDF into the corpus's upload folder.

        Raises:
            UploadError: not a PDF, too large, or a file of that name exists (German).
        """
        return save_upload(
            file, name, upload_dir(self.settings), self.settings.upload_max_mb, replace=replace
        )

    def plan(self) -> Report:
        """A dry run of the ingest: what an update would do."""
        return self._parts.ingest.run(dry_run=True)

    def update(self, *, log: Log, show_progress: bool = False) -> Report:
        """The incremental ingest, in this process, under the store's writer lock."""
        return self._parts.ingest.run(dry_run=False, log=log, show_progress=show_progress)

    def hold_store(self) -> bool:
        """Become the store's writer for the app's lifetime (or as soon as it is free)."""
        return self._parts.ingest.hold()

    @property
    def store_held(self) -> bool:
        """Whether nothing keeps this app from writing the store."""
        return self._parts.ingest.held

    # -- feedback and exports ---------------------------------------------------------------

    def record_feedback(self, entry: FeedbackEntry) -> None:
        """Store one feedback entry. Raises `FeedbackError` (German) when it cannot be stored."""
        self.feedback.append(entry)

    def prune_feedback(self) -> None:
        """Delete feedback older than its retention."""
        self.feedback.prune()

    def export(self, turns: Sequence[Answer], now: datetime) -> Path:
        """Write the conversation as Markdown into the export folder."""
        return self.exports.write(turns, now)

    def close(self) -> None:
        """Release the store for other writers; delete this app's exports."""
        self.exports.clear()
        self._parts.ingest.release()
