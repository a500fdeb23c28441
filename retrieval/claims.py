"""Every claim checked against the passage it cites, and broken model output never shown.

A generated answer sentence that carries a citation is shown as supported only when one
stretch of a cited passage holds it: a sentence, two neighbouring sentences or one bullet, in
which every number of the claim occurs and at least `SUPPORT_SHARE` of its content terms
(German analysis of `retrieval.lexical.analyze`: folded, stemmed, compounds split). That
stretch is what the citation then quotes (`Checked.support`), so the advisor reads the words
that hold the claim, not some other key sentence of a long passage. Words scattered over a
whole section hold nothing. A sentence failing the check is replaced by the cited passage's
own sentence that comes closest to it (verbatim), first within the stretch the model read of that
passage (`read`: the lead piece of a number answer, not a neighbouring figure the model never
saw), with sentences ended by full stops only („KfW 2021: 4% - 6%“ is no sentence of its own);
if there is none, it is shown with the mark „nicht belegt“.

Before that, `tidy` repairs what small models emit: lone or doubled brackets (`[ [1]`,
`[1][1]`, `[]`), and `check` drops sentences that only echo the question, a last sentence cut
off mid-word (no final punctuation and a word its passages do not know) and an uncited lone
word („Nummer“). A sentence that copies its stretch with the words mixed up („KI basiert auf
KI-basierten Analysen …“ for „KI-basierte Analysen … ermöglichen …“) holds every word and still
says something else: it is shown as the stretch itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from quellenchat.types import letters_key
from retrieval.citations import CITATION_RE as _CITATION_RE
from retrieval.citations import UNSUPPORTED_MARK, join_sentences, split_sentences
from retrieval.compose import Span, items, sentences
from retrieval.highlight import NEGATIONS
from retrieval.lexical import analyze

SUPPORT_SHARE = 0.6
_YES_RE = re.compile(r"^(?:ja|yes)\b\s*")
# A claim this close to its stretch (difflib ratio of the plain texts) was meant as a copy.
NEAR_COPY = 0.8
_MARKS_RE = re.compile(r"((?:\s*\[\d+\])+)\s*([.!?:]?)\s*$")
# The mark `map_citations` puts on a sentence it found no source for (before or after the stop).
_UNSUPPORTED_RE = re.compile(re.escape(UNSUPPORTED_MARK.strip()))
_UNSUPPORTED_END_RE = re.compile(r"\s*" + _UNSUPPORTED_RE.pattern + r"\s*([.!?:]?)\s*$")
_MARK_RE = re.compile(r"\[(\d+)\]")
# A question or exclamation mark with a full stop after it.
_DOUBLE_STOP_RE = re.compile(r"([?!])\s*\.\s*$")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_NAME_RE = re.compile(r"\b[A-ZÄÖÜ]{2,}\w*|\b[A-ZÄÖÜ][a-zäöüß]+[A-ZÄÖÜ]\w*")


@dataclass(frozen=True)
class Checked:
    """The answer after the claim check."""

    text: str
    cited: tuple[int, ...]  # passage numbers still cited, in order of first citation
    unsupported: tuple[str, ...]  # sentences shown as „nicht belegt“
    replaced: tuple[str, ...]  # model sentences swapped for their passage's own sentence
    # passage number → the stretches of its text that hold the shown sentences citing it
    support: Mapping[int, tuple[Span, ...]] = dataclasses.field(default_factory=dict)


def tidy(text: str) -> str:
    """Citation marks repaired: `[ [1]` → `[1]`, `[1][1]` → `[1]`, lone brackets and `[]` gone."""
    marks: list[str] = []

    def keep(match: re.Match[str]) -> str:
        marks.append(match.group(0))
        return f"\x00{len(marks) - 1}\x00"

    held = _CITATION_RE.sub(keep, _UNSUPPORTED_RE.sub(keep, text))
    held = held.replace("[", "").replace("]", "")  # whatever bracket is left is broken
    text = re.sub("\x00(\\d+)\x00", lambda m: marks[int(m.group(1))], held)
    text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", text)  # the same mark twice in a row
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def supports(claim: str, source: str, *, words: bool = True, question: str = "") -> bool:
    """Whether `source` holds every number and `SUPPORT_SHARE` of the content terms of `claim`.

    `words=False` (an English answer from German sources, whose words cannot match) checks the
    numbers and the names written in capitals or with inner capitals (`BMWK`, `KfW`) only.
    `question`: the terms the claim adds to the question's must also be held by that share.
    „KI hindert Mittelstand“ under „Hindernisse KI Mittelstand“ holds two of its three terms in a
    title on KI im Mittelstand; the one it adds, what the sentence claims, is not there.
    """
    flat = letters_key(source)
    if not all(letters_key(n) in flat for n in _NUMBER_RE.findall(claim)):
        return False
    if not words:
        names = _NAME_RE.findall(claim)
        return all(letters_key(n) in flat for n in names)
    terms = set(analyze(claim))
    if not terms:
        return False
    held = terms & set(analyze(source))
    if len(held) / len(terms) < SUPPORT_SHARE:
        return False
    added = terms - set(analyze(question))
    return not added or len(held & added) / len(added) >= SUPPORT_SHARE


def echoes(claim: str, question: str) -> bool:
    """A sentence that says nothing beyond the question's own words („KI bringt meinen Kunden“)."""
    terms = set(analyze(claim))
    return not _NUMBER_RE.search(claim) and terms <= set(analyze(question))


