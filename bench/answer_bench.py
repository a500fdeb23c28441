"""Answer benchmark: latency and quality per backend on the dev questions, shipped corpus.

Quality: the share of answerable questions whose citations include a gold passage (a passage
containing the gold phrase, normalised as in `retrieval eval`), and the share of unanswerable
questions refused. Latency: per answer, and for LLM backends the time to the first token
(after the evidence, which is streamed earlier) and tokens per second of generation.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from quellenchat.settings import Settings
from quellenchat.types import letters_key

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "eval" / "dev-faktenblatt.jsonl"
Row = tuple[str, str, str, str]


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def run_backend(answerer: Any, items: list[Any], backend: str) -> dict[str, Any]:
    """Answer every dev question with one backend; collect timings and outcomes."""
    from retrieval.answers import Answer, Evidence, Token

    totals, first_tokens, rates = [], [], []
    cited_gold = refused_right = answerable = unanswerable = 0
    notices = 0
    for item in items:
        start = time.perf_counter()
        first: float | None = None
        evidence_at: float | None = None
        tokens = 0
        answer: Answer | None = None
        for event in answerer.stream(item.question, backend=backend):
            now = time.perf_counter()
            if isinstance(event, Evidence):
                evidence_at = now
            elif isinstance(event, Token):
                tokens += 1
                first = first if first is not None else now
            elif isinstance(event, Answer):
                answer = event
        end = time.perf_counter()
        assert answer is not None
        totals.append(end - start)
        notices += answer.notice is not None
        if first is not None and evidence_at is not None and not answer.refused:
            first_tokens.append(first - evidence_at)
            if end > first and tokens > 1:
                rates.append((tokens - 1) / (end - first))
        if item.answerable:
            answerable += 1
            gold = letters_key(item.gold or "")
            cited_gold += any(gold in letters_key(c.passage.text) for c in answer.citations)
        else:
            unanswerable += 1
            refused_right += answer.refused
    return {
        "totals": totals,
        "first_tokens": first_tokens,
        "rates": rates,
        "cited": cited_gold / max(answerable, 1),
        "refused": refused_right / max(unanswerable, 1),
        "notices": notices,
    }


def answer_rows(settings: Settings, backends: tuple[str, ...] = ("extractive",)) -> list[Row]:
    """Ingest the shipped corpus into a temporary store and answer the dev set per backend."""
    from ingest.run import run_ingest
    from retrieval.answering import Answerer
    from retrieval.evaluation import read_items

    items = read_items(DEV)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        local = settings.model_copy(
            update={"corpus": [ROOT / "corpus"], "store": Path(tmp) / "store"}
        )
        run_ingest(local)
        answerer = Answerer(local)
        answerer.ask("Warmlauf: Was ist KI?", backend="extractive")
        for backend in backends:
            result = run_backend(answerer, items, backend)
            totals = result["totals"]
            rows.append(
                (
                    f"Antworten {backend}: Qualität (Dev-Set)",
                    f"Beleg mit Gold-Passage {result['cited']:.2f}",
                    f"unbeantwortbare abgelehnt {result['refused']:.2f}",
                    "Ziel je ≥ 0,9"
                    + (
                        f"; {result['notices']} Rückfälle auf extraktiv"
                        if result["notices"]
                        else ""
                    ),
                )
            )
            rows.append(
                (
                    f"Antworten {backend}: Dauer je Antwort",
                    f"p50 {statistics.median(totals):.2f} s",
                    f"p95 {percentile(totals, 0.95):.2f} s",
                    "Ziel p95 ≤ 1 s" if backend == "extractive" else f"{len(totals)} Fragen",
                )
            )
            if backend != "extractive" and result["first_tokens"]:
                first = result["first_tokens"]
                rate = statistics.median(result["rates"]) if result["rates"] else 0.0
                rows.append(
                    (
                        f"Antworten {backend}: erstes Token",
                        f"p50 {statistics.median(first):.1f} s",
                        f"p95 {percentile(first, 0.95):.1f} s, {rate:.1f} Tokens/s",
                        "Ziel erstes Token ≤ 8 s",
                    )
                )
    return rows
