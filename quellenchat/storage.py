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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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


class StoreUnavailable(StoreError):
    """The store did not answer (server down, frozen, or failing); retrying later may help."""


def open_client(settings: Settings) -> ClientAPI:
    """Embedded Chroma under `settings.store`, or a Chroma server when `chroma_url` is set."""
    if settings.chroma_url:
        return _http_client(settings, settings.chroma_url)
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        settings.store.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(settings.store),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
    except Exception as exc:
        raise StoreError(f"Speicher {settings.store} lässt sich nicht öffnen: {exc}") from exc


def _http_client(settings: Settings, address: str) -> ClientAPI:
    import chromadb
    import httpx
    from chromadb.config import Settings as ChromaSettings

    url = urlparse(address)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise StoreError(
            f"QUELLENCHAT_CHROMA_URL „{address}“ ist keine gültige Adresse "
            "(erwartet z. B. http://127.0.0.1:8000)."
        )
    port = url.port or (443 if url.scheme == "https" else 8000)
    where = f"Chroma-Server {address}"
    timeout = httpx.Timeout(settings.chroma_timeout)
    # Chroma's client waits forever (timeout=None) and checks the server while it is built:
    # ask for a heartbeat with a deadline first, so a frozen server cannot hang us here.
    with translate_errors(where, settings.chroma_timeout):
        base = f"{url.scheme}://{url.hostname}:{port}"
        httpx.get(f"{base}/api/v2/heartbeat", timeout=timeout).raise_for_status()
        client = chromadb.HttpClient(
            host=url.hostname,
            port=port,
            ssl=url.scheme == "https",
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = timeout
    return client


def describe(client: ClientAPI) -> str:
    """Where a client's store is, for messages: the server's address or the embedded folder."""
    chroma = client.get_settings()
    if "fastapi" not in chroma.chroma_api_impl.lower():
        return str(chroma.persist_directory)
    scheme = "https" if chroma.chroma_server_ssl_enabled else "http"
    return f"Chroma-Server {scheme}://{chroma.chroma_server_host}:{chroma.chroma_server_http_port}"


@contextmanager
def translate_errors(where: str, timeout: float | None = None) -> Iterator[None]:
    """Turn whatever Chroma or its HTTP client raises into a German `StoreUnavailable`.

    Wrap only calls into Chroma: any exception from there means the store failed us.
    """
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        raise StoreUnavailable(unavailable_message(where, exc, timeout)) from exc


def unavailable_message(where: str, exc: BaseException, timeout: float | None = None) -> str:
    """The German message for a store that failed with `exc`."""
    import httpx

    again = "bitte gleich erneut versuchen."
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        limit = f" innerhalb von {timeout:g} s" if timeout else ""
        return f"Der Quellenindex ({where}) antwortet nicht{limit} – {again}"
    if isinstance(exc, httpx.TransportError | ConnectionError) or "Could not connect" in str(exc):
        return f"Der Quellenindex ({where}) ist nicht erreichbar – {again}"
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return f"Der Quellenindex ({where}) meldet einen Fehler: {detail} – {again}"


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
    # Server mode: the identity of that corpus folder (`ingest.ownership`); only writers
    # reading the same folder may withdraw the record.
    corpus_id: str = ""

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
        if self.corpus_id:
            meta["corpus_id"] = self.corpus_id
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
            corpus_id=str(meta.get("corpus_id", "")),
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
    """An existing collection, never Chroma's default embedding function; None when missing.

    Raises:
        StoreUnavailable: The store failed; a missing collection must not hide an outage.
    """
    from chromadb.errors import NotFoundError

    with translate_errors(describe(client)):
        try:
            return client.get_collection(name, embedding_function=None)
        except NotFoundError:
            return None
        except ValueError as exc:  # older chromadb said "does not exist" with a ValueError
            if "does not exist" in str(exc):
                return None
            raise


def check_embedder(client: ClientAPI, embedder_name: str) -> None:
    """Refuse to read a store whose chunks another embedding model made (vectors would not match).

    Raises:
        StoreError: The chunks were embedded with a different model.
    """
    chunks = get_collection(client, CHUNKS)
    built_with = (chunks.metadata or {}).get("embedder") if chunks is not None else None
    if built_with is not None and built_with != embedder_name:
        raise StoreError(
            f"Der Index ({describe(client)}) wurde mit dem Einbettungsmodell {built_with} "
            f"gebaut, diese Instanz nutzt {embedder_name} (QUELLENCHAT_EMBEDDER) – "
            "Einstellungen angleichen oder den Index neu aufbauen (python -m ingest --rebuild)."
        )


def read_sources(client: ClientAPI) -> list[SourceRecord]:
    """All committed manifest records, sorted by source."""
    sources = get_collection(client, SOURCES)
    if sources is None:
        return []
    with translate_errors(describe(client)):
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
    with translate_errors(describe(client)):
        result = pages.get(ids=[page_id(doc_sha, unit)], include=["documents"])
    documents = result["documents"] or []
    return documents[0] if documents else None
