"""Core types shared by ingestion and retrieval.

Framework types (Chroma results, LangChain documents) are converted into these at the edges.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Page:
    """One unit of a document's cleaned text: a PDF page or, for plain text, a section.

    Quotes are verified against `text`, and every chunk is a substring of it.
    """

    index: int  # 0-based position of the unit inside its document
    text: str
    number: int | None = None  # 1-based physical PDF page; None for plain text
    label: str | None = None  # printed page label where it differs from `number`
    section: str | None = None  # section heading that stands in for the page (plain text)


@dataclass(frozen=True)
class DocumentInfo:
    """What a citation shows about a document; comes from the corpus metadata or manifest."""

    title: str
    kind: str = "Dokument"
    year: int | None = None
    url: str | None = None
    publisher: str | None = None

    def to_metadata(self) -> dict[str, MetadataValue]:
        """Flat metadata for Chroma (None values are left out)."""
        return _drop_none(
            {
                "title": self.title,
                "kind": self.kind,
                "year": self.year,
                "url": self.url,
                "publisher": self.publisher,
            }
        )

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> DocumentInfo:
        """Inverse of `to_metadata`."""
        return cls(
            title=str(meta["title"]),
            kind=str(meta.get("kind", "Dokument")),
            year=_opt_int(meta.get("year")),
            url=_opt_str(meta.get("url")),
            publisher=_opt_str(meta.get("publisher")),
        )


def letters_key(text: str) -> str:
    """NFKC, lower case, letters and digits only: the comparison key for titles and gold phrases."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


_URL_TOKEN = re.compile(r"(?:https?://|www\.)\S+")


def strip_urls(text: str) -> str:
    """Text without its URLs: what the embedder and the lexical index read (URLs are noise)."""
    return _URL_TOKEN.sub(" ", text)


def chunk_id(doc_sha: str, unit: int, start: int, end: int) -> str:
    """Stable chunk id from the document's content hash and the chunk's place."""
    return hashlib.sha1(f"{doc_sha}|{unit}|{start}|{end}".encode()).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: an exact substring `page_text[start:end]` of its unit."""

    doc_sha: str
    unit: int
    start: int
    end: int
    text: str
    page: int | None = None
    page_label: str | None = None
    section: str | None = None
    # Sentence spans relative to `text`, computed once at ingest for highlighting and quoting.
    sentences: tuple[tuple[int, int], ...] = field(default=())

    @property
    def id(self) -> str:
        """The Chroma id: re-ingesting the same content overwrites instead of duplicating."""
        return chunk_id(self.doc_sha, self.unit, self.start, self.end)

    def to_metadata(self) -> dict[str, MetadataValue]:
        """Flat metadata for Chroma; nothing else knows this layout."""
        return _drop_none(
            {
                "doc_sha": self.doc_sha,
                "unit": self.unit,
                "start": self.start,
                "end": self.end,
                "page": self.page,
                "page_label": self.page_label,
                "section": self.section,
                "sentences": ",".join(f"{a}-{b}" for a, b in self.sentences),
            }
        )

    @classmethod
    def from_metadata(cls, text: str, meta: Mapping[str, Any]) -> Chunk:
        """Rebuild a chunk from Chroma's document text and flat metadata."""
        raw = str(meta.get("sentences") or "")
        sentences = tuple(
            (int(a), int(b)) for a, b in (part.split("-") for part in raw.split(",") if part)
        )
        return cls(
            doc_sha=str(meta["doc_sha"]),
            unit=int(meta["unit"]),
            start=int(meta["start"]),
            end=int(meta["end"]),
            text=text,
            page=_opt_int(meta.get("page")),
            page_label=_opt_str(meta.get("page_label")),
            section=_opt_str(meta.get("section")),
            sentences=sentences,
        )


def _drop_none(values: dict[str, MetadataValue | None]) -> dict[str, MetadataValue]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
