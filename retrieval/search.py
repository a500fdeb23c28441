"""Hybrid German search: dense (e5 in Chroma) and lexical (BM25) fused, near-duplicates dropped."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from quellenchat.settings import GEMMA_EMBEDDER
from quellenchat.storage import (
    CHUNKS,
    check_embedder,
    describe,
    get_collection,
    open_client,
    read_page_text,
    read_sources,
    translate_errors,
    where_in,
)
from retrieval.highlight import NEGATIONS, asks_for_quantity, has_figure, key_sentences
from retrieval.lexical import GermanAnalyzer, analyze
from retrieval.passages import Passage
from retrieval.question_kind import without_self_introduction
from retrieval.rerank import make_reranker
from retrieval.snapshot import StoreSnapshot, load_snapshot, manifest_version
from retrieval.thesaurus import default_thesaurus

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from quellenchat.embedding import Embedder
    from quellenchat.settings import Settings


PAGE_CACHE = 2048  # cleaned page texts kept per searcher (a few KB each)


@dataclass(frozen=True)
class Fusion:
    """How dense and lexical scores are fused.

    `bonus` (default): dense cosine plus a bounded lexical bonus, `lexical_bonus × BM25 / best
    BM25`, for every candidate (also a dense one just outside the lexical list), so the fused
    score stays on the cosine scale. `rrf`: reciprocal rank fusion,
    `1 / (rrf_k + dense rank) + lexical_weight / (rrf_k + lexical rank)`.

    Checked by `bench/tune_fusion.py` on the dev sets (fact sheet with XQuAD-de paragraphs as
    distractors, LilyPond manuals), never on XQuAD-de: no other bonus or RRF answers two more
    of the 60 questions at rank 1 than a bonus of 0.08. RRF ignores margins, so a noisy BM25
    list outvotes a clear dense winner on the fact sheet (hit@1 0.85 against 0.95). Results:
    `bench/results/tune_fusion.md`.
    """

    method: Literal["bonus", "rrf"] = "bonus"
    lexical_bonus: float = 0.08
    rrf_k: int = 60
    lexical_weight: float = 1.0
    candidates: int = 50
    duplicate_overlap: float = 0.85
    # The lexical query also looks for the sources' terms of the question's everyday words
    # (`retrieval.thesaurus`); false searches the question's own words only.
    expand: bool = True
    # Added to passages whose section heading a thesaurus word for one of the question's words
    # names: „Wie fange ich an?“ → „Digitale Mindestanforderungen“, „Hemmnisse“ →
    # „Herausforderungen“. The question's own words do not count: they reach the heading through
    # BM25 already, and in a long manual a heading word („Noten“) names many sections.
    heading_bonus: float = 0.0


# The bonus is on the cosine scale, and EmbeddingGemma's cosines spread wider than e5's (best
# passage 0.31-0.72 for answerable questions, e5 0.82-0.92), so the same bonus weighs less
# beside them. Measured on the four read realistic splits on 7.12.2026 (hit@1 tune · heldout ·
# fresh · fresh2): 0.08 gives 0.89 · 0.88 · 0.86 · 0.66, 0.12 gives 0.89 · 0.88 · 0.91 · 0.66
# (fresh2 hit@5 0.89 -> 0.94, list recall 0.76 -> 0.90), 0.16 loses one on tune and heldout.
# The heading bonus, measured on the six read splits (7.12.2026 noon, fact sheet only, main gold
# at rank 1 of 231 answerable questions): none 175, 0.06 182, 0.12 188, 0.2 179; without the
# vague keys (`VAGUE_KEYS`) 0.09 190, 0.12 191 (hit@5 225 either way). With the question's own
# words the LilyPond manuals lost (page hit@1 tune 0.38 -> 0.29, heldout hit@5 0.70 -> 0.60);
# with the thesaurus's words only they are unchanged and the fact sheet keeps 189 of the 191.
# Not measured with e5: off there.
EMBEDDER_FUSIONS = {GEMMA_EMBEDDER: Fusion(lexical_bonus=0.12, heading_bonus=0.12)}


def default_fusion(embedder: str) -> Fusion:
    """The fusion the embedder named `embedder` was measured best with (`Fusion()` otherwise)."""
    return EMBEDDER_FUSIONS.get(embedder, Fusion())


class Searcher:
    """Answers `search(question, k, filters)` from the store; never writes it."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        client: ClientAPI | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        from quellenchat.embedding import make_embedder

        self.settings = settings
        self.client = client or open_client(settings)
        self.embedder = embedder or make_embedder(settings)
        self.fusion = fusion or default_fusion(self.embedder.name)
        self.reranker = make_reranker(settings)
        self._snapshot: StoreSnapshot | None = None
        self._lock = threading.Lock()
        # Cleaned page texts that quotes were checked against, for the current snapshot.
        self._pages: OrderedDict[tuple[str, int], str] = OrderedDict()

    def snapshot(self) -> StoreSnapshot:
        """The current committed store content, reloaded when the manifest has changed."""
        version = manifest_version(read_sources(self.client))
        with self._lock:
            if self._snapshot is None or self._snapshot.version != version:
                check_embedder(self.client, self.embedder.name)
                self._snapshot = load_snapshot(self.client)
                self._pages.clear()
            return self._snapshot

    def page_text(self, doc_sha: str, unit: int) -> str | None:
        """The stored cleaned text of a document's page (unit), or None if the store lacks it.

        Read from the store once per snapshot and then kept (at most `PAGE_CACHE` pages): a page
        belongs to the content hash `doc_sha`, and the cache empties whenever the manifest
        changes, so a rebuilt or re-ingested store is read afresh.
        """
        key = (doc_sha, unit)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        text = read_page_text(self.client, doc_sha, unit)
        if text is not None:
            with self._lock:
                self._pages[key] = text
                while len(self._pages) > PAGE_CACHE:
                    self._pages.popitem(last=False)
        return text

    def search(
        self, question: str, k: int = 10, filters: Mapping[str, Any] | None = None
    ) -> list[Passage]:
        """The k best passages for a German question, best first."""
        snapshot = self.snapshot()
        allowed = snapshot.allowed_shas(filters)
        if not question.strip() or not allowed or not snapshot.chunks:
            return []
        quantity = asks_for_quantity(question)
        whole = question
        if not quantity:  # „… mit 12 Leuten. Wie viele Betriebe in meiner Größe …?“ needs it
            question = without_self_introduction(question)
        query = self.embedder.embed_query(question)
        dense = self._dense(query, allowed)
        allowed_ids = (
            None
            if not filters
            else {cid for cid, c in snapshot.chunks.items() if c.doc_sha in set(allowed)}
        )
        # A long word no passage holds, one letter off one that some do, is that word misspelt.
        asked = analyze(question)
        corrected = snapshot.lexical.corrections(asked)
        fixed = [term for word in corrected.values() for term in analyze(word)]  # and its parts
        terms = (set(asked) - corrected.keys()) | set(fixed)
        added = default_thesaurus().added(question) if self.fusion.expand else []
        scores = snapshot.lexical.query(" ".join([question, *added]), fixed)
        lexical = scores.top(self.fusion.candidates, allowed=allowed_ids)
        similarity = dict(dense)
        similarity |= self._similarities(query, [c for c, _ in lexical if c not in similarity])
        fused = fuse(self.fusion, similarity, lexical, scores.score)
        boosted: set[str] = set()
        if self.fusion.heading_bonus:
            named = default_thesaurus().added(question, without=VAGUE_KEYS) if added else []
            fused, boosted = named_sections_first(
                fused,
                frozenset(_whole_words(" ".join(named))),
                {cid: snapshot.chunks[cid].section for cid in fused if cid in snapshot.chunks},
                self.fusion.heading_bonus,
            )
        if quantity:
            fused = counting_first(fused, terms, snapshot.sentence_terms)
        passages = [
            Passage.build(
                snapshot.chunks[cid],
                snapshot.records[snapshot.chunks[cid].doc_sha],
                score,
                similarity[cid],
            )
            for cid, score in fused.items()
            if cid in snapshot.chunks
        ]
        if self.reranker is not None:
            head = self.settings.rerank_candidates
            passages = self.reranker.rerank(question, passages[:head]) + passages[head:]
        top = collapse_duplicates(
            passages, k, self.fusion.duplicate_overlap, lambda p: snapshot.terms(p.id)
        )
        if question != whole:
            # The refusal's threshold was calibrated on whole questions; the opening only ranks
            # no passage, so the gate keeps the whole question's cosine where it is higher.
            kept = self._similarities(self.embedder.embed_query(whole), [p.id for p in top])
            top = [replace(p, similarity=max(p.similarity, kept.get(p.id, 0.0))) for p in top]
        related = frozenset(analyze(" ".join(added)))
        bridges = default_thesaurus().related(question) if self.fusion.expand else {}
        weight = sum(snapshot.lexical.idf(t) for t in terms) or 1.0
        return [
            replace(
                p,
                section_bonus=self.fusion.heading_bonus if p.id in boosted else 0.0,
                highlights=self._highlights(snapshot, p.id, terms, quantity, related),
                coverage=_coverage(
                    terms,
                    snapshot.terms(p.id),
                    bridges,
                    snapshot.lexical.idf,
                    heading=frozenset(analyze(p.section or "")),
                )
                / weight,
            )
            for p in top
        ]

    @staticmethod
    def _highlights(
        snapshot: StoreSnapshot,
        cid: str,
        terms: set[str],
        quantity: bool,
        related: frozenset[str],
    ) -> tuple[tuple[int, int], ...]:
        chunk = snapshot.chunks[cid]
        spans = chunk.sentences or ((0, len(chunk.text)),)
        return key_sentences(
            terms,
            spans,
            snapshot.sentence_terms[cid],
            snapshot.lexical.idf,
            quantity=quantity,
            related=related,
        )

    def _dense(self, query: np.ndarray, allowed: Sequence[str]) -> list[tuple[str, float]]:
        collection = get_collection(self.client, CHUNKS)
        if collection is None:
            return []
        with translate_errors(describe(self.client)):
            result = collection.query(
                query_embeddings=query.reshape(1, -1).astype(np.float32),
                n_results=self.fusion.candidates,
                where=where_in("doc_sha", allowed),
                include=["distances"],
            )
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    def _similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        collection = get_collection(self.client, CHUNKS)
        if collection is None or not ids:
            return {}
        with translate_errors(describe(self.client)):
            result = collection.get(ids=list(ids), include=["embeddings"])
        vectors = np.asarray(result["embeddings"], dtype=np.float32)
        return {cid: float(v @ query) for cid, v in zip(result["ids"], vectors, strict=True)}


