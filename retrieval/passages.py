"""What search returns: passages with everything a citation needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quellenchat.storage import SourceRecord
from quellenchat.types import Chunk

Span = tuple[int, int]


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its source's metadata and the sentences that best answer the query."""

    id: str
    source: str
    title: str
    text: str
    score: float  # the fused ranking score (higher is better)
    similarity: float  # cosine between query and passage embeddings: absolute, for refusal
    doc_sha: str
    unit: int
    start: int
    end: int
    page: int | None = None
    page_label: str | None = None
    section: str | None = None
    url: str | None = None
    year: int | None = None
    kind: str | None = None
    publisher: str | None = None
    # Key sentences, as spans relative to `text`, best first.
    highlights: tuple[Span, ...] = field(default=())
    # Share of the question's terms (idf-weighted) that occur in the passage: evidence for refusal.
    coverage: float = 0.0
    # What of `score` is the bonus for a section heading the question names (`retrieval.search`).
    section_bonus: float = 0.0

    @classmethod
    def build(cls, chunk: Chunk, record: SourceRecord, score: float, similarity: float) -> Passage:
        """Combine a stored chunk with its manifest record."""
        info = record.info
        return cls(
            id=chunk.id,
            source=record.source,
            title=info.title,
            text=chunk.text,
            score=score,
            similarity=similarity,
            doc_sha=chunk.doc_sha,
            unit=chunk.unit,
            start=chunk.start,
            end=chunk.end,
            page=chunk.page,
            page_label=chunk.page_label,
            section=chunk.section,
            url=page_url(info.url, chunk.page),
            year=info.year,
            kind=info.kind,
            publisher=info.publisher,
        )

    @property
    def key_sentences(self) -> list[str]:
        """The highlighted sentences' text, best first."""
        return [self.text[a:b] for a, b in self.highlights]

    def to_json(self) -> dict[str, Any]:
        """The passage as the JSON object of the CLI and API contract."""
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "page_label": self.page_label,
            "section": self.section,
            "text": self.text,
            "score": round(self.score, 6),
            "similarity": round(self.similarity, 6),
            "url": self.url,
            "year": self.year,
            "publisher": self.publisher,
            "span": [self.start, self.end],
            "highlights": [list(h) for h in self.highlights],
            "coverage": round(self.coverage, 4),
        }


def page_url(url: str | None, page: int | None) -> str | None:
    """The source's link, opening the PDF at `page` where there is one."""
    if not url:
        return None
    if page is None or "#" in url:
        return url
    return f"{url}#page={page}"