def support(claim: str, source: str, *, words: bool = True, question: str = "") -> Span | None:
    """The narrowest stretch of `source` that `supports` the claim (under `question`), or None.

    A stretch is one sentence, two neighbouring sentences of one item, or a whole item (bullet
    or paragraph), preferred in that order. Among stretches of one kind, the one sharing most
    content terms wins, then the shorter.
    """
    terms = set(analyze(claim))
    best: tuple[tuple[int, int, int], Span] | None = None
    for item in items(source):
        spans = sentences(source, item)
        pairs = [(a[0], b[1]) for a, b in itertools.pairwise(spans)]
        for kind, windows in enumerate((spans, pairs, [item])):
            for a, b in windows:
                if not supports(claim, source[a:b], words=words, question=question):
                    continue
                rank = (kind, -len(terms & set(analyze(source[a:b]))), b - a)
                if best is None or rank < best[0]:
                    best = (rank, (a, b))
    return best[1] if best else None


def closest_sentence(claim: str, source: str) -> str | None:
    """The sentence of `source` sharing most content terms with `claim` (None: none shared)."""
    found = closest_span(claim, source)
    return _one_line(source[found[0] : found[1]]) if found else None


def closest_span(claim: str, source: str, within: Span | None = None) -> Span | None:
    """Where in `source` the sentence sharing most content terms with `claim` lies.

    `within`: only the sentences of that stretch count, and only a full stop ends one there;
    when none shares a term, its first sentence (what the model read leads with).
    """
    if within is not None:
        spans = sentences(source, within, colons=False)
        return _most_shared(claim, source, spans) or (spans[0] if spans else None)
    return _most_shared(
        claim, source, [s for item in items(source) for s in sentences(source, item)]
    )


def _most_shared(claim: str, source: str, spans: Sequence[Span]) -> Span | None:
    """The first of `spans` sharing most content terms with `claim` (None: none shares one)."""
    terms = set(analyze(claim))
    best: tuple[int, Span] | None = None
    for a, b in spans:
        shared = len(terms & set(analyze(source[a:b])))
        if shared and (best is None or shared > best[0]):
            best = (shared, (a, b))
    return best[1] if best else None


