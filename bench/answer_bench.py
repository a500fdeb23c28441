"""Answer benchmark: latency and quality per backend on the dev questions, shipped corpus.

Quality: the share of answerable questions whose citations include a gold passage (a passage
containing the gold phrase, normalised as in `retrieval eval`), and the share of unanswerable
questions refused. Latency is measured from the question, as a user waits: search, evidence,
the queue and (LLM backends) the first token and the tokens per second of generation.

`answer_rows(settings)` gives the extractive rows for `bench/run.py`; `bench/llm_bench.py` runs
the same loop with the local model.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quellenchat.settings import Settings
from quellenchat.types import letters_key

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "eval" / "dev-faktenblatt.jsonl"
Row = tuple[str, str, str, str]
QUALITY_TARGET = 0.9
EXTRACTIVE_P95_TARGET = 1.0  # seconds


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


@dataclass
class Run:
    """One backend over the dev questions."""

    totals: list[float] = field(default_factory=list)  # question → final answer
    evidence: list[float] = field(default_factory=list)  # question → evidence shown
    first_tokens: list[float] = field(default_factory=list)  # question → first LLM token
    rates: list[float] = field(default_factory=list)  # generated tokens/s after the first
    tokens: list[int] = field(default_factory=list)
    answerable: int = 0
    cited_gold: int = 0
    unanswerable: int = 0
    refused_right: int = 0
    fallbacks: int = 0  # answers with a notice (LLM unreachable, or it cited nothing)
    misses: list[str] = field(default_factory=list)

    @property
    def cited(self) -> float:
        return self.cited_gold / max(self.answerable, 1)

    @property
    def refused(self) -> float:
        return self.refused_right / max(self.unanswerable, 1)


def run_backend(answerer: Any, items: list[Any], backend: str) -> Run:
    """Answer every dev question with one backend; collect timings and outcomes."""
    from retrieval.answers import Answer, Evidence, Token

    run = Run()
    for item in items:
        start = time.perf_counter()
        first: float | None = None
        tokens = 0
        answer: Answer | None = None
        for event in answerer.stream(item.question, backend=backend):
            now = time.perf_counter()
            if isinstance(event, Evidence):
                run.evidence.append(now - start)
            elif isinstance(event, Token):
                tokens += 1
                first = first if first is not None else now
            elif isinstance(event, Answer):
                answer = event
        end = time.perf_counter()
        assert answer is not None
        run.totals.append(end - start)
        run.fallbacks += answer.notice is not None
        if backend != "extractive" and first is not None and answer.backend == backend:
            run.first_tokens.append(first - start)
            run.tokens.append(tokens)
            if tokens > 1 and end > first:
                run.rates.append((tokens - 1) / (end - first))
        if item.answerable:
            run.answerable += 1
            gold = letters_key(item.gold or "")
            hit = any(gold in letters_key(c.passage.text) for c in answer.citations)
            run.cited_gold += hit
            if not hit:
                run.misses.append(item.question)
        else:
            run.unanswerable += 1
            run.refused_right += answer.refused
            if not answer.refused:
                run.misses.append(item.question)
    return run


def quality_row(backend: str, run: Run) -> Row:
    """The quality row of one backend."""
    met = run.cited >= QUALITY_TARGET and run.refused >= QUALITY_TARGET
    note = f"Ziel je ≥ 0,9 ({'erreicht' if met else 'verfehlt'})"
    if run.fallbacks:
        note += f"; {run.fallbacks} Antworten mit Hinweis (Rückfall auf Belegstellen)"
    return (
        f"Antworten {backend}: Qualität ({run.answerable} + {run.unanswerable} Dev-Fragen)",
        f"Beleg mit Gold-Passage {run.cited:.2f}",
        f"unbeantwortbare abgelehnt {run.refused:.2f}",
        note,
    )


def latency_row(backend: str, run: Run, note: str) -> Row:
    """p50/p95 of the whole answer, from the question."""
    return (
        f"Antworten {backend}: Dauer je Antwort ab Frage",
        f"p50 {statistics.median(run.totals):.2f} s",
        f"p95 {percentile(run.totals, 0.95):.2f} s",
        note,
    )


@contextlib.contextmanager
def shipped_store(settings: Settings) -> Iterator[Settings]:
    """Settings on a temporary store holding the shipped corpus."""
    from ingest.run import run_ingest

    with tempfile.TemporaryDirectory() as tmp:
        local = settings.model_copy(
            update={"corpus": [ROOT / "corpus"], "store": Path(tmp) / "store"}
        )
        report = run_ingest(local)
        if report.exit_code == 2:
            raise RuntimeError(report.error or "Einlesen fehlgeschlagen")
        yield local


def answer_rows(settings: Settings, backends: tuple[str, ...] = ("extractive",)) -> list[Row]:
    """Ingest the shipped corpus into a temporary store and answer the dev set per backend."""
    from retrieval.answering import Answerer
    from retrieval.evaluation import read_items

    items = read_items(DEV)
    rows: list[Row] = []
    with shipped_store(settings) as local:
        answerer = Answerer(local)
        answerer.ask("Warmlauf: Was ist KI?", backend="extractive")  # embedder, BM25 index
        for backend in backends:
            run = run_backend(answerer, items, backend)
            rows.append(quality_row(backend, run))
            if backend == "extractive":
                p95 = percentile(run.totals, 0.95)
                met = "erreicht" if p95 <= EXTRACTIVE_P95_TARGET else "verfehlt"
                note = f"Ziel p95 ≤ 1 s ({met}); {len(run.totals)} Fragen"
            else:
                note = f"{len(run.totals)} Fragen"
            rows.append(latency_row(backend, run, note))
    return rows
