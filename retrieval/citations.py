"""Citation post-processing: quotes, their verification, and mapping the model's `[n]` marks.

Everything here is pure string logic, so it is tested on fixed strings. The rule it enforces:
a quote is shown as verified only when it occurs in the stored page text, and an answer
sentence that keeps no valid citation is marked, never silently kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.passages import Passage

UNSUPPORTED_MARK = " [ohne Beleg]"

# `[1]`, `[1, 2]`, `[1,2; 3]`, `[Quelle 1]`, `[Passage 2]`: what small models write.
_CITATION_RE = re.compile(r"\[\s*(?:(?:Quelle|Passage|Source)\s*)?(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u00ad": None})
_SPACE_RE = re.compile(r"\s+")
_BULLETS = "•·▪‣◦*-–— \t\n"
_HYPHEN_SPACE_RE = re.compile(r"\s*-\s*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKS_AFTER_STOP_RE = re.compile(r"([.!?])((?:[ \t]*\[[^\]\n]{1,24}\])+)")


def normalize_for_match(text: str) -> str:
    """Whitespace collapsed, hyphen variants unified and unspaced, soft hyphens dropped."""
    text = text.translate(_HYPHENS)
    text = _SPACE_RE.sub(" ", text).strip()
    return _HYPHEN_SPACE_RE.sub("-", text)


def quote_occurs(quote: str, page_text: str | None) -> bool:
    """Whether the quote occurs verbatim in the page text (after normalisation)."""
    if not quote.strip() or page_text is None:
        return False
    return normalize_for_match(quote) in normalize_for_match(page_text)


def passage_quote(passage: Passage) -> tuple[str, tuple[int, int]]:
    """The passage's key sentence(s) as one contiguous quote, with its span in the passage.

    Two highlighted sentences are joined only when they are neighbours, so the quote is
    always a contiguous piece of the passage (and thus of its page).
    """
    spans = sorted(passage.highlights[:2]) or [(0, len(passage.text))]
    start, end = spans[0]
    if len(spans) == 2 and not passage.text[end : spans[1][0]].strip():
        end = spans[1][1]
    elif len(spans) == 2 and passage.highlights[0] != spans[0]:
        start, end = passage.highlights[0]
    return trim_span(passage.text, start, end)


def best_sentence(passage: Passage) -> tuple[str, tuple[int, int]]:
    """The passage's single best key sentence, with its span in the passage."""
    start, end = passage.highlights[0] if passage.highlights else (0, len(passage.text))
    return trim_span(passage.text, start, end)


def trim_span(text: str, start: int, end: int) -> tuple[str, tuple[int, int]]:
    """A span without surrounding whitespace and without a leading bullet mark."""
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip(_BULLETS))
    trail = len(piece) - len(piece.rstrip())
    start, end = start + lead, max(start + lead, end - trail)
    return text[start:end], (start, end)


@dataclass(frozen=True)
class MappedAnswer:
    """The model's answer after citation mapping."""

    text: str
    cited: tuple[int, ...]  # valid passage numbers, in order of first citation
    unsupported: tuple[str, ...]


def split_sentences(text: str) -> list[str]:
    """Answer text split into sentences; citation marks stay with the sentence they follow.

    Marks written after the full stop ("… noch. [1] Sie …") move before it ("… noch [1].").
    """
    text = _MARKS_AFTER_STOP_RE.sub(lambda m: f" {m.group(2).strip()}{m.group(1)}", text)
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s and s.strip()]


def map_citations(text: str, count: int, *, exempt: Sequence[str] = ()) -> MappedAnswer:
    """Keep `[n]` marks with 1 ≤ n ≤ count, drop the others, mark sentences left without one.

    Sentences equal to an `exempt` text (the refusal) need no citation.
    """
    cited: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= count))
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in valid)

    sentences = []
    unsupported = []
    for sentence in split_sentences(text):
        has_mark = bool(_CITATION_RE.search(sentence))
        mapped = _CITATION_RE.sub(keep_valid, sentence)
        mapped = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", mapped)).strip()
        if not mapped:
            continue
        valid_here = has_mark and bool(re.search(r"\[\d+\]", mapped))
        if not valid_here and mapped not in exempt and _has_words(mapped):
            unsupported.append(mapped)
            mapped += UNSUPPORTED_MARK
        sentences.append(mapped)
    return MappedAnswer(" ".join(sentences), tuple(cited), tuple(unsupported))


def _has_words(sentence: str) -> bool:
    return len(re.findall(r"\w{2,}", sentence)) >= 3
