"""Experiment (issue #14): questions written by the local model for each chunk, at ingest.

For every fact-sheet chunk the bundled LLM writes three questions in everyday words, the way a
KMU employee would ask (cached per chunk id in `data/bench-cache/doc2query/`, so a second run
generates nothing). At search time each passage of the hybrid search's top 10 gets a bonus of
`weight` × the best cosine between the user's question and that chunk's written questions (both
embedded as queries), and the ten are re-sorted. The weight is chosen on the tune split only; the
held-out split is reported beside it.

Only the fact sheet's chunks get questions (the XQuAD distractors would cost 240 more
generations); the bonus is applied within the top 10, where the competitors of a miss are almost
always other fact-sheet passages (`bench/results/realistic-misses.md`).

`python bench/doc2query_experiment.py` writes `bench/results/doc2query.md`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.realistic_bench import CACHE, FACT_SHEET_SET, fact_sheet_store  # noqa: E402
from quellenchat.settings import GEMMA_EMBEDDER, Settings  # noqa: E402
from retrieval.evaluation import SPLITS, evaluate, read_items, split_items  # noqa: E402
from retrieval.passages import Passage  # noqa: E402
from retrieval.search import Searcher  # noqa: E402

FACT_SHEET = "ki-faktenblatt.txt"
WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
PROMPT = (
    "Hier ist ein Abschnitt aus einem Faktenblatt über Künstliche Intelligenz für kleine und "
    "mittlere Unternehmen.\n\nAbschnitt:\n{text}\n\nSchreibe drei kurze Fragen, die dieser "
    "Abschnitt beantwortet, so wie Mitarbeitende eines kleinen Betriebs sie in eigenen Worten "
    "stellen würden – mit Alltagswörtern statt der Fachbegriffe des Abschnitts. Eine Frage je "
    "Zeile, ohne Nummern, ohne weitere Erklärung."
)


def written_questions(
    settings: Settings, chunks: dict[str, str]
) -> tuple[dict[str, list[str]], float]:
    """Three questions per chunk from the local model, cached; the seconds spent generating."""
    from langchain_core.messages import HumanMessage

    from retrieval.llm import make_chat_model

    cache = CACHE / "doc2query"
    cache.mkdir(parents=True, exist_ok=True)
    model = None
    spent = 0.0
    found: dict[str, list[str]] = {}
    for chunk_id, text in chunks.items():
        key = hashlib.sha1(text.encode()).hexdigest()
        path = cache / f"{key}.json"
        if not path.exists():
            model = model or make_chat_model(settings, "local")
            started = time.perf_counter()
            reply = model.invoke([HumanMessage(PROMPT.format(text=text[:1500]))], max_tokens=120)
            spent += time.perf_counter() - started
            lines = [
                line.strip(" -•*0123456789.").strip() for line in str(reply.content).splitlines()
            ]
            path.write_text(json.dumps([q for q in lines if q.endswith("?")][:3]), encoding="utf-8")
        found[chunk_id] = json.loads(path.read_text(encoding="utf-8"))
    return found, spent


def reranked(
    searcher: Searcher, vectors: dict[str, np.ndarray], weight: float
) -> Callable[[str], list[Passage]]:
    def search(question: str) -> list[Passage]:
        passages = searcher.search(question, 10)
        if weight == 0.0:
            return passages
        query = searcher.embedder.embed_query(question)

        def bonus(p: Passage) -> float:
            v = vectors.get(p.id)
            return 0.0 if v is None or not len(v) else float(np.max(v @ query))

        return sorted(passages, key=lambda p: p.score + weight * bonus(p), reverse=True)

    return search


REWRITE_PROMPT = (
    "Ein Mitarbeiter eines kleinen Betriebs stellt eine Frage zu einem Faktenblatt über "
    "Künstliche Intelligenz (KI) in kleinen und mittleren Unternehmen (KMU). Das Faktenblatt "
    "spricht von Anwendungsbereichen, Chancen, Herausforderungen, Mittelstand, Produktion, "
    "Unternehmen, Nachhaltigkeit, Literatur und Links.\n\nFrage: {question}\n\n"
    "Formuliere die Frage in einem Satz so um, wie das Faktenblatt es ausdrücken würde. "
    "Gib nur die umformulierte Frage aus."
)


def rewrites(settings: Settings, questions: Sequence[str]) -> tuple[dict[str, str], list[float]]:
    """The local model's rewrite of each question into the sheet's words, cached; seconds each."""
    from langchain_core.messages import HumanMessage

    from retrieval.llm import make_chat_model

    cache = CACHE / "rewrite"
    cache.mkdir(parents=True, exist_ok=True)
    model = None
    seconds: list[float] = []
    found: dict[str, str] = {}
    for question in questions:
        path = cache / f"{hashlib.sha1(question.encode()).hexdigest()}.txt"
        if not path.exists():
            model = model or make_chat_model(settings, "local")
            started = time.perf_counter()
            reply = model.invoke(
                [HumanMessage(REWRITE_PROMPT.format(question=question))], max_tokens=60
            )
            seconds.append(time.perf_counter() - started)
            path.write_text(str(reply.content).strip().splitlines()[0] if reply.content else "")
        found[question] = path.read_text() or question
    return found, seconds


def fused_with_rewrite(
    searcher: Searcher, rewritten: dict[str, str], weight: float
) -> Callable[[str], list[Passage]]:
    def search(question: str) -> list[Passage]:
        first = searcher.search(question, 10)
        if weight == 0.0:
            return first
        second = {p.id: p.score for p in searcher.search(rewritten.get(question, question), 10)}
        pool = {p.id: p for p in first}
        score = {p.id: p.score + weight * second.get(p.id, 0.0) for p in first}
        for p in searcher.search(rewritten.get(question, question), 10):
            if p.id not in pool:
                pool[p.id] = p
                score[p.id] = weight * p.score
        return sorted(pool.values(), key=lambda p: score[p.id], reverse=True)[:10]

    return search


def row(weight: float, items: Sequence[Any], search: Callable[[str], list[Passage]]) -> str:
    """One table row: hit@1 · hit@5 · list recall@5 on each split (printed as it comes)."""
    cells = []
    for split in SPLITS:
        r = evaluate(split_items(items, split), search)
        cells.append(f"{r['hit@1']:.2f} · {r['hit@5']:.2f} · {r.get('list_recall@5') or 0:.2f}")
    line = f"| {weight} | {' | '.join(cells)} |"
    print(line, flush=True)
    return line


def main() -> int:
    from bench.run import machine

    settings = fact_sheet_store(Settings(), GEMMA_EMBEDDER)
    searcher = Searcher(settings)
    snapshot = searcher.snapshot()
    sheet = {sha for sha, r in snapshot.records.items() if r.source == FACT_SHEET}
    chunks = {cid: c.text for cid, c in snapshot.chunks.items() if c.doc_sha in sheet}
    questions, spent = written_questions(settings, chunks)
    vectors = {
        cid: np.stack([searcher.embedder.embed_query(q) for q in qs]) if qs else np.zeros((0,))
        for cid, qs in questions.items()
    }
    items = read_items(FACT_SHEET_SET)
    lines = [
        "# Experiment: vom lokalen Modell geschriebene Fragen je Abschnitt (doc2query)",
        "",
        f"Maschine: {machine()}. Faktenblatt + XQuAD-de, EmbeddingGemma-300M, hybride Suche; "
        f"{len(chunks)} Faktenblatt-Einträge, Erzeugung in diesem Lauf {spent:.0f} s "
        f"({spent / max(1, len(chunks)):.1f} s je Eintrag, 0 = aus dem Cache).",
        "",
        "| Gewicht | tune hit@1 · hit@5 · Listen-Recall@5 | heldout (dieselben) |",
        "|---|---|---|",
    ]
    for weight in WEIGHTS:
        lines.append(row(weight, items, reranked(searcher, vectors, weight)))
    rewritten, seconds = rewrites(settings, [item.question for item in items])
    lines += [
        "",
        "## Umformulieren der Frage durch das lokale Modell (Suche mit Frage und Umformulierung)",
        "",
        f"Dauer je Umformulierung in diesem Lauf (unter Last): p50 "
        f"{np.median(seconds) if seconds else 0:.1f} s, p95 "
        f"{np.percentile(seconds, 95) if seconds else 0:.1f} s ({len(seconds)} erzeugt).",
        "",
        "| Gewicht der Umformulierung | tune | heldout |",
        "|---|---|---|",
    ]
    for weight in (0.0, 0.5, 1.0):
        lines.append(row(weight, items, fused_with_rewrite(searcher, rewritten, weight)))
    lines += ["", "Beispiele (erste fünf Einträge):", ""]
    for cid, qs in list(questions.items())[:5]:
        lines.append(f"- {chunks[cid][:80]!r} → {qs}")
    lines += ["", "Umformulierungen (erste acht):", ""]
    for item in items[:8]:
        lines.append(f"- {item.question} → {rewritten[item.question]}")
    (ROOT / "bench" / "results" / "doc2query.md").write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