# A passage whose every figure is negated („40% … setzen weder KI ein noch planen …“) counts
# those who do not: under a number question that is not negated it loses this much.
NEGATED_FIGURES_PENALTY = 0.05


def counting_first(
    fused: Mapping[str, float],
    asked: set[str],
    sentence_terms: Mapping[str, Sequence[frozenset[str]]],
) -> dict[str, float]:
    """`fused` with `NEGATED_FIGURES_PENALTY` taken from passages whose figures are all negated.

    A negated question („Wie viele … setzen keine KI ein?“) is asking for just those.
    """
    if asked & NEGATIONS:
        return dict(fused)
    out: dict[str, float] = {}
    for cid, score in fused.items():
        figures = [t for t in sentence_terms.get(cid, ()) if has_figure(t)]
        if figures and all(t & NEGATIONS for t in figures):
            score -= NEGATED_FIGURES_PENALTY
        out[cid] = score
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# Thesaurus keys too vague to name a section: „nutzen“, „einsetzen“ and „bringen“ are the verbs
# of nearly every question („Welche Firmen nutzen KI?“ is no question about the
# „Anwendungsbereiche“, „Bringen Chatbots was?“ none about the „Chancen“), „wofür“ is a question
# word, and „Hilfe“ shares its stem with „hilft“.
VAGUE_KEYS = ("nutzen", "einsetzen", "wofür", "Hilfe", "bringen")
# Headings and the thesaurus's words are compared by whole words: „weitesten“ is not
# „Weiterführende“.
_whole_words = GermanAnalyzer(splitter=None)
# Words of headings that name no topic of their own.
_HEADING_STOP = frozenset(_whole_words("KI Künstliche Intelligenz ein paar zum"))


