"""The extractive answer: verbatim pieces of the evidence, shaped by what the question asks.

A passage is read as its items (bullets or paragraphs, without the section heading) and each
item as its sentences, all as spans of the passage text, so everything shown is a verbatim
quote. The shape follows `question_kind`:

- `list`: every item of the section that answers the question, one bullet line each with its
  `[n]` (the section chosen by the search hits' rank votes, its heading and its items' match
  with the question);
- `number`: the search's key sentence of each close passage, carried on to the item's next
  sentence holding a quantity when the key sentence has none („KMU sind … zurückhaltend.
  Unterschiedliche Studien deuten auf einen Anteil von bis zu 15% …“);
- `yesno`: the finding first: the sentence, among the close passages' items, that best
  matches the question (the item by meaning and terms, the sentence in it by terms, then
  meaning; an item of a passage further down only when it matches clearly better), then the
  key sentences as for `fact`; `lead` says „Ja“ only where the question asks whether
  something exists („Gibt es …?“) and the leading sentence holds every term the question
  names;
- `fact`: the search's key sentence of each close passage, within its item; for a
  why-question carried on to the item's next sentence, which tends to give the reason;
- `howto`: as `fact`, from passages further down too (`HOWTO_GAP`), but no sentence of survey
  figures (two shares or more): it names no way to do anything.

An item no longer than `WHOLE_ITEM` characters is quoted whole instead of by one sentence (a
bullet is one thought), unless a sentence of it instructs the assistant.

Choosing items by their own match with the question (embedding cosine plus idf-weighted terms)
was tried for numbers and facts and lost to the search's key sentences on the tune split
(0.53 and 0.56 against 0.60 answers naming what was asked); for lists it picks the section.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quellenchat.sentences import ends_with_abbreviation
from retrieval.answers import Citation
from retrieval.citations import normalize_for_match
from retrieval.highlight import NEGATIONS
from retrieval.lexical import analyze
from retrieval.question_kind import Kind, addresses_the_system

Span = tuple[int, int]
Idf = Callable[[str], float]
Vector = Any  # a numpy vector
Embed = Callable[[Sequence[str]], Any]

MAX_LIST_ITEMS = 12
# Among passages no further than this below the best (fused score) the answer may draw.
SCORE_GAP = 0.04
# A how-to question draws on passages this far below the best, one key sentence each (all items
# of a section whose heading the question names): the ways are often spread over sections.
HOWTO_GAP = 0.25
# A yes/no question's finding may come from a passage below the close ones (within the first
# `FACT_PASSAGES`) when its item matches the question by this much more (meaning plus terms):
# „Kann KI im Kundenservice …, etwa bei Kundenanfragen?“ is answered by „Kundenmanagement (z. B.
# Chatbots …)“ (0.82 against 0.73 for the close passage on customer data). A tie goes to the close
# passage: the figures on KMU match „Können wir trotzdem mit KI loslegen?“ as well as the
# minimum requirements do, by its words alone.
FINDING_MARGIN = 0.04
# Another passage's item is added when it scores no further than this below the best.
SECOND_GAP = 0.03
# An item (bullet or paragraph) this short, as shown, is quoted whole rather than by its key
# sentence: a bullet is one thought, and its second sentence often says what was asked
# („Mangelndes Know-how … Die Einführung von KI erfordert besondere Schlüsselkompetenzen …“).
WHOLE_ITEM = 300
MAX_FACT_PIECES = 2
MAX_HIGHLIGHTS = 3
FACT_PASSAGES = 3
# A section whose heading names a term of the question gains this much (items' mean match ~0.9).
HEADING_WEIGHT = 0.35
# … and this much when the heading is named by a thesaurus term the question's words stand for
# („bremst“ → „Herausforderungen“): the thesaurus maps everyday asks to the sheet's headings,
# while a word the heading shares by chance („Einstieg“ in „… Zahlen zum Einstieg“) says less.
THESAURUS_HEADING_WEIGHT = 0.6
# A term weighing less than this share of the question's heaviest is too common to name a section.
COMMON_SHARE = 0.2
LEXICAL_WEIGHT = 0.5
# A section that all the search hits voted for gains this much (see `_list`); on the tune
# list questions any weight from 0 to 3 gave the same answers, 0.1 already fixes „Hemmnisse“.
VOTE_WEIGHT = 0.2
MAX_CACHED = 20_000

_BULLET_RE = re.compile(r"[•▪‣◦]")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?:])\s+(?=[A-ZÄÖÜ0-9„\"(])")
_FULL_STOP_RE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"(])")
# A share („15%“, „12 Prozent“): two of them make a sentence of survey figures.
_SHARE_RE = re.compile(r"\d[\d.,]*\s*(?:%|prozent\b)", re.I)
# A quantity: a number with a unit, or any number that is not a year („2021“ names a study).
QUANTITY_RE = re.compile(r"\d[\d.,]*\s*(?:%|prozent|eur|€)|(?<![\d.,])(?!(?:19|20)\d\d\b)\d+", re.I)


@dataclass(frozen=True)
class Piece:
    """A verbatim span of a cited passage, shown as one sentence or one bullet line."""

    citation: Citation
    span: Span

    @property
    def text(self) -> str:
        """The span's text, whitespace collapsed for display."""
        a, b = self.span
        return normalize_for_match(self.citation.passage.text[a:b])


