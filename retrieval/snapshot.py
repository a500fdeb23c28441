"""A read-only view of the store's committed content, loaded at start-up and on change.

Chroma is the single source of truth: the lexical index and the per-sentence data are derived
from the chunks the store holds, once per manifest version, never per query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quellenchat.storage import (
    CHUNKS,
    SourceRecord,
    describe,
    get_collection,
    read_sources,
    translate_errors,
    where_in,
)
from quellenchat.types import Chunk, strip_urls
from retrieval.lexical import LexicalIndex, analyze

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

PAGE_SIZE = 2000


@dataclass(frozen=True)
class StoreSnapshot:
    """The committed documents and their chunks, with the lexical index built over them."""

    records: dict[str, SourceRecord]  # by doc_sha
    chunks: dict[str, Chunk]  # by chunk id
    lexical: LexicalIndex
    version: tuple[tuple[str, ...], ...]  # identifies the manifest it was built from
    # Analysed terms of every sentence of every chunk, for choosing key sentences per query.
    sentence_terms: dict[str, list[frozenset[str]]]

    @property
    def live(self) -> list[str]:
        """The doc_shas readers may see."""
        return sorted(self.records)

    def terms(self, chunk_id: str) -> frozenset[str]:
        """All analysed terms of a chunk."""
        return frozenset().union(*self.sentence_terms[chunk_id])

    def allowed_shas(self, filters: Mapping[str, Any] | None) -> list[str]:
        """The documents whose manifest fields equal every filter value (source, kind, year …)."""
        if not filters:
            return self.live
        return sorted(
            sha
            for sha, record in self.records.items()
            if all(_field(record, name) == value for name, value in filters.items())
        )


def _field(record: SourceRecord, name: str) -> object:
    if name in ("source", "doc_sha"):
        return getattr(record, name)
    return getattr(record.info, name, None)


def manifest_version(records: list[SourceRecord]) -> tuple[tuple[str, ...], ...]:
    """What changes whenever a document is added, changed, removed or re-described."""
    return tuple((r.source, r.doc_sha, r.ingested_at, repr(r.info)) for r in records)


def load_snapshot(client: ClientAPI) -> StoreSnapshot:
    """Read the manifest and every committed chunk; build the lexical index once."""
    records = read_sources(client)
    by_sha = {r.doc_sha: r for r in records}
    chunks: dict[str, Chunk] = {}
    collection = get_collection(client, CHUNKS)
    if collection is not None and by_sha:
        offset = 0
        while True:
            with translate_errors(describe(client)):
                page = collection.get(
                    where=where_in("doc_sha", by_sha),
                    include=["documents", "metadatas"],
                    limit=PAGE_SIZE,
                    offset=offset,
                )
            for cid, text, meta in zip(
                page["ids"], page["documents"] or [], page["metadatas"] or [], strict=True
            ):
                chunks[cid] = Chunk.from_metadata(text, meta)
            if len(page["ids"]) < PAGE_SIZE:
                break
            offset += PAGE_SIZE
    ids = sorted(chunks)
    lexical = LexicalIndex(ids, [_lexical_text(chunks[i]) for i in ids])
    sentence_terms = {cid: _sentence_terms(chunk) for cid, chunk in chunks.items()}
    return StoreSnapshot(by_sha, chunks, lexical, manifest_version(records), sentence_terms)


def _sentence_terms(chunk: Chunk) -> list[frozenset[str]]:
    spans = chunk.sentences or ((0, len(chunk.text)),)
    return [frozenset(analyze(chunk.text[a:b])) for a, b in spans]


def _lexical_text(chunk: Chunk) -> str:
    text = strip_urls(chunk.text)
    return f"{chunk.section}\n{text}" if chunk.section else text