def named_sections_first(
    fused: Mapping[str, float],
    asked: frozenset[str],
    sections: Mapping[str, str | None],
    bonus: float,
) -> tuple[dict[str, float], set[str]]:
    """`fused` with `bonus` added to passages whose section heading the question names.

    Also the ids of those passages.
    """
    out: dict[str, float] = {}
    boosted: set[str] = set()
    for cid, score in fused.items():
        heading = frozenset(_whole_words(sections.get(cid) or "")) - _HEADING_STOP
        if heading & asked:
            boosted.add(cid)
            score += bonus
        out[cid] = score
    return dict(sorted(out.items(), key=lambda kv: -kv[1])), boosted


def fuse(
    fusion: Fusion,
    similarity: Mapping[str, float],
    lexical: Sequence[tuple[str, float]],
    bm25: Callable[[str], float],
) -> dict[str, float]:
    """Fused scores of the candidates (`similarity` holds every one), best first.

    `lexical` is the lexical top list, best first; `bm25` gives any candidate's BM25 score, so
    a dense candidate just outside the lexical list still gets its bonus.
    """
    if fusion.method == "rrf":
        k = fusion.rrf_k
        dense_order = sorted(similarity, key=lambda cid: -similarity[cid])
        scores = {cid: 1.0 / (k + rank) for rank, cid in enumerate(dense_order, start=1)}
        for rank, (cid, _) in enumerate(lexical, start=1):
            scores[cid] = scores.get(cid, 0.0) + fusion.lexical_weight / (k + rank)
    else:
        best = lexical[0][1] if lexical else 1.0
        bonus = fusion.lexical_bonus
        scores = {cid: sim + bonus * bm25(cid) / best for cid, sim in similarity.items()}
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def collapse_duplicates(
    passages: Sequence[Passage],
    k: int,
    overlap: float,
    terms_of: Callable[[Passage], frozenset[str]],
) -> list[Passage]:
    """The first k passages of which no two are near-duplicates (term-set Jaccard ≥ `overlap`)."""
    kept: list[Passage] = []
    kept_terms: list[frozenset[str]] = []
    for passage in passages:
        terms = terms_of(passage)
        if any(_overlap(terms, other) >= overlap for other in kept_terms):
            continue
        kept.append(passage)
        kept_terms.append(terms)
        if len(kept) == k:
            break
    return kept


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    # Jaccard, not containment: a short bullet whose few terms recur in a long passage
    # must not knock that passage out.
    if not a or not b:
        return 1.0 if a == b else 0.0
    return len(a & b) / len(a | b)


def _coverage(
    terms: set[str],
    held: frozenset[str] | set[str],
    bridges: Mapping[str, frozenset[str]],
    idf: Callable[[str], float],
    heading: frozenset[str] = frozenset(),
) -> float:
    """The idf weight of the question's terms that a passage holds, itself or by the thesaurus.

    A term counts when the passage holds it, or a source term the thesaurus gives for it in its
    text or its section's heading („Hemmnisse“ is held by a bullet under „Herausforderungen“).
    On the realistic `tune` questions this kept one more answerable question from the refusal
    (false refusals 0.067 → 0.044, named 0.889 → 0.911) and let one more near-miss through
    (refused 0.864 → 0.818).
    """
    bridged = held | heading
    return sum(idf(t) for t in terms if t in held or bridges.get(t, frozenset()) & bridged)
