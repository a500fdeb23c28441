"""Evidence for one question: the passages, their verified quotes, and whether to refuse.

`EvidenceBuilder.prepare` runs the search for the standalone question, widens a list
question's passages to their whole sections, quotes each passage (verified against the stored
page text) and decides the refusal before any answer is composed. What it returns,
`Prepared`, is all that the extractive and the LLM composers read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrieval.answers import Citation, Evidence
from retrieval.citations import passage_quote, quote_occurs
from retrieval.compose import Matcher
from retrieval.figures import asked_unit, figure_missing
from retrieval.highlight import asks_for_quantity
from retrieval.language import is_english
from retrieval.lexical import analyze
from retrieval.mentions import only_named
from retrieval.names import missing_names
from retrieval.passages import Passage
from retrieval.question_kind import (
    Kind,
    addresses_the_system,
    asked_subject,
    asking_sentences,
    question_kind,
    without_own_firm,
)
from retrieval.ranking import ranking_missing
from retrieval.refusal import Weighing, evidence_strength
from retrieval.subjects import SUBJECT_CEILING, unnamed_subject
from retrieval.thesaurus import default_thesaurus

if TYPE_CHECKING:
    from retrieval.search import Searcher

# A list question's search goes this deep, and it reads the first `passages` distinct sections
# among these hits whole: a section whose bullets come 5th to 9th still gets its say („Welche
# Anlaufstellen …?“ → „Nützliche Links“, behind two sections that share the words „Firmen, die
# KI einführen“). The votes for a section count only the first `passages` hits, as before.
LIST_HITS = 10


@dataclass(frozen=True)
class Prepared:
    """One question's evidence and the decisions taken on it before composing."""

    question: str
    standalone: str
    english: bool
    passages: tuple[Passage, ...]
    quotes: tuple[Citation, ...]
    refused: bool
    ask: str  # the question the LLM is asked
    kind: Kind = "fact"
    section_votes: Mapping[str, float] = field(default_factory=dict)

    def evidence(self) -> Evidence:
        """What is streamed before the answer."""
        return Evidence(
            self.question,
            self.standalone,
            self.passages,
            self.quotes,
            self.refused,
            self.section_votes,
        )


def mentions_topic(question: str, topic: str) -> bool:
    """Whether the question names the sources' topic, or a word the thesaurus gives it for."""
    return set(analyze(topic)) <= set(analyze(default_thesaurus().expand(question)))


def section_votes(hits: Sequence[Passage], passages: Sequence[Passage]) -> dict[str, float]:
    """Per passage id, the share of the hits' rank votes cast for its section.

    Each search hit votes 1/(rank + 1) for its section (a passage without one votes for itself):
    a list question whose first two hits are bullets of „Herausforderungen“ asks for that
    section, even when the third and fourth hits, from another section, hold more of its words.
    """
    tally: dict[tuple[str, int, str], float] = {}
    for rank, hit in enumerate(hits):
        key = _section_key(hit)
        tally[key] = tally.get(key, 0.0) + 1.0 / (rank + 1)
    total = sum(tally.values()) or 1.0
    return {p.id: tally.get(_section_key(p), 0.0) / total for p in passages}


def _section_key(passage: Passage) -> tuple[str, int, str]:
    if passage.section is None:
        return (passage.doc_sha, passage.unit, "\x00" + passage.id)
    return (passage.doc_sha, passage.unit, passage.section)


