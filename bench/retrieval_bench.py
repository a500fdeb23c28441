"""Retrieval benchmarks: quality beside its baselines, and search latency."""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ingest.run import run_ingest
from quellenchat.settings import Settings
from quellenchat.types import Chunk, DocumentInfo, Page
from retrieval.evaluation import evaluate, read_items, squad_corpus
from retrieval.passages import Passage
from retrieval.search import Fusion, Searcher

ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str, str]
SearchFn = Callable[[str], list[Passage]]


def _hits(result: dict[str, float]) -> str:
    return f"hit@1 {result['hit@1']:.3f} · hit@5 {result['hit@5']:.3f} · MRR {result['mrr@10']:.3f}"


def _lexical_only(searcher: Searcher) -> SearchFn:
    def search(question: str) -> list[Passage]:
        snapshot = searcher.snapshot()
        found = snapshot.lexical.search(question, 10)
        return [_as_passage(snapshot.chunks[cid], score) for cid, score in found]

    return search


def _as_passage(chunk: Chunk, score: float, source: str = "") -> Passage:
    return Passage(
        id=chunk.id,
        source=source,
        title="",
        text=chunk.text,
        score=score,
        similarity=score,
        doc_sha=chunk.doc_sha,
        unit=chunk.unit,
        start=chunk.start,
        end=chunk.end,
    )


