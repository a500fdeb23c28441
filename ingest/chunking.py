"""Section detection, sentence splitting and chunking over cleaned text.

Everything here works on character spans, so every chunk is an exact substring of its unit's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from quellenchat.sentences import is_abbreviation
from quellenchat.types import Chunk, Page, letters_key

Span = tuple[int, int]

BULLET = "•"
# Below this many words a block is merged into its neighbour instead of standing alone.
MIN_WORDS = 12
NUMBERED_HEADING_WORDS = 10

_BOUNDARY = re.compile(r"[.!?…]+[\"'»«“”)\]]*(?=\s+)")
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'„»«(\[]?[A-ZÄÖÜ0-9•]")
_INLINE_HEADING = re.compile(
    r"(?P<h>[A-ZÄÖÜ][\wäöüßÄÖÜ/\-]*(?: [\wäöüßÄÖÜ/\-]+){0,3}) " + BULLET + " "
)
_MD_HEADING = re.compile(r"#{1,6}\s+(?P<h>\S.*)")
_NUMBERED = re.compile(r"(?:\d+(?:\.\d+)*\.?\s+)?")
_URL = re.compile(r"https?://|www\.")


@dataclass(frozen=True)
class Heading:
    """A heading found in text: where its block starts and what it says."""

    start: int
    text: str
    has_content: bool  # an inline heading (`Chancen • …`) carries content in the same block
    numbered: bool = False  # `3.1.6 Automatische und manuelle Balken`: a main heading of a PDF


def word_count(text: str) -> int:
    """Whitespace-separated words in `text`."""
    return len(text.split())


def blocks(text: str) -> list[Span]:
    """Paragraph spans: blocks split at blank lines, and every bullet line starts its own block."""
    spans: list[Span] = []
    for match in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]*)*", text):
        start = match.start()
        for line in re.finditer(r"[^\n]+", match.group()):
            if line.group().lstrip().startswith(BULLET) and line.start() > 0:
                spans.append(_strip_span(text, start, match.start() + line.start()))
                start = match.start() + line.start()
        spans.append(_strip_span(text, start, match.end()))
    return [s for s in spans if s[1] > s[0]]


def split_sentences(text: str, span: Span | None = None) -> list[Span]:
    """Sentence spans inside `span` (default: all of `text`); line ends also end sentences."""
    lo, hi = span or (0, len(text))
    result: list[Span] = []
    for line in re.finditer(r"[^\n]+", text[lo:hi]):
        start = lo + line.start()
        end = lo + line.end()
        for cut in _sentence_cuts(text, start, end):
            result.append(_strip_span(text, start, cut))
            start = cut
        result.append(_strip_span(text, start, end))
    return [s for s in result if s[1] > s[0]]


def _sentence_cuts(text: str, start: int, end: int) -> Iterable[int]:
    for match in _BOUNDARY.finditer(text, start, end):
        if not _NEXT_STARTS_SENTENCE.match(text, match.end(), end):
            continue
        if match.group().startswith(".") and _is_abbreviation(text, start, match.start()):
            continue
        yield match.end()


def _is_abbreviation(text: str, line_start: int, dot: int) -> bool:
    word = re.search(r"(\S+)$", text[line_start:dot])
    return word is not None and is_abbreviation(word.group(1))


def _strip_span(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def find_headings(text: str, title: str | None = None) -> list[Heading]:
    """Headings of a plain-text or PDF page: Markdown `#`, short title-like lines, `Heading • …`."""
    title_key = letters_key(title) if title else None
    found: list[Heading] = []
    for start, end in blocks(text):
        block = text[start:end]
        heading = _heading_of(block, title_key)
        if heading:
            numbered = _NUMBERED.match(block).end() > 0  # type: ignore[union-attr]
            found.append(Heading(start, heading, has_content=False, numbered=numbered))
        elif inline := _INLINE_HEADING.match(block):
            found.append(Heading(start, inline.group("h"), has_content=True))
    return found


def _heading_of(block: str, title_key: str | None) -> str | None:
    if "\n" in block:
        return None
    if md := _MD_HEADING.fullmatch(block):
        return md.group("h").strip()
    numbering = _NUMBERED.match(block).end()  # type: ignore[union-attr]
    candidate = block[numbering:]
    if not candidate or not candidate[0].isupper() or _URL.search(candidate):
        return None
    # A numbered heading (`2.4 Wie die Handbücher gelesen werden sollten`) may be longer.
    most = (80, NUMBERED_HEADING_WORDS) if numbering else (60, 5)
    # A numbered heading may ask (`4.3.3 Was sind Engraver?`).
    ends = ".:;,!" if numbering else ".:;,!?"
    if len(candidate) > most[0] or word_count(candidate) > most[1] or candidate[-1] in ends:
        return None
    if any(ch.isdigit() for ch in candidate) or candidate.startswith(BULLET):
        return None
    if title_key is not None and letters_key(candidate) == title_key:
        return None
    return candidate


def section_units(text: str, title: str | None) -> list[Page]:
    """Split a plain-text document into one unit per section (the section stands in for a page)."""
    groups = _heading_groups(find_headings(text, title))
    starts = [g[0].start for g in groups]
    names: list[str | None] = [" / ".join(h.text for h in g) for g in groups]
    if not starts or (starts[0] > 0 and word_count(text[: starts[0]]) >= MIN_WORDS):
        starts.insert(0, 0)
        names.insert(0, None)
    else:
        starts[0] = 0  # a short preamble belongs to the first section
    bounds = [*starts[1:], len(text)]
    units: list[Page] = []
    for start, end, name in zip(starts, bounds, names, strict=True):
        lo, hi = _strip_span(text, start, end)
        if hi > lo:
            units.append(Page(index=len(units), text=text[lo:hi], section=name))
    return units


def _heading_groups(headings: Sequence[Heading]) -> list[list[Heading]]:
    """Stack headings that follow each other with no content between them (two-column layouts)."""
    groups: list[list[Heading]] = []
    previous: Heading | None = None
    for heading in headings:
        if (
            groups
            and previous is not None
            and not previous.has_content
            and _adjacent(previous, heading)
        ):
            groups[-1].append(heading)
        else:
            groups.append([heading])
        previous = heading
    return groups


def _adjacent(first: Heading, second: Heading) -> bool:
    # Only whitespace and the first heading's own line lie between the two.
    return second.start - first.start <= len(first.text) + 12


@dataclass(frozen=True)
class ChunkSizes:
    """Chunk size limits in words."""

    target: int = 150
    maximum: int = 250
    overlap: int = 30


def chunk_units(
    units: Sequence[Page],
    doc_sha: str,
    sizes: ChunkSizes,
    *,
    by_block: bool,
    whole_sections: bool = False,
) -> list[Chunk]:
    """Chunk every unit; `by_block` keeps each paragraph or bullet a chunk of its own.

    `whole_sections` adds, for a section unit of several chunks, one chunk holding the whole
    section (heading and every bullet) where it fits twice the largest chunk: a list question
    („Welche Herausforderungen …?“) then finds all its items in one passage.
    """
    chunks: list[Chunk] = []
    for unit in units:
        spans = chunk_spans(unit.text, sizes, by_block=by_block)
        if whole_sections and len(spans) > 1 and word_count(unit.text) <= 2 * sizes.maximum:
            spans.append(_strip_span(unit.text, 0, len(unit.text)))
        for lo, hi in spans:
            chunks.append(
                Chunk(
                    doc_sha=doc_sha,
                    unit=unit.index,
                    start=lo,
                    end=hi,
                    text=unit.text[lo:hi],
                    page=unit.number,
                    page_label=unit.label,
                    section=unit.section,
                    sentences=tuple(
                        (a - lo, b - lo) for a, b in split_sentences(unit.text, (lo, hi))
                    ),
                )
            )
    return chunks


def chunk_spans(text: str, sizes: ChunkSizes, *, by_block: bool) -> list[Span]:
    """Chunk spans of one unit: whole paragraphs and bullets where they fit, else sentences.

    Packed chunks (`by_block=False`, PDF pages) start afresh at every heading, without
    overlap, and leave out table-of-contents and index lines (`is_directory`).
    """
    if by_block:
        pieces = _pieces(text, sizes)
        return _merge_forward([(p[0], p[1]) for p in _join_blocks(pieces)], text, sizes)
    pieces = _pieces(text, sizes, skip=is_directory)
    headings = {h.start for h in find_headings(text)}
    return _merge_small(_pack(pieces, text, sizes, headings), text, sizes, headings)


# A piece is a sentence (or a word-cut part of an overlong one) plus its block number.
_Piece = tuple[int, int, int]
# A dot leader, as in a table of contents or an index: `Taktangabe . . . . . 20`.
_LEADER = re.compile(r"(?:\. ?){4,}\s*\d")


def is_directory(block: str) -> bool:
    """A table-of-contents or index block: its entries point at pages through dot leaders."""
    return _LEADER.search(block) is not None


def _pieces(
    text: str, sizes: ChunkSizes, skip: Callable[[str], bool] = lambda block: False
) -> list[_Piece]:
    pieces: list[_Piece] = []
    for number, block in enumerate(blocks(text)):
        if skip(text[block[0] : block[1]]):
            continue
        for sentence in split_sentences(text, block):
            pieces.extend((a, b, number) for a, b in _cut_long(text, sentence, sizes.maximum))
    return pieces


def _cut_long(text: str, span: Span, limit: int) -> list[Span]:
    words = list(re.finditer(r"\S+", text[span[0] : span[1]]))
    if len(words) <= limit:
        return [span]
    cuts = []
    for i in range(0, len(words), limit):
        part = words[i : i + limit]
        cuts.append((span[0] + part[0].start(), span[0] + part[-1].end()))
    return cuts


def _join_blocks(pieces: Sequence[_Piece]) -> list[_Piece]:
    joined: list[_Piece] = []
    for lo, hi, number in pieces:
        if joined and joined[-1][2] == number:
            joined[-1] = (joined[-1][0], hi, number)
        else:
            joined.append((lo, hi, number))
    return joined


def _pack(
    pieces: Sequence[_Piece], text: str, sizes: ChunkSizes, headings: Collection[int] = ()
) -> list[Span]:
    """Pack sentences greedily up to the target size, preferring paragraph ends, with overlap.

    A heading (a start in `headings`) closes the chunk before it once that holds `MIN_WORDS`;
    the next chunk then starts at the heading, without overlap from another section.
    """
    spans: list[Span] = []
    current: list[_Piece] = []
    fresh = 0  # pieces in `current` that are not overlap from the previous chunk
    for index, piece in enumerate(pieces):
        words = _words(text, current)
        section_break = piece[0] in headings and _words(text, current[-fresh:]) >= MIN_WORDS
        if fresh and (section_break or _should_close(pieces, index, words, text, sizes)):
            spans.append((current[0][0], current[-1][1]))
            current = [] if section_break else _overlap_tail(current, text, sizes.overlap)
            fresh = 0
            while current and _words(text, current) + _words(text, [piece]) > sizes.maximum:
                current.pop(0)
        current.append(piece)
        fresh += 1
    if fresh:
        spans.append((current[0][0], current[-1][1]))
    return spans


def _should_close(
    pieces: Sequence[_Piece], index: int, words: int, text: str, sizes: ChunkSizes
) -> bool:
    piece = pieces[index]
    if words + _words(text, [piece]) > sizes.maximum or words >= sizes.target:
        return True
    new_block = piece[2] != pieces[index - 1][2]
    if not new_block or words < sizes.target * 0.6:
        return False
    block_words = _words(text, [p for p in pieces[index:] if p[2] == piece[2]])
    return words + block_words > sizes.target


def _overlap_tail(current: Sequence[_Piece], text: str, overlap: int) -> list[_Piece]:
    if overlap <= 0:
        return []
    tail: list[_Piece] = []
    for piece in reversed(current[1:]):  # never repeat the whole chunk
        tail.insert(0, piece)
        if _words(text, tail) >= overlap:
            break
    return tail


def _merge_forward(spans: Sequence[Span], text: str, sizes: ChunkSizes) -> list[Span]:
    """Join short heading-like blocks to the next block; bullets stand alone.

    Bare link lists (reference URLs repeated at the end of a section) answer no question and
    would only win on URL tokens: they are left out of the chunks, with their lead-in lines.
    """
    merged: list[Span] = []
    carry: int | None = None  # start of short blocks waiting for the next block
    for lo, hi in spans:
        if is_link_list(text[lo:hi]):
            carry = None
            continue
        start = lo if carry is None else carry
        if _is_lead_in(text[lo:hi]) and word_count(text[start:hi]) < sizes.maximum:
            carry = start
            continue
        merged.append((start, hi))
        carry = None
    if carry is not None:
        merged.append((carry, spans[-1][1]))
    return merged


def _is_lead_in(block: str) -> bool:
    return word_count(block) < MIN_WORDS and BULLET not in block


def is_link_list(block: str) -> bool:
    """A block whose every line is a bare URL."""
    return all(_URL.match(line.strip()) for line in block.splitlines() if line.strip())


def _merge_small(
    spans: Sequence[Span], text: str, sizes: ChunkSizes, headings: Collection[int] = ()
) -> list[Span]:
    """Merge chunks below MIN_WORDS into a neighbour while the result stays within the maximum.

    A chunk that starts at a heading is not merged into the chunk before it (unless tiny).
    """
    merged: list[Span] = []
    for span in spans:
        opens_section = span[0] in headings and word_count(text[slice(*span)]) >= MIN_WORDS
        if merged and not opens_section and _fits_merge(merged[-1], span, text, sizes):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


def _fits_merge(previous: Span, span: Span, text: str, sizes: ChunkSizes) -> bool:
    small = min(word_count(text[slice(*previous)]), word_count(text[slice(*span)])) < MIN_WORDS
    return small and word_count(text[previous[0] : span[1]]) <= sizes.maximum


def _words(text: str, pieces: Sequence[_Piece]) -> int:
    return sum(word_count(text[p[0] : p[1]]) for p in pieces)