def items(text: str, heading: str | None = None) -> list[Span]:
    """Bullets, else paragraphs, of a passage as spans, without a leading section heading."""
    start = 0
    if heading and text.startswith(heading):
        start = len(heading)
    cuts = [m.start() for m in _BULLET_RE.finditer(text, start)]
    if cuts:
        bounds = [*cuts, len(text)]
        head = text[start : cuts[0]].strip()
        spans = [(a + 1, b) for a, b in itertools.pairwise(bounds)]
        if head:
            spans.insert(0, (start, cuts[0]))
    else:
        spans, pos = [], start
        for block in re.split(r"\n\s*\n", text[start:]):
            spans.append((pos, pos + len(block)))
            pos += len(block) + 2
        spans = [(a, min(b, len(text))) for a, b in spans]
    return [s for s in (_first_block(text, *_trim(text, a, b)) for a, b in spans) if s[1] > s[0]]


def _first_block(text: str, a: int, b: int) -> Span:
    """An item without what follows its first blank line (a page's appended link list)."""
    cut = re.search(r"\n\s*\n", text[a:b])
    return _trim(text, a, a + cut.start()) if cut else (a, b)


def sentences(text: str, span: Span, *, colons: bool = True) -> list[Span]:
    """The sentences of `text[span]` as spans; „z. B.“ or „bzw.“ end no sentence.

    `colons=False`: a colon ends no sentence either („KfW 2021: 4% - 6%“ stays inside).
    """
    a, b = span
    out: list[Span] = []
    pos = a
    for match in (_SENTENCE_END_RE if colons else _FULL_STOP_RE).finditer(text, a, b):
        if ends_with_abbreviation(text[pos : match.start()]):
            continue
        out.append(_trim(text, pos, match.start()))
        pos = match.end()
    out.append(_trim(text, pos, b))
    return [s for s in out if s[1] > s[0]]


def _trim(text: str, a: int, b: int) -> Span:
    while a < b and (text[a].isspace() or _BULLET_RE.match(text[a])):
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