def langchain_baseline(corpus: Path, searcher: Searcher) -> SearchFn:
    """The usual tutorial retriever: RecursiveCharacterTextSplitter 1000/200 + Chroma."""
    import chromadb
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    texts, sources = [], []
    for path in sorted(corpus.glob("*.txt")):
        for piece in splitter.split_text(path.read_text(encoding="utf-8")):
            texts.append(piece)
            sources.append(path.name)
    vectors = searcher.embedder.embed_passages(texts)
    collection = chromadb.EphemeralClient().create_collection(
        "tutorial", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    ids = [str(i) for i in range(len(texts))]
    collection.add(
        ids=ids, documents=texts, embeddings=vectors, metadatas=[{"s": s} for s in sources]
    )

    def search(question: str) -> list[Passage]:
        found = collection.query(
            query_embeddings=searcher.embedder.embed_query(question).reshape(1, -1), n_results=10
        )
        docs = found["documents"][0]  # type: ignore[index]
        metas = found["metadatas"][0]  # type: ignore[index]
        return [
            _as_passage(Chunk("", 0, 0, len(d), d), 0.0, str(m["s"]))
            for d, m in zip(docs, metas, strict=True)
        ]

    return search


def quality(env_settings: Settings) -> list[Row]:
    """Dev questions with XQuAD-de paragraphs as distractors, XQuAD-de itself, and latency."""
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    squad = squad_corpus(ROOT / "eval" / "xquad-de" / "xquad.de.json", corpus)
    xquad_only = Settings(corpus=[corpus], store=tmp / "xquad", models_dir=env_settings.models_dir)
    started = time.perf_counter()
    run_ingest(xquad_only)
    ingest_seconds = time.perf_counter() - started
    for name in ("ki-faktenblatt.txt", "metadata.toml"):
        shutil.copy(ROOT / "corpus" / name, corpus / name)
    mixed = Settings(corpus=[corpus], store=tmp / "mixed", models_dir=env_settings.models_dir)
    run_ingest(mixed)

    dev = read_items(ROOT / "eval" / "dev-faktenblatt.jsonl")
    for label, settings, items in (
        ("Dev-Fragen + XQuAD-Ablenkung", mixed, dev),
        ("XQuAD-de (1.190 Fragen)", xquad_only, squad),
    ):
        searcher = Searcher(settings)
        ours = evaluate(items, lambda q, s=searcher: s.search(q, 10))
        dense = Searcher(settings, embedder=searcher.embedder, fusion=Fusion(lexical_bonus=0.0))
        dense_only = evaluate(items, lambda q, s=dense: s.search(q, 10))
        bm25 = evaluate(items, _lexical_only(searcher))
        tutorial = evaluate(items, langchain_baseline(corpus, searcher))
        rows += [
            (f"{label}: Quellenchat", _hits(ours), "", "Ziel dev ≥ 0,90/0,97; XQuAD ≥ 0,93/0,99"),
            (f"{label}: nur e5 (dicht)", _hits(dense_only), "Vergleich", ""),
            (f"{label}: nur BM25 (deutsch)", _hits(bm25), "Vergleich", ""),
            (f"{label}: LangChain-Tutorial 1000/200 + Chroma", _hits(tutorial), "Vergleich", ""),
        ]
        if label.startswith("Dev"):
            rows.append(_refusal_row(ours))
    rows.append(("XQuAD-de einlesen (240 Absätze, im Prozess)", f"{ingest_seconds:.1f} s", "", ""))
    questions = [item.question for item in dev]
    p50, p95 = latency(Searcher(mixed, embedder=searcher.embedder), questions)
    rows.append(
        (
            "Suche, Latenz (Modell geladen, 275 Abschnitte)",
            f"p50 {p50:.0f} ms",
            f"p95 {p95:.0f} ms",
            "Ziel p95 ≤ 100 ms",
        )
    )
    big = Searcher(large_store(mixed, searcher), embedder=searcher.embedder)
    started = time.perf_counter()
    big.snapshot()
    load = time.perf_counter() - started
    p50, p95 = latency(big, questions, rounds=1)
    rows.append(
        (
            "Suche, Latenz bei 10.000 Abschnitten",
            f"p50 {p50:.0f} ms",
            f"p95 {p95:.0f} ms",
            f"Ziel p95 ≤ 200 ms; Index-Aufbau beim Start {load:.1f} s",
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _refusal_row(result: dict[str, object]) -> Row:
    a = result["top_similarity_answerable"]
    u = result["top_similarity_unanswerable"]
    return (
        "Ähnlichkeit bester Passage: beantwortbar / nicht beantwortbar",
        f"Median {a['median']:.3f} / {u['median']:.3f}",  # type: ignore[index]
        f"min {a['min']:.3f} / max {u['max']:.3f}",  # type: ignore[index]
        "Grundlage der Ablehnungsschwelle",
    )


def latency(searcher: Searcher, questions: Sequence[str], rounds: int = 3) -> tuple[float, float]:
    """p50 and p95 of `search` in milliseconds, model loaded and snapshot warm."""
    searcher.search(questions[0], 10)
    times = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            searcher.search(question, 10)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def large_store(settings: Settings, searcher: Searcher, size: int = 10_000) -> Settings:
    """A store of `size` German chunks; random unit vectors, since only speed is measured here."""
    import json

    from ingest.index import StoreWriter
    from quellenchat.storage import SourceRecord, open_client

    words = " ".join(
        p["context"]
        for a in json.loads((ROOT / "eval" / "xquad-de" / "xquad.de.json").read_text())["data"]
        for p in a["paragraphs"]
    ).split()
    rng = random.Random(7)
    big = Settings(store=settings.store.parent / "big", models_dir=settings.models_dir)
    writer = StoreWriter(open_client(big), searcher.embedder.name, "bench")
    per_doc = 500
    for d in range(size // per_doc):
        sha = f"{d:064x}"
        chunks = []
        for i in range(per_doc):
            start = rng.randrange(0, len(words) - 150)
            text = " ".join(words[start : start + 150])
            chunks.append(Chunk(sha, i, 0, len(text), text, sentences=((0, len(text)),)))
        units = [Page(i, c.text) for i, c in enumerate(chunks)]

        def embed(texts: Sequence[str]) -> np.ndarray:
            v = (
                np.random.default_rng(len(texts))
                .standard_normal((len(texts), 384))
                .astype(np.float32)
            )
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        record = SourceRecord(
            f"doc{d}.txt", sha, DocumentInfo(f"Dokument {d}"), 1, per_doc, per_doc, "2026-01-01"
        )
        writer.write_document(record, units, chunks, embed)
    return big
