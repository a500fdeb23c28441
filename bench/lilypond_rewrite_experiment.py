"""Experiment (issue #14): the local model bridges the words of a LilyPond question, at query time.

The realistic LilyPond questions ask in a musician's words („Wie bekomme ich den Liedtext unter
die Noten?“); the manuals answer in theirs („Gesangstext“, `\\addlyrics`). The bundled model is a
code model and knows LilyPond's commands. Two ways of letting it bridge the gap are measured:

- **rewrite**: the question rewritten in the sources' technical terms and commands (one line);
- **hypothetical answer** (HyDE): two sentences as the sources would answer, with their terms
  and commands.

Each generated text is searched beside the question; the two result lists are fused (score of
the question's hit + `weight` × score of the generated text's hit). The prompts name only the
titles of the indexed documents, as the app could (no word about LilyPond of our own). Generated
texts are cached per question and prompt in `data/bench-cache/lily-rewrite/`. The weight is read
on the tune split; heldout is reported beside it.

`python bench/lilypond_rewrite_experiment.py` writes `bench/results/lilypond-rewrite.md`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.doc2query_experiment import fused_with_rewrite  # noqa: E402
from bench.realistic_bench import CACHE, LILYPOND_SET, lilypond_store  # noqa: E402
from quellenchat.settings import GEMMA_EMBEDDER, Settings  # noqa: E402
from retrieval.evaluation import EvalItem, evaluate, read_items, split_items  # noqa: E402
from retrieval.passages import Passage  # noqa: E402
from retrieval.search import Searcher  # noqa: E402

TITLES = "„Handbuch zum Lernen“ und „Programmbenutzung“ (LilyPond 2.24)"
PROMPTS = {
    "rewrite": (
        "Die Quellen: {titles}.\n\nFrage: {question}\n\nFormuliere die Frage in einem Satz mit "
        "den Fachbegriffen und Befehlen um, mit denen die Quellen davon sprechen. Gib nur die "
        "umformulierte Frage aus."
    ),
    "hyde": (
        "Die Quellen: {titles}.\n\nFrage: {question}\n\nSchreibe in zwei kurzen Sätzen, wie die "
        "Quellen die Antwort formulieren würden, mit ihren Fachbegriffen und Befehlen. Keine "
        "Einleitung."
    ),
}
MAX_TOKENS = {"rewrite": 40, "hyde": 80}
WEIGHTS = (0.0, 0.3, 0.5, 1.0)
SPLITS = ("tune", "heldout")


def generated(
    settings: Settings, kind: str, questions: Sequence[str]
) -> tuple[dict[str, str], list[float]]:
    """The model's text for each question (cached), and the seconds each new one took."""
    from langchain_core.messages import HumanMessage

    from retrieval.llm import make_chat_model

    cache = CACHE / "lily-rewrite" / kind
    cache.mkdir(parents=True, exist_ok=True)
    model = None
    seconds: list[float] = []
    found: dict[str, str] = {}
    for question in questions:
        prompt = PROMPTS[kind].format(titles=TITLES, question=question)
        path = cache / f"{hashlib.sha1(prompt.encode()).hexdigest()}.txt"
        if not path.exists():
            model = model or make_chat_model(settings, "local")
            started = time.perf_counter()
            reply = model.invoke([HumanMessage(prompt)], max_tokens=MAX_TOKENS[kind])
            seconds.append(time.perf_counter() - started)
            path.write_text(str(reply.content).strip() if reply.content else "", "utf-8")
        found[question] = path.read_text("utf-8").strip() or question
    return found, seconds


def cells(items: Sequence[EvalItem], search: Callable[[str], list[Passage]]) -> list[str]:
    out = []
    for split in SPLITS:
        r = evaluate(split_items(items, split), search)
        out.append(f"{r['hit@1']:.2f} · {r['hit@5']:.2f} · MRR {r['mrr@10']:.2f}")
    return out


def gemma_manuals() -> tuple[Settings, Searcher] | None:
    """The LilyPond manuals' store with EmbeddingGemma and its searcher (None: not available)."""
    settings = lilypond_store(Settings(), GEMMA_EMBEDDER)
    if settings is None:
        print("LilyPond-Handbücher nicht verfügbar", file=sys.stderr)
        return None
    return settings, Searcher(settings)


def main() -> int:
    from bench.run import machine

    manuals = gemma_manuals()
    if manuals is None:
        return 1
    settings, searcher = manuals
    items = read_items(LILYPOND_SET)
    questions = [item.question for item in items]
    lines = [
        "# Experiment: das lokale Modell übersetzt LilyPond-Fragen in die Wörter der Handbücher",
        "",
        f"Maschine: {machine()}. LilyPond-Handbücher (Seite exakt), EmbeddingGemma-300M, "
        "hybride Suche; Frage und erzeugter Text getrennt gesucht, fusioniert (Gewicht des "
        "erzeugten Texts). hit@1 · hit@5 · MRR.",
        "",
        "| Variante | Gewicht | tune | heldout |",
        "|---|---|---|---|",
    ]
    examples: list[str] = []
    for kind in PROMPTS:
        texts, seconds = generated(settings, kind, questions)
        for weight in WEIGHTS:
            figures = cells(items, fused_with_rewrite(searcher, texts, weight))
            row = f"| {kind} | {weight} | {' | '.join(figures)} |"
            print(row, flush=True)
            lines.append(row)
        if seconds:
            lines.append(
                f"| {kind}: Erzeugung je Frage | p50 {np.median(seconds):.1f} s · p95 "
                f"{np.percentile(seconds, 95):.1f} s | ({len(seconds)} erzeugt) | |"
            )
        examples += [f"- {kind}: {q} → {texts[q]!r}" for q in questions[:6]]
    lines += ["", "Beispiele:", "", *examples]
    out = ROOT / "bench" / "results" / "lilypond-rewrite.md"
    out.write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
