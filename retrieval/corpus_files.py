"""Which corpus PDFs the app may serve: only ingested ones, found by checksum, never by path."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path

from quellenchat.checksums import file_sha256
from quellenchat.storage import SourceRecord
from retrieval.passages import Passage

PDF_ROUTE = "quellen"
_SHA = re.compile(r"[0-9a-f]{64}")


def pdf_href(passage: Passage) -> str | None:
    """The app's link to a corpus PDF, opened at the passage's page; None for other documents."""
    if not passage.source.lower().endswith(".pdf"):
        return None
    page = f"#page={passage.page}" if passage.page is not None else ""
    # Relative, so the link also works when the app sits below a reverse proxy's path.
    return f"{PDF_ROUTE}/{passage.doc_sha}.pdf{page}"


class CorpusFiles:
    """Maps a document checksum to its PDF file inside one of the corpus folders."""

    def __init__(self, corpora: Sequence[Path]) -> None:
        self.corpora = [c.resolve() for c in corpora]
        self._checked: dict[tuple[Path, int, int], str] = {}
        self._lock = threading.Lock()

    def pdf_path(self, records: Sequence[SourceRecord], doc_sha: str) -> Path | None:
        """The file of an ingested PDF whose bytes still have `doc_sha`; None otherwise."""
        if not _SHA.fullmatch(doc_sha):
            return None
        record = next((r for r in records if r.doc_sha == doc_sha), None)
        if record is None or not record.source.lower().endswith(".pdf"):
            return None
        corpus = Path(record.corpus).resolve()
        if corpus not in self.corpora:
            return None
        path = (corpus / record.source).resolve()
        if not path.is_relative_to(corpus) or not path.is_file():
            return None
        return path if self._sha256(path) == doc_sha else None

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._checked:
                return self._checked[key]
        digest = file_sha256(path)
        with self._lock:
            self._checked[key] = digest
        return self._checked[key]
