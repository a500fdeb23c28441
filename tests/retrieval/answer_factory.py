"""Hand-built passages, citations and answers for tests of pure presentation logic."""

from __future__ import annotations

from typing import Any

from retrieval.answers import Answer, Citation
from retrieval.passages import Passage


def make_passage(text: str, **fields: Any) -> Passage:
    values: dict[str, Any] = {
        "id": "p1",
        "source": "literature/bericht.pdf",
        "title": "KI im Mittelstand",
        "text": text,
        "score": 0.9,
        "similarity": 0.85,
        "doc_sha": "a" * 64,
        "unit": 2,
        "start": 0,
        "end": len(text),
        "page": 3,
        "url": "https://example.org/bericht.pdf#page=3",
        "year": 2021,
    }
    values.update(fields)
    return Passage(**values)


def make_citation(passage: Passage, quote: str, n: int = 1, verified: bool = True) -> Citation:
    start = passage.text.find(quote)
    span = (start, start + len(quote)) if start >= 0 else None
    return Citation(n=n, passage=passage, quote=quote, verified=verified, quote_span=span)


def make_answer(question: str, citations: tuple[Citation, ...], **fields: Any) -> Answer:
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    values: dict[str, Any] = {
        "question": question,
        "answer": text,
        "refused": False,
        "citations": citations,
        "passages": tuple(c.passage for c in citations),
        "backend": "extractive",
    }
    values.update(fields)
    return Answer(**values)
