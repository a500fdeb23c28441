"""The store's layout in Chroma, shared by the writer (ingest) and the readers (retrieval).

Three collections hold everything derived from the corpus, so a fresh store means a fresh ingest
and server mode needs nothing beside Chroma:

- chunks:  one record per chunk, with its embedding; id = `Chunk.id`.
- pages:   the cleaned text of every unit (PDF page or text section), for quote verification.
- sources: the manifest, one record per source file; it is the commit point of an ingest. Chunks
           and pages count only when a source record names their `doc_sha`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

import numpy as np

from quellenchat.types import DocumentInfo, MetadataValue, Page

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Where

    from quellenchat.settings import Settings

# Bump when the layout or the cleaning/chunking output changes: old stores are rebuilt.
SCHEMA_VERSION = 2
CHUNKS = "qc_chunks"
PAGES = "qc_pages"
SOURCES = "qc_sources"
# pages and sources carry no meaningful vector; Chroma still wants one per record.
NO_VECTOR = (0.0,)
PENDING_PREFIX = "pending:"


class StoreError(Exception):
    """The store cannot be opened or used; the message is German and meant for the user."""


def open_client(settings: Settings) -> ClientAPI:
    """Embedded Chroma under `settings.store`, or a Chroma server when `chroma_url` is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        settings.store.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.store), settings=chroma_settings)
    except Exception as exc:
        where = settings.chroma_url or str(settings.store)
        raise StoreError(f"Speicher {where} lässt sich nicht öffnen: {exc}") from exc


def no_vectors(count: int) -> np.ndarray:
    """Placeholder vectors for the pages and sources collections."""
    return np.zeros((count, len(NO_VECTOR)), dtype=np.float32)


def where_in(field: str, values: Iterable[str]) -> Where:
    """A Chroma filter: `field` is one of `values`."""
    return cast("Where", {field: {"$in": sorted(values)}})


def page_id(doc_sha: str, unit: int) -> str:
    """Id of a unit's text in the pages collection."""
    return f"{doc_sha}:{unit}"


def source_id(source: str) -> str:
    """Id of a source's manifest record."""
    return "src:" + hashlib.sha1(source.encode()).hexdigest()


@dataclass(frozen=True)
class SourceRecord:
    """The manifest entry of one ingested source file."""

    source: str  # path relative to its corpus folder, with forward slashes
    doc_sha: str  # sha256 of the file's bytes
    info: DocumentInfo
    size: int
    pages: int  # units: PDF pages, or sections of a text document
    chunks: int
    ingested_at: str  # ISO 8601, UTC
    corpus: str = ""  # the corpus folder it came from
    encoding: str | None = None

    @property
    def id(self) -> str:
        """The manifest record id."""
        return source_id(self.source)

    def to_metadata(self) -> dict[str, MetadataValue]:
        """Flat metadata for Chroma."""
        meta: dict[str, MetadataValue] = {
            "source": self.source,
            "doc_sha": self.doc_sha,
            "size": self.size,
            "pages": self.pages,
            "chunks": self.chunks,
            "ingested_at": self.ingested_at,
            "corpus": self.corpus,
            **self.info.to_metadata(),
        }
        if self.encoding:
            meta["encoding"] = self.encoding
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> SourceRecord:
        """Inverse of `to_metadata`."""
        return cls(
            source=str(meta["source"]),
            doc_sha=str(meta["doc_sha"]),
            info=DocumentInfo.from_metadata(meta),
            size=int(meta["size"]),
            pages=int(meta["pages"]),
            chunks=int(meta["chunks"]),
            ingested_at=str(meta["ingested_at"]),
            corpus=str(meta.get("corpus", "")),
            encoding=meta.get("encoding"),
        )


def page_metadata(doc_sha: str, page: Page) -> dict[str, MetadataValue]:
    """Flat metadata of a unit's text record."""
    meta: dict[str, MetadataValue] = {"doc_sha": doc_sha, "unit": page.index}
    if page.number is not None:
        meta["page"] = page.number
    if page.label:
        meta["page_label"] = page.label
    if page.section:
        meta["section"] = page.section
    return meta


def collection_metadata(embedder_name: str, dim: int, chunking: str) -> dict[str, MetadataValue]:
    """What a chunks collection records about how it was built; a mismatch forces a rebuild."""
    return {
        "schema_version": SCHEMA_VERSION,
        "embedder": embedder_name,
        "dim": dim,
        "chunking": chunking,
    }


def get_collection(client: ClientAPI, name: str) -> Collection | None:
    """An existing collection, never Chroma's default embedding function; None when missing."""
    try:
        return client.get_collection(name, embedding_function=None)
    except Exception:  # chromadb raises NotFoundError (ValueError in older versions)
        return None


def read_sources(client: ClientAPI) -> list[SourceRecord]:
    """All committed manifest records, sorted by source."""
    sources = get_collection(client, SOURCES)
    if sources is None:
        return []
    result = sources.get(include=["metadatas"])
    records = [
        SourceRecord.from_metadata(meta)
        for rid, meta in zip(result["ids"], result["metadatas"] or [], strict=True)
        if not rid.startswith(PENDING_PREFIX)
    ]
    return sorted(records, key=lambda r: r.source)


def read_page_text(client: ClientAPI, doc_sha: str, unit: int) -> str | None:
    """The stored cleaned text of one unit, or None."""
    pages = get_collection(client, PAGES)
    if pages is None:
        return None
    result = pages.get(ids=[page_id(doc_sha, unit)], include=["documents"])
    documents = result["documents"] or []
    return documents[0] if documents else None