class Matcher:
    """How well a piece of text answers the question: meaning and the question's own terms.

    The score is the cosine between the question's and the text's embeddings (when an embedder
    is given) plus `LEXICAL_WEIGHT` times the idf-weighted share of the question's terms the
    text holds. Text embeddings are cached by text (the same items come back often).
    """

    def __init__(
        self,
        terms: Sequence[str],
        idf: Idf | None = None,
        *,
        query: Vector | None = None,
        embed: Embed | None = None,
        cache: dict[str, Vector] | None = None,
        synonyms: Sequence[str] = (),
    ) -> None:
        """Weights for the question's terms, and its embedding if meaning is to count.

        Args:
            terms: the analysed terms of the question (and their thesaurus expansions).
            idf: the store's idf per term; every term weighs 1 without it.
            query: the question's embedding (L2-normalised), with `embed` for texts.
            embed: embeds texts as passages, L2-normalised rows.
            cache: text embeddings kept between questions.
            synonyms: those of `terms` that the thesaurus added for the question's words.
        """
        weight = idf or (lambda _t: 1.0)
        self.weights = {t: max(weight(t), 0.0) for t in set(terms)}
        self.total = sum(self.weights.values()) or 1.0
        self.query = query
        self.embed = embed if query is not None else None
        self.cache = cache if cache is not None else {}
        self.synonyms = frozenset(synonyms)

    def lexical(self, text: str) -> float:
        """The share of the question's weight whose terms occur in `text`."""
        found = set(analyze(text))
        return sum(w for t, w in self.weights.items() if t in found) / self.total

    def names(self, heading: str | None) -> bool:
        """Whether a heading holds one of the question's terms (or its thesaurus terms).

        Terms that nearly every passage holds („KI“) do not count.
        """
        if not heading:
            return False
        top = max(self.weights.values(), default=0.0)
        return any(self.weights.get(t, 0.0) > COMMON_SHARE * top for t in analyze(heading))

    def heading_weight(self, heading: str | None) -> float:
        """What a section gains for its heading: see `HEADING_WEIGHT`."""
        if not self.names(heading):
            return 0.0
        top = max(self.weights.values(), default=0.0)
        by_synonym = any(
            t in self.synonyms and self.weights.get(t, 0.0) > COMMON_SHARE * top
            for t in analyze(heading or "")
        )
        return THESAURUS_HEADING_WEIGHT if by_synonym else HEADING_WEIGHT

    def prime(self, texts: Sequence[str]) -> None:
        """Embed, in one batch, the texts not yet cached."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if self.embed is None or not missing:
            return
        if len(self.cache) > MAX_CACHED:
            self.cache.clear()
        for text, vector in zip(missing, self.embed(missing), strict=True):
            self.cache[text] = vector

    def score(self, text: str) -> float:
        """Cosine (0 without an embedder) plus the weighted lexical share."""
        cosine = 0.0
        if self.embed is not None and self.query is not None:
            self.prime([text])
            cosine = float(self.cache[text] @ self.query)
        return cosine + LEXICAL_WEIGHT * self.lexical(text)


def compose(
    kind: Kind,
    quotes: Sequence[Citation],
    matcher: Matcher,
    *,
    verified_only: bool = True,
    votes: Mapping[str, float] | None = None,
    why: bool = False,
) -> list[Piece]:
    """The pieces of the answer, in order (see the module docstring).

    `votes`: per passage id, the share of the search hits' rank votes for its section
    (`retrieval.evidence.section_votes`); it helps choose a list question's section.
    `why`: the question asks for a reason (`question_kind.asks_why`); each key sentence is
    carried on to its item's next sentence.
    """
    usable = [q for q in quotes if q.verified or not verified_only]
    if not usable:
        return []
    best = usable[0].passage.score
    gap = HOWTO_GAP if kind == "howto" else SCORE_GAP
    close = [q for q in usable if q.passage.score >= best - gap] or usable[:1]
    matcher.prime(
        [q.passage.text[a:b] for q in usable for a, b in items(q.passage.text, q.passage.section)]
    )
    if kind == "list":
        listed = _list(usable, matcher, votes or {})
        if listed:
            return listed
    pieces = highlighted(
        close,
        numbers=kind == "number",
        why=why,
        named=matcher.names if kind == "howto" else None,
    )
    if kind == "howto":  # ways asked, not survey figures
        pieces = [p for p in pieces if len(_SHARE_RE.findall(p.text)) < 2] or pieces
    if kind == "number":
        pieces = _counting_first(pieces, usable[:FACT_PASSAGES], matcher)
    if kind == "yesno":
        finding = _finding(close, matcher, further=usable[len(close) : FACT_PASSAGES])
        if finding is not None:
            rest = [p for p in pieces if _new(p, [finding])]
            pieces = [finding, *rest][:MAX_HIGHLIGHTS]
    return pieces


def _finding(
    quotes: Sequence[Citation], matcher: Matcher, further: Sequence[Citation] = ()
) -> Piece | None:
    """The sentence that holds the answer to a yes/no question (see the module docstring).

    An item of a `further` passage (below the close ones) is the finding only where it matches
    the question by `FINDING_MARGIN` more than every close item does.
    """
    best = _best_item(quotes, matcher)
    beyond = _best_item(further, matcher)
    if beyond is not None and (best is None or beyond[0] > best[0] + FINDING_MARGIN):
        best = beyond
    if best is None:
        return None
    _, quote, item = best
    text = quote.passage.text
    spans = sentences(text, item, colons=False) or [item]
    matcher.prime([text[a:b] for a, b in spans])

    def key(span: Span) -> tuple[float, float]:
        # The question's own (and thesaurus) terms first: „Nimmt … zu?“ is answered by the
        # sentence with „steigender Tendenz“, not by the item's opening sentence.
        piece = text[span[0] : span[1]]
        return matcher.lexical(piece), matcher.score(piece)

    if _short(text, item):
        return Piece(quote, item)
    return Piece(quote, max(spans, key=key))  # the first of equals


def _best_item(quotes: Sequence[Citation], matcher: Matcher) -> tuple[float, Citation, Span] | None:
    """The item of `quotes` that matches the question best (the first of equals), with its score."""
    best: tuple[float, Citation, Span] | None = None
    for quote in quotes:
        for score, item in _scored_items(quote, matcher):
            if best is None or score > best[0]:
                best = (score, quote, item)
    return best


_EXISTS_RE = re.compile(r"^\s*(?:gibt\s+es|gibts|gibt's|is\s+there|are\s+there)\b", re.I)


def lead(question: str, pieces: Sequence[Piece], *, english: bool = False) -> str:
    """„Ja: “ before a yes/no answer whose first sentence says that what is asked for exists.

    Only for „Gibt es …?“ and only when that sentence holds every term of the question (after
    „gibt es“): „Gibt es in Karlsruhe eine Anlaufstelle für angewandte KI?“ is not affirmed by
    a sentence about Karlsruhe alone. Anything else leads with the sentence itself; „Nein“ is
    never said (a passage that does not name something does not deny it).
    """
    match = _EXISTS_RE.match(question)
    if match is None or not pieces:
        return ""
    terms = set(analyze(question[match.end() :]))
    if not terms or not terms <= set(analyze(pieces[0].text)):
        return ""
    return "Yes: " if english else "Ja: "


def highlighted(
    quotes: Sequence[Citation],
    *,
    numbers: bool = False,
    why: bool = False,
    named: Callable[[str | None], bool] | None = None,
) -> list[Piece]:
    """The search's key sentence of each close passage, distinct ones only (at most three).

    `named`: for a how-to question, whether the question's terms (or their thesaurus terms)
    name a section's heading; such a passage gives all its items („Wie fange ich an?“ →
    „Digitale Mindestanforderungen“: digitale Erfassung von Daten, Rechnerkapazitäten), the
    ways the sources name for what is asked.
    `why`: the key sentence goes on to its item's next sentence. The sentence that matches a
    why-question best restates what is asked about; the reason tends to follow it („…
    erkennen häufig noch nicht den Nutzen … Konkrete Anwendungsfälle sind ihnen oft nicht
    bekannt“).
    """
    pieces: list[Piece] = []
    for quote in quotes:
        passage = quote.passage
        a, b = passage.highlights[0] if passage.highlights else (0, len(passage.text))
        spans = items(passage.text, passage.section)
        inside = [item for item in spans if a < item[1] and b > item[0]]
        if named is not None and spans and named(passage.section):
            pieces += [p for p in (Piece(quote, s) for s in spans) if _new(p, pieces)]
            continue
        if spans and not inside:
            # The key sentence is the section's heading („Digitale Mindestanforderungen“): the
            # question names the section's topic, so its items answer it; a heading alone says
            # nothing. From the best passage all of them, from a later one none.
            if not pieces:
                return [Piece(quote, span) for span in spans[:MAX_LIST_ITEMS]]
            continue
        if inside:
            # The item the key sentence starts in, or the first it reaches into when it starts
            # in the heading („Herausforderungen • Mangelndes Know-how …“): never past the item.
            item = inside[0]
            a, b = max(a, item[0]), min(b, item[1])
            if numbers and not QUANTITY_RE.search(passage.text[a:b]):
                b = _through_number(passage.text, (a, b), item)
            following = sentences(passage.text, (b, item[1]))
            if why and following and not addresses_the_system(_text(passage.text, following[0])):
                b = following[0][1]
            if _short(passage.text, item):
                a, b = item
        piece = Piece(quote, _trim(passage.text, a, b))
        if len(pieces) < MAX_HIGHLIGHTS and piece.span[1] > piece.span[0] and _new(piece, pieces):
            pieces.append(piece)
    return pieces


def _counting_first(
    pieces: list[Piece], nearest: Sequence[Citation], matcher: Matcher
) -> list[Piece]:
    """A number question's pieces with a figure that counts what is asked put first.

    A negated sentence's figure („40% … setzen weder KI ein …“) counts those who do not, so it
    answers a question that is not negated only when nothing else does. When no close passage
    gives a counting figure, the first of the `nearest` passages that does is drawn on too.
    """
    negated = bool(set(matcher.weights) & NEGATIONS)

    def counts(piece: Piece) -> bool:
        return bool(QUANTITY_RE.search(piece.text)) and (
            negated or not set(analyze(piece.text)) & NEGATIONS
        )

    if not any(counts(p) for p in pieces):
        extra = next((p for p in highlighted(nearest, numbers=True) if counts(p)), None)
        if extra is not None and _new(extra, pieces):
            pieces = [extra, *pieces][:MAX_HIGHLIGHTS]
    return sorted(pieces, key=lambda p: not counts(p))


def _scored_items(quote: Citation, matcher: Matcher) -> list[tuple[float, Span]]:
    text = quote.passage.text
    return [(matcher.score(text[a:b]), (a, b)) for a, b in items(text, quote.passage.section)]


def _list(quotes: Sequence[Citation], matcher: Matcher, votes: Mapping[str, float]) -> list[Piece]:
    """Every item of the best multi-item passage (a section), one piece each.

    The section is chosen by the hits' rank votes for it, its heading naming a term of the
    question, and its items' mean match with the question.
    """
    best: tuple[float, int, Citation] | None = None
    for rank, quote in enumerate(quotes):
        scored = _scored_items(quote, matcher)
        if len(scored) < 2:
            continue
        mean = sum(s for s, _ in scored) / len(scored)
        value = matcher.heading_weight(quote.passage.section) + mean - 0.01 * rank
        value += VOTE_WEIGHT * votes.get(quote.passage.id, 0.0)
        if best is None or value > best[0]:
            best = (value, rank, quote)
    if best is None:
        return []
    quote = best[2]
    return [Piece(quote, span) for _, span in _scored_items(quote, matcher)[:MAX_LIST_ITEMS]]


def _text(text: str, span: Span) -> str:
    return text[span[0] : span[1]]


def _short(text: str, item: Span) -> bool:
    """Whether the item is short enough to be shown whole (`WHOLE_ITEM`).

    Never one with a sentence that gives the assistant instructions (planted in a document):
    that stays data, and only a key sentence of its own would show it.
    """
    if len(normalize_for_match(text[item[0] : item[1]])) > WHOLE_ITEM:
        return False
    return not any(addresses_the_system(text[a:b]) for a, b in sentences(text, item))


def _through_number(text: str, span: Span, item: Span) -> int:
    """The end of the item's first sentence after `span` that holds a quantity (else span's)."""
    for a, b in sentences(text, (span[1], item[1])):
        if QUANTITY_RE.search(text[a:b]):
            return b
    return span[1]


def _new(piece: Piece, pieces: Sequence[Piece]) -> bool:
    key = piece.text.lower()
    return all(key not in p.text.lower() and p.text.lower() not in key for p in pieces)


def render(pieces: Sequence[Piece], kind: Kind, opening: str = "") -> str:
    """The answer text: bullet lines for a list, else sentences, each with its `[n]`.

    `opening` (a yes/no answer's `lead`) goes before the first sentence.
    """
    if kind == "list" and len(pieces) > 1:
        return "\n".join(f"- {_cited(p)}" for p in pieces)
    text = opening
    for i, piece in enumerate(pieces):
        if i:
            # A piece without a full stop (a link, a heading-like bullet) ends its sentence
            # only at a line break: „… ki-trainer.html [1] 40% der …“ would read as one.
            text += " " if pieces[i - 1].text.endswith((".", "!", "?")) else "\n"
        text += _cited(piece)
    return text


def _cited(piece: Piece) -> str:
    return f"{piece.text} [{piece.citation.n}]"
