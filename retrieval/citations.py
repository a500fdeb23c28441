"""Citation post-processing: quotes, their verification, and mapping the model's `[n]` marks.

Everything here is pure string logic, so it is tested on fixed strings. The rule it enforces:
a quote is shown as verified only when it occurs in the stored page text, and an answer
sentence that keeps no valid citation is marked, never silently kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from quellenchat.sentences import ends_with_abbreviation
from retrieval.lexical import analyze
from retrieval.passages import Passage

UNSUPPORTED_MARK = " [nicht belegt]"
# A model's citation stays when the sentence shares this share of its terms with the source …
KEEP_OVERLAP = 0.3
# … and a sentence sharing this much with one source is attributed to it, mark or no mark,
# if it has enough terms to tell (a bare "15%." matches any source that mentions 15%).
ADOPT_OVERLAP = 0.75
ADOPT_MIN_TERMS = 3

# `[1]`, `[1, 2]`, `[1,2; 3]`, `[Quelle 1]`, `[Passage 2]`: what small models write.
CITATION_RE = re.compile(r"\[\s*(?:(?:Quelle|Passage|Source)\s*)?(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u00ad": None})
_SPACE_RE = re.compile(r"\s+")
_LINE_END = "\x00"
_BULLETS = "•·▪‣◦*-–— \t\n"
_HYPHEN_SPACE_RE = re.compile(r"\s*-\s*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKS_AFTER_STOP_RE = re.compile(r"([.!?])((?:[ \t]*\[[^\]\n]{1,24}\])+)")
# Lead-ins that state nothing ("Laut den Quellen:", "Im Einzelnen:"): the only sentences besides
# an exempt refusal that need no citation. Every word must be one of these, and it must end in ":".
CONNECTIVE_WORDS = frozenset(
    {
        *("laut", "den", "der", "dem", "quellen", "quelle", "zufolge", "nach", "im", "einzelnen"),
        *("zusammengefasst", "kurz", "gesagt", "folgendes", "folgende", "folgt", "es", "gilt"),
        *("dazu", "hierzu", "heißt", "steht", "darin", "according", "to", "the", "sources"),
        *("source", "in", "summary", "short", "brief", "detail", "following"),
    }
)


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
    sentences: list[str] = []
    for piece in (s.strip() for s in _SENTENCE_END_RE.split(text)):
        if piece and sentences and ends_with_abbreviation(sentences[-1]):
            sentences[-1] += " " + piece  # "bzw." or "z. B." ended no sentence
        elif piece:
            sentences.append(piece)
    return sentences


def map_citations(text: str, sources: Sequence[str], *, exempt: Sequence[str] = ()) -> MappedAnswer:
    """Map the model's `[n]` marks onto the numbered sources, checked against their words.

    A mark stays only when its number exists (1 ≤ n ≤ len(sources)) and the sentence shares
    at least `KEEP_OVERLAP` of its terms with that source; a sentence taken (nearly) word for
    word from a source (`ADOPT_OVERLAP`) gets that source's number even when the model wrote
    another one or none. Any sentence left without a mark, however short ("Ja, stimmt.",
    "PWNED."), is marked as unsupported; only sentences equal to an `exempt` text (the refusal)
    and pure lead-ins (`is_connective`) need none. Text without letters or digits is dropped.
    """
    source_terms = [frozenset(analyze(source)) for source in sources]
    cited: list[int] = []
    sentences = []
    unsupported = []
    for sentence in split_sentences(text):
        marked = [
            int(n)
            for match in CITATION_RE.finditer(sentence)
            for n in re.split(r"\s*[,;]\s*", match.group(1))
        ]
        body = CITATION_RE.sub("", sentence)
        body = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", body)).strip()
        if not re.search(r"\w", body):
            continue
        terms = set(analyze(body))
        overlaps = [_share(terms, source) for source in source_terms]
        numbers = [n for n in dict.fromkeys(marked) if 1 <= n <= len(sources)]
        numbers = [n for n in numbers if overlaps[n - 1] >= KEEP_OVERLAP]
        if overlaps and max(overlaps) >= ADOPT_OVERLAP and len(terms) >= ADOPT_MIN_TERMS:
            best = overlaps.index(max(overlaps)) + 1
            numbers = numbers if best in numbers else [best, *numbers]
        for n in numbers:
            if n not in cited:
                cited.append(n)
        marks = "".join(f"[{n}]" for n in numbers)
        if numbers:
            mapped = _with_marks(body, marks)
        elif body in exempt or is_connective(body):
            mapped = body
        else:
            unsupported.append(body)
            mapped = body + UNSUPPORTED_MARK
        sentences.append(mapped)
    return MappedAnswer(join_sentences(sentences), tuple(cited), tuple(unsupported))


def join_sentences(sentences: Sequence[str]) -> str:
    """Sentences joined by spaces; a bullet line („- …“) stands on a line of its own."""
    out = ""
    for sentence in sentences:
        bullet = sentence.startswith(("- ", "• ", "* "))
        if out:
            out += "\n" if bullet or out.endswith(_LINE_END) else " "
        out += sentence + (_LINE_END if bullet else "")
    return out.replace(_LINE_END, "")


def _with_marks(body: str, marks: str) -> str:
    """Citation marks before the sentence's final punctuation."""
    if body[-1:] in ".!?":
        return f"{body[:-1]} {marks}{body[-1]}"
    return f"{body} {marks}"


def _share(terms: set[str], source: frozenset[str]) -> float:
    return len(terms & source) / len(terms) if terms else 0.0


def is_connective(sentence: str) -> bool:
    """A pure lead-in such as "Laut den Quellen:" that claims nothing and needs no citation."""
    words = re.findall(r"\w+", sentence.lower())
    return sentence.rstrip().endswith(":") and bool(words) and set(words) <= CONNECTIVE_WORDS
