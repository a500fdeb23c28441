"""Writing the store. Every step is ordered so that a kill at any moment leaves a usable store.

The commit point of a document is its manifest record in the sources collection. Chunks and pages
are written before it and old versions are deleted after it; readers count only chunks whose
`doc_sha` a manifest record names. A pending marker, written first, lets the next run delete
whatever a killed run left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from quellenchat.storage import (
    CHUNKS,
    PAGES,
    PENDING_PREFIX,
    SCHEMA_VERSION,
    SOURCES,
    SourceRecord,
    collection_metadata,
    get_collection,
    no_vectors,
    page_id,
    page_metadata,
    read_sources,
)
from quellenchat.types import Chunk, Page, strip_urls

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# Chunks per embed-and-upsert step: small enough that progress moves and memory stays flat.
WRITE_BATCH = 64
T = TypeVar("T")
EmbedFn = Callable[[Sequence[str]], np.ndarray]
Fence = Callable[[], None]


def embedding_text(chunk: Chunk) -> str:
    """What the embedder reads: the section heading for context, no URLs (noise to the model)."""
    text = strip_urls(chunk.text)
    return f"{chunk.section}: {text}" if chunk.section else text


class StoreWriter:
    """The only code that writes the store.

    `fence` runs before every write and raises when this writer has lost its right to write
    (its lease in a Chroma server ran out); what it interrupts is cleaned up like a crash.
    """

    def __init__(
        self, client: ClientAPI, embedder_name: str, chunking: str, fence: Fence = lambda: None
    ) -> None:
        self.client = client
        self.embedder_name = embedder_name
        self.chunking = chunking
        self.fence = fence

    def rebuild_reason(self) -> str | None:
        """Why the existing store cannot be reused (German), or None when it fits."""
        chunks = get_collection(self.client, CHUNKS)
        if chunks is None:
            return None
        meta = chunks.metadata or {}
        if meta.get("schema_version") != SCHEMA_VERSION:
            return (
                f"Speicherformat {meta.get('schema_version')} veraltet (aktuell {SCHEMA_VERSION})"
            )
        if meta.get("embedder") != self.embedder_name:
            return f"Einbettungsmodell geändert ({meta.get('embedder')} → {self.embedder_name})"
        if meta.get("chunking") != self.chunking:
            return f"Chunk-Einstellungen geändert ({meta.get('chunking')} → {self.chunking})"
        return None

    def reset(self) -> None:
        """Delete every collection of the store."""
        for name in (CHUNKS, PAGES, SOURCES):
            if get_collection(self.client, name) is not None:
                self.fence()
                self.client.delete_collection(name)

    def records(self) -> list[SourceRecord]:
        """The committed manifest."""
        return read_sources(self.client)

    def _aux(self, name: str) -> Collection:
        return self.client.get_or_create_collection(
            name,
            embedding_function=None,
            metadata={"schema_version": SCHEMA_VERSION},
        )

    def _chunks(self, dim: int) -> Collection:
        return self.client.get_or_create_collection(
            CHUNKS,
            embedding_function=None,
            metadata=collection_metadata(self.embedder_name, dim, self.chunking),
            configuration={"hnsw": {"space": "cosine"}},
        )

    def collect_garbage(self) -> int:
        """Finish what killed runs left: delete chunks and pages no manifest record names."""
        sources = get_collection(self.client, SOURCES)
        if sources is None:
            return 0
        pending = sources.get(where={"pending": True}, include=["metadatas"])
        live = {r.doc_sha for r in self.records()}
        removed = 0
        for marker_id, meta in zip(pending["ids"], pending["metadatas"] or [], strict=True):
            for sha in (meta.get("doc_sha"), meta.get("replaces")):
                if isinstance(sha, str) and sha and sha not in live:
                    removed += self._delete_version(sha)
            self.fence()
            sources.delete(ids=[marker_id])
        return removed

    def write_document(
        self,
        record: SourceRecord,
        units: Sequence[Page],
        chunks: Sequence[Chunk],
        embed: EmbedFn,
        replaces: str | None = None,
        progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        """Store a document's pages and chunks, then commit it and drop the version it replaces."""
        sources = self._aux(SOURCES)
        marker = PENDING_PREFIX + record.doc_sha
        self.fence()
        sources.upsert(
            ids=[marker],
            documents=[record.source],
            embeddings=no_vectors(1),
            metadatas=[{"pending": True, "doc_sha": record.doc_sha, "replaces": replaces or ""}],
        )
        self._write_pages(record.doc_sha, units)
        for batch in _batches(chunks, WRITE_BATCH):
            vectors = embed([embedding_text(c) for c in batch])
            self.fence()
            self._chunks(vectors.shape[1]).upsert(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                embeddings=np.asarray(vectors, dtype=np.float32),
                metadatas=[c.to_metadata() for c in batch],
            )
            progress(len(batch))
        self.commit(record)
        if replaces and replaces != record.doc_sha:
            self._drop_if_unreferenced(replaces)
        self.fence()
        sources.delete(ids=[marker])

    def commit(self, record: SourceRecord) -> None:
        """Write (or overwrite) a manifest record: from now on readers see this version."""
        self.fence()
        self._aux(SOURCES).upsert(
            ids=[record.id],
            documents=[record.source],
            embeddings=no_vectors(1),
            metadatas=[record.to_metadata()],
        )

    def remove(self, record: SourceRecord) -> None:
        """Withdraw a source: its record first, then its chunks and pages unless referenced."""
        sources = self._aux(SOURCES)
        marker = PENDING_PREFIX + record.doc_sha
        self.fence()
        sources.upsert(
            ids=[marker],
            documents=[record.source],
            embeddings=no_vectors(1),
            metadatas=[{"pending": True, "doc_sha": record.doc_sha, "replaces": ""}],
        )
        self.fence()
        sources.delete(ids=[record.id])
        self._drop_if_unreferenced(record.doc_sha)
        self.fence()
        sources.delete(ids=[marker])

    def _drop_if_unreferenced(self, doc_sha: str) -> None:
        if all(r.doc_sha != doc_sha for r in self.records()):
            self._delete_version(doc_sha)

    def _delete_version(self, doc_sha: str) -> int:
        count = 0
        for name in (CHUNKS, PAGES):
            collection = get_collection(self.client, name)
            if collection is None:
                continue
            ids = collection.get(where={"doc_sha": doc_sha}, include=[])["ids"]
            for batch in _batches(ids, WRITE_BATCH * 4):
                self.fence()
                collection.delete(ids=list(batch))
            count += len(ids) if name == CHUNKS else 0
        return count

    def _write_pages(self, doc_sha: str, units: Sequence[Page]) -> None:
        pages = self._aux(PAGES)
        for batch in _batches(units, WRITE_BATCH):
            self.fence()
            pages.upsert(
                ids=[page_id(doc_sha, u.index) for u in batch],
                documents=[u.text for u in batch],
                embeddings=no_vectors(len(batch)),
                metadatas=[page_metadata(doc_sha, u) for u in batch],
            )


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