def check(
    text: str,
    passages: Mapping[int, str],
    question: str,
    *,
    english: bool = False,
    read: Mapping[int, Span] | None = None,
) -> Checked:
    """Check each sentence of a mapped answer against stretches of the passages it cites.

    Args:
        text: the answer after citation mapping (marks `[n]`, unmarked sentences flagged with
            `UNSUPPORTED_MARK`).
        passages: passage number → the passage's full text, for every number the model saw.
        question: the question asked, to drop sentences that merely echo it.
        english: the answer is English (its words are not checked, see `supports`).
        read: passage number → the stretch of it the model was given, where it got only one;
            a failed sentence is replaced from that stretch first.
    """
    kept: list[str] = []
    cited: list[int] = []
    unsupported: list[str] = []
    replaced: list[str] = []
    spans: dict[int, list[Span]] = {}
    shown_keys: set[str] = set()
    parts = split_sentences(tidy(text))
    for index, sentence in enumerate(parts):
        sentence = _DOUBLE_STOP_RE.sub(r"\1", sentence)  # „… nutzen [1]?.“
        flagged = _UNSUPPORTED_END_RE.search(sentence)
        if flagged is not None:
            body = (sentence[: flagged.start()] + flagged.group(1)).strip()
            # A question back („Möchten Sie mehr wissen?“), an echo of the asked one or a lone
            # word left over („Nummer“) claims nothing: dropped, not listed as unsupported.
            if (
                body
                and not body.endswith("?")
                and not echoes(body, question)
                and not _fragment(body)
            ):
                unsupported.append(body)
                kept.append(body + UNSUPPORTED_MARK)
            continue
        match = _MARKS_RE.search(sentence)
        numbers = [int(n) for n in _MARK_RE.findall(match.group(1))] if match else []
        numbers = [n for n in dict.fromkeys(numbers) if n in passages]
        if match is None or not numbers:  # a connective or the refusal, kept as mapped
            kept.append(sentence)
            continue
        body = (sentence[: match.start()] + match.group(2)).strip()
        if body.endswith("?") or (not english and echoes(body, question)):
            # A question, cited or not, claims nothing: the model asking back, or echoing the
            # asked one in its own spelling („Datenschutz“ for the user's „Datenschuz“).
            continue
        last = index == len(parts) - 1
        cut = last and not re.search(r"[.!?:)]\s*$", sentence)
        held = {}
        for n in [] if cut else numbers:
            span = support(body, passages[n], words=not english, question=question)
            if span is not None:
                held[n] = span
        shown = body
        if held:
            n, (a, b) = next(iter(held.items()))
            if _garbled_copy(body, passages[n][a:b]):
                # „KI basiert auf KI-basierten Analysen von Kundendaten ermöglicht …“: every word
                # is the passage's, the sentence is not. The passage's own stretch is shown.
                replaced.append(body)
                shown = _one_line(passages[n][a:b])
                held = {n: (a, b)}
        if not held:
            first = numbers[0]
            given = (read or {}).get(first)
            found = closest_span(body, passages[first], given) if given else None
            found = found or closest_span(body, passages[first])
            replaced.append(body)
            if found is None:
                unsupported.append(body)
                kept.append(body + UNSUPPORTED_MARK)
                continue
            shown = _one_line(passages[first][found[0] : found[1]])
            held = {first: found}
        line = _with_marks(shown, list(held))
        if letters_key(shown) in shown_keys:  # the same sentence again, whatever its marks
            continue
        shown_keys.add(letters_key(shown))
        kept.append(line)
        for n, span in held.items():
            spans.setdefault(n, []).append(span)
            if n not in cited:
                cited.append(n)
    return Checked(
        join_sentences(kept),
        tuple(cited),
        tuple(unsupported),
        tuple(replaced),
        {n: tuple(found) for n, found in spans.items()},
    )


_FINDING_WORDS = frozenset({"ja", "nein", "yes", "no"})


def _fragment(body: str) -> bool:
    """Whether an uncited piece is one lone word, not a finding („Ja.“, „Nein.“ stay flagged)."""
    words = re.findall(r"\w[\w-]*", body)
    return len(words) <= 1 and not (_FINDING_WORDS & {w.lower() for w in words})


def _garbled_copy(claim: str, stretch: str) -> bool:
    """Whether the claim is the stretch copied with its words mixed up, not an excerpt of it.

    Compared by letters, digits and single blanks: a near copy (`NEAR_COPY`) that is not a part
    of the stretch. A faithful excerpt („Kleinere Unternehmen erkennen häufig …“) and a
    paraphrase in other words are neither.
    """
    a, b = _YES_RE.sub("", _plain(claim)), _plain(stretch)  # „Ja: Es gibt …“ leads, copies
    if a in b or _excerpt(a.split(), b.split()):
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= NEAR_COPY


def _excerpt(words: Sequence[str], source: Sequence[str]) -> bool:
    """Whether the words are the source's in their order, some left out, but no negation."""
    rest = iter(source)
    dropped: list[str] = []
    for word in words:
        for other in rest:
            if other == word:
                break
            dropped.append(other)
        else:
            return False
    return not set(analyze(" ".join(dropped))) & NEGATIONS


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def _one_line(piece: str) -> str:
    """A passage's stretch as an answer sentence: its line breaks and runs of blanks one space."""
    return re.sub(r"\s+", " ", piece).strip()


def _with_marks(body: str, numbers: Sequence[int]) -> str:
    marks = "".join(f"[{n}]" for n in numbers)
    if body[-1:] in ".!?":
        return f"{body[:-1]} {marks}{body[-1]}"
    return f"{body} {marks}"
