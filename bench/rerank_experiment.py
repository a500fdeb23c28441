"""Experiment: does a rerank stage built from e5 sentence windows help? (issue 3)

For each of the best `Settings.rerank_candidates` fused passages, take the max cosine between
the question's `query:` embedding and the `passage:` embeddings of the passage's sentence
windows (`size` consecutive sentences of `Chunk.sentences`, stride one) and mix it with the
fused score: `(1 − weight) · fused + weight · best window`. Window embeddings are computed once
per store, as ingest would compute them, so the latency measured is the stage's own; their
embedding cost is reported beside it.

Settings are chosen on the dev sets (fact sheet with XQuAD distractors, LilyPond manuals);
XQuAD-de is test data and only reported. Run with `python bench/run.py --only rerank`.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bench.retrieval_bench import CACHE, ROOT, Row, lilypond_store
from ingest.run import run_ingest
from quellenchat.embedding import Embedder
from quellenchat.settings import Settings
from quellenchat.types import Chunk, strip_urls
from retrieval.evaluation import EvalItem, evaluate, read_items, squad_corpus
from retrieval.passages import Passage
from retrieval.search import Searcher
from retrieval.snapshot import StoreSnapshot

SIZES = (3,)  # windows of 3 sentences did best in a first run with 1, 2 and 3
WEIGHTS = (0.5, 1.0)


def window_texts(chunk: Chunk, size: int) -> list[str]:
    """The chunk's windows of `size` consecutive sentences (the whole chunk if it has fewer)."""
    spans = chunk.sentences or ((0, len(chunk.text)),)
    count = max(1, len(spans) - size + 1)
    windows = [
        chunk.text[spans[i][0] : spans[min(i + size, len(spans)) - 1][1]] for i in range(count)
    ]
    # As the chunk itself is embedded: section heading for context, no URLs.
    return [
        f"{chunk.section}: {strip_urls(w)}" if chunk.section else strip_urls(w) for w in windows
    ]


@dataclass(frozen=True)
class Windows:
    """Window embeddings of every chunk of a store: rows `rows[chunk_id]` of `vectors`."""

    vectors: np.ndarray
    rows: dict[str, tuple[int, int]]
    seconds: float  # embedding time, what ingest would add

    def best(self, chunk_id: str, query: np.ndarray) -> float:
        """The max cosine between the query and the chunk's windows."""
        start, end = self.rows[chunk_id]
        return float((self.vectors[start:end] @ query).max())


def embed_windows(snapshot: StoreSnapshot, embedder: Embedder, size: int) -> Windows:
    """Embed the windows of every chunk of the snapshot once."""
    texts: list[str] = []
    rows: dict[str, tuple[int, int]] = {}
    for cid in sorted(snapshot.chunks):
        windows = window_texts(snapshot.chunks[cid], size)
        rows[cid] = (len(texts), len(texts) + len(windows))
        texts += windows
    started = time.perf_counter()
    vectors = embedder.embed_passages(texts)
    return Windows(vectors, rows, time.perf_counter() - started)


