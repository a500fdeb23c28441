"""What the answer step returns: an answer with verified citations, and its streaming events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from retrieval.passages import Passage

REFUSAL = "Dazu enthalten die Quellen keine Aussage."
REFUSAL_EN = "The sources contain no statement on this."


@dataclass(frozen=True)
class Citation:
    """A cited passage with its quote; `verified` only when the quote occurs in the stored page."""

    n: int
    passage: Passage
    quote: str
    verified: bool
    # Where the quote lies inside `passage.text` (for highlighting), when it does.
    quote_span: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The citation object of the CLI and API contract."""
        p = self.passage
        return {
            "n": self.n,
            "passage_id": p.id,
            "source": p.source,
            "title": p.title,
            "page": p.page,
            "page_label": p.page_label,
            "section": p.section,
            "quote": self.quote,
            "url": p.url,
            "year": p.year,
            "publisher": p.publisher,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Answer:
    """The final answer; `citations` are numbered as cited in `answer`."""

    question: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    backend: str
    # The question actually searched (a follow-up condensed with the history).
    standalone_question: str = ""
    # Answer sentences that kept no valid citation: shown as unsupported, never silently kept.
    unsupported: tuple[str, ...] = ()
    # A user-facing German note, e.g. that the LLM was unreachable and extractive was used.
    notice: str | None = None
    # When refused: the nearest passages, shown as "möglicherweise verwandt", never as support.
    related: tuple[Passage, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The answer object of `python -m retrieval ask --json` and the app's `ask` API."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.answer,
            "refused": self.refused,
            "backend": self.backend,
            "notice": self.notice,
            "unsupported": list(self.unsupported),
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "related": [p.to_json() for p in self.related],
        }


@dataclass(frozen=True)
class Evidence:
    """Streamed first, before any generation: what the answer will be built from."""

    question: str
    standalone_question: str
    passages: tuple[Passage, ...]
    # The quotes (key sentences) per passage, numbered as the model sees them.
    quotes: tuple[Citation, ...]
    refused: bool
    # Per passage id: the rank votes of the search hits from its section (list questions).
    section_votes: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Token:
    """A piece of generated answer text."""

    text: str


@dataclass(frozen=True)
class Progress:
    """What the answer is waiting for, streamed before the evidence or the first token.

    `condensing`: a follow-up is being turned into a standalone question (before the evidence);
    `queued`: this request waits for the local model, `position` in line (1 = next);
    `generating`: it is this request's turn, the model reads the evidence (tokens follow).
    """

    stage: Literal["condensing", "queued", "generating"]
    position: int = 0


StreamEvent = Evidence | Progress | Token | Answer
