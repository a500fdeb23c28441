"""LLM benchmark of the product path: the bundled model behind `Answerer`, on the dev questions.

Everything goes through what users get: the prompts in `prompts/`, real retrieval on the shipped
corpus, the evidence gate, the queue, citation mapping. Times are measured from the question
(search and queue included). Rows:

- model load and priming the fixed prompt prefix (what `chat_app` does at start-up);
- the first token of the first question with a cold prefix (same model, a system prompt the KV
  cache has never seen) against the warm prefix, as the baseline of the same run;
- first token, total time and tokens/s over the dev questions, and the answer quality;
- how many prompt tokens the KV cache supplied.

Run alone: `python bench/llm_bench.py`; `llm_rows(settings)` gives the rows for `bench/run.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.answer_bench import (  # noqa: E402
    DEV,
    Row,
    latency_row,
    percentile,
    quality_row,
    run_backend,
    shipped_store,
)
from quellenchat.settings import Settings  # noqa: E402

TTFT_TARGET = 8.0  # seconds, issue 4
COLD_QUESTION = "Wer betreibt das Netzwerk der KI-Trainer?"


def cold_prompts(folder: Path) -> Any:
    """The shipped prompts with a system prompt the KV cache has never seen."""
    from retrieval.prompts import PROMPTS_DIR, Prompts

    for path in PROMPTS_DIR.glob("*.md"):
        text = path.read_text(encoding="utf-8")
        if path.name == "system.de.md":
            text = f"Sitzung {uuid.uuid4().hex[:8]}.\n{text}"
        (folder / path.name).write_text(text, encoding="utf-8")
    return Prompts.load(folder)


def first_token(answerer: Any, question: str) -> float:
    """Seconds from the question to the first generated token."""
    from retrieval.answers import Token

    start = time.perf_counter()
    for event in answerer.stream(question):
        if isinstance(event, Token):
            return time.perf_counter() - start
    return float("nan")


def cache_use(settings: Settings, answerer: Any, question: str) -> tuple[int, int]:
    """Prompt tokens of the product's answer prompt and how many the KV cache supplied."""
    from retrieval.answers import Evidence
    from retrieval.llm import make_chat_model

    stream = answerer.stream(question)
    evidence = next(stream)
    stream.close()
    assert isinstance(evidence, Evidence)
    reply = make_chat_model(settings, "local").invoke(
        answerer.answer_messages(evidence), max_tokens=1
    )
    usage = reply.response_metadata["token_usage"]
    return int(usage["prompt_tokens"]), int(usage["prompt_tokens_details"]["cached_tokens"])


def _spread(values: list[float], unit: str, digits: int = 1) -> str:
    return (
        f"p50 {statistics.median(values):.{digits}f} {unit}, "
        f"p95 {percentile(values, 0.95):.{digits}f} {unit}"
    )


def llm_rows(settings: Settings, max_tokens: int | None = None) -> list[Row]:
    """Start the local model behind an Answerer, measure it on the dev set; rows for run.py."""
    from retrieval.answering import Answerer
    from retrieval.evaluation import read_items
    from retrieval.llm import make_chat_model

    update: dict[str, Any] = {"llm_backend": "local"}
    if max_tokens is not None:
        update["llm_max_tokens"] = max_tokens
    items = read_items(DEV)
    with shipped_store(settings.model_copy(update=update)) as local:
        model = make_chat_model(local, "local")
        assert model.server is not None
        try:
            return _measure(local, model, items, Answerer)
        finally:
            model.server.stop()


def _measure(local: Settings, model: Any, items: list[Any], answerer_type: Any) -> list[Row]:
    started = time.perf_counter()
    model.start()
    load = time.perf_counter() - started
    answerer = answerer_type(local)
    answerer.searcher.search("Künstliche Intelligenz", k=1)  # embedder and BM25, as at start-up
    started = time.perf_counter()
    answerer.warm_up()
    prime = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        cold = answerer_type(local, searcher=answerer.searcher, prompts=cold_prompts(Path(tmp)))
        cold_first = first_token(cold, COLD_QUESTION)
    warm_first = first_token(answerer, COLD_QUESTION)
    run = run_backend(answerer, items, "local")
    prompt, cached = cache_use(local, answerer, COLD_QUESTION)
    threads = model.server.options.threads
    firsts = run.first_tokens
    met = "erreicht" if percentile(firsts, 0.95) <= TTFT_TARGET else "verfehlt"
    return [
        ("Lokales LLM starten (Modell laden)", f"{load:.1f} s", "–", f"{threads} Threads"),
        (
            "Festen Präfix vorwärmen (beim App-Start, im Hintergrund)",
            f"{prime:.1f} s",
            "–",
            "Systemprompt und Anfang der Antwortvorlage in den KV-Cache",
        ),
        (
            "LLM erstes Token ab Frage, erste Frage",
            f"warm {warm_first:.1f} s",
            f"Präfix kalt {cold_first:.1f} s",
            f"×{cold_first / warm_first:.1f} durch das Vorwärmen",
        ),
        (
            f"LLM erstes Token ab Frage (Suche, Warteschlange inkl.), {len(firsts)} Dev-Fragen",
            _spread(firsts, "s"),
            f"max {max(firsts):.1f} s",
            f"Ziel ≤ {TTFT_TARGET:g} s (p95 {met})",
        ),
        latency_row("local", run, f"≤ {local.llm_max_tokens} Tokens, höchstens drei Sätze"),
        (
            "LLM Erzeugung",
            f"{statistics.median(run.rates):.1f} Tokens/s (p50)",
            f"{statistics.median(run.tokens):.0f} Tokens je Antwort (p50)",
            "Issue 4: ~18 Tokens/s",
        ),
        (
            "LLM Prompt einer Antwort",
            f"{prompt} Tokens",
            f"{cached} aus dem KV-Cache",
            f"berechnet werden {prompt - cached}",
        ),
        quality_row("local", run),
    ]


def main() -> int:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description="Antworten mit dem lokalen Modell messen")
    parser.add_argument("--max-tokens", type=int, help="Tokens je Antwort (Standard: Settings)")
    args = parser.parse_args()
    rows = llm_rows(Settings(), args.max_tokens)
    print("| Messung | Wert | Vergleich | Anmerkung |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