class EvidenceBuilder:
    """Searches, quotes and gates; also weighs the question's terms for the extractive answer."""

    def __init__(
        self,
        searcher: Searcher,
        passages: int,
        threshold: float,
        weighing: Weighing | None = None,
        topic: str = "",
    ) -> None:
        self.searcher = searcher
        self.passages = passages
        self.threshold = threshold
        self.weighing = weighing or Weighing()
        self.topic = topic
        self._item_vectors: dict[str, Any] = {}

    def prepare(self, question: str, standalone: str, ask: str | None = None) -> Prepared:
        """The evidence for `standalone` (the searched form of `question`)."""
        kind = question_kind(standalone)
        english = is_english(question)  # the answer's language
        # Coverage counts the searched words in the (German) passages: meaningless for English.
        lexical = not is_english(standalone)
        # Searched in turn until one passes the gate:
        # - without the asker's firm („… für meinen kleinen Betrieb“ picks no passage,
        #   `without_own_firm`); a number question keeps it (the size picks the figure);
        # - the whole question, on which the threshold was calibrated;
        # - its asking sentence alone: in „Wir sind ein Architekturbüro mit sechs Leuten. Wie
        #   fangen wir an?“ the context dilutes the question's embedding;
        # - the same three with the sources' topic added, where the question does not name it
        #   („Welche Hemmnisse gibt es?“ means KI, and lies far from every passage without it).
        #   Only after the others: the topic's word pulls the ranking towards passages that
        #   repeat it (on the LilyPond manuals, with „(LilyPond)“ added to every question,
        #   page hit@1 fell from 0.30 to 0.10).
        # The rules below still read the whole question (its context may bound the answer).
        firmless = standalone if asks_for_quantity(standalone) else without_own_firm(standalone)
        forms = [firmless, standalone, asking_sentences(standalone)[0]]
        if lexical and self.topic and not mentions_topic(standalone, self.topic):
            forms += [f"{form} ({self.topic})" for form in forms]
        first, *fallbacks = dict.fromkeys(forms)
        passages, votes, strength = self.gather(first, kind, lexical)
        for searched in fallbacks:
            if strength >= self.threshold:
                break
            found = self.gather(searched, kind, lexical)
            if found[2] >= self.threshold:
                passages, votes, strength = found
        refused = strength < self.threshold
        quotes = tuple(self.quote(n, p) for n, p in enumerate(passages, start=1))
        refused = refused or addresses_the_system(question) or addresses_the_system(standalone)
        texts = [p.text for p in passages]
        # A place, name or figure asked about that no passage mentions: the sources are silent.
        refused = refused or bool(missing_names(standalone, texts))
        # A figure asked for that no passage gives for what the question names (`figures`);
        # a price, a grant or a duration is a figure however the question is put („Mit welchen
        # Kosten muss ich rechnen?“ is a list question).
        if lexical and (kind == "number" or asked_unit(standalone) is not None):
            refused = refused or figure_missing(standalone, passages)
        # „Was ist das größte Hemmnis?“ where no passage ranks anything (`ranking`).
        refused = refused or ranking_missing(standalone, texts)
        # „Welche Branchen …?“ where no passage names any industry (`subjects`); decided only
        # where the evidence is not strong anyway (an everyday noun the thesaurus lacks).
        if lexical and not refused and strength < SUBJECT_CEILING:
            refused = self.unnamed_subject(standalone) is not None
        # „Was sind Assistenzsysteme?“ where the passages only list them (`mentions`).
        if lexical and kind != "list":
            refused = refused or only_named(standalone, passages)
        return Prepared(
            question, standalone, english, passages, quotes, refused, ask or standalone, kind, votes
        )

    def gather(
        self, searched: str, kind: Kind, lexical: bool
    ) -> tuple[tuple[Passage, ...], dict[str, float], float]:
        """The passages for `searched`, the section votes of a list question, the strength."""
        depth = max(self.passages, LIST_HITS) if kind == "list" else self.passages
        hits = tuple(self.searcher.search(searched, depth))
        passages = hits[: self.passages]
        votes: dict[str, float] = {}
        if kind == "list":
            passages = self.whole_sections(hits)[: self.passages]
            votes = section_votes(hits[: self.passages], passages)
        strength = evidence_strength(passages, lexical=lexical, weighing=self.weighing)
        return passages, votes, strength

    def whole_sections(self, passages: tuple[Passage, ...]) -> tuple[Passage, ...]:
        """Each passage replaced by its whole section, where it has one; each section once.

        A list question wants every item of a section; a single bullet holds one.
        """
        try:
            snapshot = self.searcher.snapshot()
        except AttributeError:  # a searcher without a store snapshot (tests' fakes)
            return passages
        wholes: dict[tuple[str, int, str], str] = {}
        for cid, chunk in snapshot.chunks.items():
            if chunk.section is None:
                continue
            key = (chunk.doc_sha, chunk.unit, chunk.section)
            held = snapshot.chunks.get(wholes.get(key, ""))
            if held is None or chunk.end - chunk.start > held.end - held.start:
                wholes[key] = cid
        out: list[Passage] = []
        for passage in passages:
            cid = wholes.get((passage.doc_sha, passage.unit, passage.section or "")) or ""
            if cid and cid != passage.id:
                chunk = snapshot.chunks[cid]
                record = snapshot.records[chunk.doc_sha]
                whole = Passage.build(chunk, record, passage.score, passage.similarity)
                passage = dataclasses.replace(whole, coverage=passage.coverage)
            if all(p.id != passage.id for p in out):
                out.append(passage)
        return tuple(out)

    def unnamed_subject(self, question: str) -> str | None:
        """What a „Welche …?“ question asks for, when no passage of the store names it."""
        try:
            index = self.searcher.snapshot().lexical
        except AttributeError:  # a searcher without a store (tests' fakes)
            return None
        return unnamed_subject(question, index.holds, index.corrections)

    def quote(self, n: int, passage: Passage) -> Citation:
        """The passage's key quote as citation `n`, verified against its page."""
        quote, span = passage_quote(passage)
        page_text = self.searcher.page_text(passage.doc_sha, passage.unit)
        return Citation(n, passage, quote, quote_occurs(quote, page_text), span)

    def matcher(self, question: str) -> Matcher:
        """Weights for the question's terms and their thesaurus expansions, by the store's idf."""
        terms = analyze(default_thesaurus().expand(question))
        # The thesaurus terms for what is asked about name its section (`Matcher.heading_weight`).
        subject = asked_subject(question)
        synonyms = set(analyze(default_thesaurus().expand(subject))) - set(analyze(subject))
        try:
            lexical = self.searcher.snapshot().lexical
            embedder = self.searcher.embedder

            def idf(term: str) -> float:
                # A term the sources never use tells no passage from another.
                return lexical.idf(term) if lexical.holds(term) else 0.0

        except AttributeError:  # a searcher without a store (tests' fakes)
            return Matcher(terms, synonyms=sorted(synonyms))
        return Matcher(
            terms,
            idf,
            synonyms=sorted(synonyms),
            query=embedder.embed_query(question),
            embed=embedder.embed_passages,
            cache=self._item_vectors,
        )