class CachingEmbedder:
    """An embedder that remembers query vectors, so the stage reuses the search's query vector."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.queries: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    @property
    def dim(self) -> int:
        """The wrapped model's dimension."""
        return self.inner.dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Passages, not cached."""
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """The query vector, computed once per text."""
        if text not in self.queries:
            self.queries[text] = self.inner.embed_query(text)
        return self.queries[text]


class WindowReranker:
    """Mixes the fused score with the best sentence-window cosine; timings in `seconds`."""

    def __init__(
        self, windows: Windows, query_vector: Callable[[str], np.ndarray], weight: float
    ) -> None:
        self.windows = windows
        self.query_vector = query_vector
        self.weight = weight
        self.seconds: list[float] = []

    def rerank(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """The same passages, best first, with the mixed score."""
        query = self.query_vector(question)  # cached: the search has just embedded it
        started = time.perf_counter()
        w = self.weight
        scored = sorted(
            (
                ((1 - w) * p.score + w * self.windows.best(p.id, query), i, p)
                for i, p in enumerate(passages)
            ),
            key=lambda t: (-t[0], t[1]),
        )
        result = [replace(p, score=score) for score, _, p in scored]
        self.seconds.append(time.perf_counter() - started)
        return result


def _stores(env_settings: Settings) -> dict[str, tuple[Settings, list[EvalItem]]]:
    """The three question sets with their stores, kept in the bench cache between runs."""
    base = CACHE / "rerank"
    xquad_corpus = base / "corpus-xquad"
    mixed_corpus = base / "corpus-mixed"
    squad: list[EvalItem] = []
    for folder in (xquad_corpus, mixed_corpus):
        folder.mkdir(parents=True, exist_ok=True)
        squad = squad_corpus(ROOT / "eval" / "xquad-de" / "xquad.de.json", folder)
    for name in ("ki-faktenblatt.txt", "metadata.toml"):
        shutil.copy(ROOT / "corpus" / name, mixed_corpus / name)
    stores: dict[str, tuple[Settings, list[EvalItem]]] = {}
    for label, folder, items in (
        (
            "Dev Faktenblatt + XQuAD-Ablenkung",
            mixed_corpus,
            read_items(ROOT / "eval" / "dev-faktenblatt.jsonl"),
        ),
        ("XQuAD-de (Test)", xquad_corpus, squad),
    ):
        settings = Settings(
            corpus=[folder], store=base / f"store-{folder.name}", models_dir=env_settings.models_dir
        )
        if run_ingest(settings).exit_code != 0:
            raise RuntimeError(f"Einlesen für {label} fehlgeschlagen")
        stores[label] = (settings, items)
    lilypond = lilypond_store(env_settings)
    if lilypond is not None:
        stores["Dev LilyPond (Seite)"] = (
            lilypond,
            read_items(ROOT / "eval" / "dev-lilypond.jsonl"),
        )
    return stores


def _hits(result: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    text = f"hit@1 {result['hit@1']:.3f} · hit@5 {result['hit@5']:.3f} · MRR {result['mrr@10']:.3f}"
    if base is not None:
        text += f" (Δ hit@1 {result['hit@1'] - base['hit@1']:+.3f})"
    return text


def _ms(seconds: Sequence[float]) -> str:
    ordered = sorted(s * 1000 for s in seconds)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    return f"p50 {statistics.median(ordered):.2f} ms · p95 {p95:.2f} ms"


def measure(
    label: str, settings: Settings, items: Sequence[EvalItem], embedder: CachingEmbedder
) -> tuple[list[Row], dict[tuple[int, float], dict[str, Any]]]:
    """Baseline and every (size, weight) variant on one question set; rows and raw results."""
    searcher = Searcher(settings, embedder=embedder)
    searcher.reranker = None
    base = evaluate(items, lambda q: searcher.search(q, 10))
    rows: list[Row] = [(f"{label}: ohne Rerank", _hits(base), "", "Vergleichsbasis")]
    results: dict[tuple[int, float], dict[str, Any]] = {}
    snapshot = searcher.snapshot()
    for size in SIZES:
        windows = embed_windows(snapshot, embedder, size)
        count = len(windows.vectors)
        per_chunk = count / max(len(snapshot.chunks), 1)
        on_the_fly = settings.rerank_candidates * per_chunk * windows.seconds / count
        rows.append(
            (
                f"{label}: Fenster à {size} Sätze einbetten (einmal, wie beim Einlesen)",
                f"{count} Fenster in {windows.seconds:.0f} s ({per_chunk:.1f} je Abschnitt)",
                f"{count / windows.seconds:.1f} Fenster/s",
                f"pro Anfrage statt vorberechnet: ≈ {on_the_fly * 1000:.0f} ms",
            )
        )
        for weight in WEIGHTS:
            reranker = WindowReranker(windows, embedder.embed_query, weight)
            searcher.reranker = reranker
            result = evaluate(items, lambda q: searcher.search(q, 10))
            results[(size, weight)] = result
            rows.append(
                (
                    f"{label}: Fenster {size}, Gewicht {weight:.2f}",
                    _hits(result, base),
                    _ms(reranker.seconds),
                    "Latenz der Stufe (Fenster vorberechnet)",
                )
            )
    searcher.reranker = None
    return rows, results


def rerank_rows(env_settings: Settings) -> list[Row]:
    """Measure the sentence-window rerank stage on all three sets."""
    from quellenchat.embedding import make_embedder

    embedder = CachingEmbedder(make_embedder(env_settings))
    rows: list[Row] = []
    for label, (settings, items) in _stores(env_settings).items():
        found, _ = measure(label, settings, items, embedder)
        rows += found
    return rows
