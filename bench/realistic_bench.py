"""Retrieval on the realistic question sets, both splits, every option side by side.

The fact-sheet set is measured on a store of the fact sheet with XQuAD-de's 240 paragraphs as
distractors, the LilyPond set on the two German manuals (hits only on the gold page). Each
option is a store built with one embedder, searched by our hybrid search and by the plain
baselines (dense alone, BM25 alone). The held-out split is reported beside the tuning split;
the misses of the held-out split are listed in `bench/results/realistic-misses.md`.

`python bench/realistic_bench.py [--embedder NAME ...] [--sets faktenblatt lilypond]`
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.retrieval_bench import DENSE_ONLY, lexical_only  # noqa: E402
from ingest.run import run_ingest  # noqa: E402
from quellenchat.settings import BUNDLED_EMBEDDER, GEMMA_EMBEDDER, Settings  # noqa: E402
from retrieval.evaluation import (  # noqa: E402
    SPLITS,
    EvalItem,
    evaluate,
    read_items,
    split_items,
    squad_corpus,
)
from retrieval.passages import Passage  # noqa: E402
from retrieval.search import Searcher  # noqa: E402

FACT_SHEET_SET = ROOT / "eval" / "realistic-faktenblatt.jsonl"
# The fresh held-out splits, each in its own file (see `retrieval.evaluation.SPLITS`).
FRESH_SETS = (
    ROOT / "eval" / "realistic-faktenblatt-fresh.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh2.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh3.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh4.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh5.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh6.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh7.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh8.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh9.jsonl",
    ROOT / "eval" / "realistic-faktenblatt-fresh10.jsonl",
)
LILYPOND_SET = ROOT / "eval" / "realistic-lilypond.jsonl"
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "data" / "bench-cache"
Row = tuple[str, str, str, str]
SearchFn = Callable[[str], list[Passage]]
# Every embedder within reach: the bundled e5-small and EmbeddingGemma-300M.
EMBEDDERS = (BUNDLED_EMBEDDER, GEMMA_EMBEDDER)
SPLIT_NAMES = {
    "tune": "Abstimmung",
    "heldout": "zurückgehalten",
    "fresh": "frisch",
    "fresh2": "frisch 2",
    "fresh3": "frisch 3",
    "fresh4": "frisch 4",
    "fresh5": "frisch 5",
    "fresh6": "frisch 6",
    "fresh7": "frisch 7",
    "fresh8": "frisch 8",
    "fresh9": "frisch 9",
    "fresh10": "frisch 10",
}


def fact_sheet_store(env_settings: Settings, embedder: str) -> Settings:
    """The fact sheet and XQuAD-de's paragraphs (distractors) in a cached store per embedder.

    The corpus is laid anew each run (today's fact sheet and section map); the ingest is
    incremental, so only what changed is embedded again.
    """
    folder = CACHE / "realistic"
    corpus = folder / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    squad_corpus(ROOT / "eval" / "xquad-de" / "xquad.de.json", corpus)
    for name in ("ki-faktenblatt.txt", "metadata.toml"):
        shutil.copy(ROOT / "corpus" / name, corpus / name)
    settings = env_settings.model_copy(
        update={"corpus": [corpus], "store": folder / _slug(embedder), "embedder": embedder}
    )
    _ingest(settings)
    return settings


def lilypond_store(env_settings: Settings, embedder: str) -> Settings | None:
    """The LilyPond manuals in a cached store per embedder, updated incrementally."""
    from bench.lilypond import corpus

    folder = corpus(CACHE / "lilypond" / "corpus")
    if folder is None:
        return None
    store = CACHE / "lilypond" / ("store" if embedder == BUNDLED_EMBEDDER else _slug(embedder))
    settings = env_settings.model_copy(
        update={"corpus": [folder], "store": store, "embedder": embedder}
    )
    _ingest(settings)
    return settings


def _ingest(settings: Settings) -> None:
    report = run_ingest(settings)
    if report.exit_code != 0:
        raise RuntimeError(f"Einlesen fehlgeschlagen: {report.to_json()}")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name)


def searches(settings: Settings) -> dict[str, SearchFn]:
    """Our hybrid search and the plain baselines over one store, sharing one embedder."""
    ours = Searcher(settings)
    dense = Searcher(settings, embedder=ours.embedder, fusion=DENSE_ONLY)
    plain = Searcher(settings, embedder=ours.embedder, fusion=replace(ours.fusion, expand=False))
    return {
        "hybrid": lambda q: ours.search(q, 10),
        "hybrid ohne Thesaurus": lambda q: plain.search(q, 10),
        "dense": lambda q: dense.search(q, 10),
        "bm25": lexical_only(ours),
    }


def measure(
    label: str, settings: Settings, items: Sequence[EvalItem]
) -> tuple[list[Row], dict[str, Any]]:
    """Rows for every search and split; the held-out result of the hybrid search."""
    rows: list[Row] = []
    kept: dict[str, Any] = {}
    for name, search in searches(settings).items():
        for split in SPLITS:
            chosen = split_items(items, split)
            if not chosen:
                continue
            result = evaluate(chosen, search)
            rows.append((f"{label} · {name}", SPLIT_NAMES[split], _figures(result), ""))
            if name == "hybrid":
                kept[split] = result
    return rows, kept


def _figures(result: dict[str, Any]) -> str:
    text = (
        f"hit@1 {result['hit@1']:.2f} · hit@5 {result['hit@5']:.2f} · "
        f"MRR {result['mrr@10']:.2f} ({result['answerable']} Fragen)"
    )
    if result.get("list_recall@5") is not None:
        text += f" · Listen-Recall@5 {result['list_recall@5']:.2f} ({result['list_questions']})"
    return text


def misses_markdown(title: str, results: dict[str, Any]) -> str:
    """Every question not answered at rank 1 (or with list items missing from the top 5)."""
    lines = [f"## {title}", ""]
    for split in SPLITS:
        if split not in results:
            continue
        lines += [
            f"### {SPLIT_NAMES[split]}",
            "",
            "| id | Frage | Rang | Recall@5 | Platz 1 |",
            "|---|---|---|---|---|",
        ]
        for miss in results[split]["misses"]:
            recall = "" if miss["recall@5"] is None else f"{miss['recall@5']:.2f}"
            lines.append(
                f"| {miss['id']} | {miss['question']} | {miss['rank'] or '> 10'} | {recall} "
                f"| {miss['first']} |"
            )
        lines.append("")
    return "\n".join(lines)


def realistic_rows(
    env_settings: Settings,
    embedders: Sequence[str],
    sets: Sequence[str],
    fact_sheet_set: Path = FACT_SHEET_SET,
) -> list[Row]:
    """Measure every embedder on the realistic sets; write the misses file; return the rows."""
    rows: list[Row] = []
    misses: list[str] = []
    for embedder in embedders:
        short = embedder.removeprefix("bundled:")
        if "faktenblatt" in sets and fact_sheet_set.exists():
            settings = fact_sheet_store(env_settings, embedder)
            items = read_items(fact_sheet_set)
            if fact_sheet_set == FACT_SHEET_SET:
                items += [item for path in FRESH_SETS if path.exists() for item in read_items(path)]
            found, kept = measure(f"Faktenblatt + XQuAD, {short}", settings, items)
            rows += found
            misses.append(misses_markdown(f"Faktenblatt, {short}", kept))
        lilypond = lilypond_store(env_settings, embedder) if "lilypond" in sets else None
        if lilypond is not None and LILYPOND_SET.exists():
            items = read_items(LILYPOND_SET)
            found, kept = measure(f"LilyPond (Seite), {short}", lilypond, items)
            rows += found
            misses.append(misses_markdown(f"LilyPond, {short}", kept))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realistic-misses.md").write_text(
        "# Realistische Fragen: Fehlgriffe der hybriden Suche\n\n" + "\n".join(misses),
        encoding="utf-8",
    )
    return rows


def main() -> int:
    """Measure and print the table; write bench/results/realistic.md."""
    from bench.run import machine, table

    parser = argparse.ArgumentParser(description="Realistische Fragen: Suche im Vergleich")
    parser.add_argument("--embedder", action="append", help="Embedder (mehrfach möglich)")
    sets = ["faktenblatt", "lilypond"]
    parser.add_argument("--sets", nargs="+", default=sets, choices=sets)
    parser.add_argument("--facts", type=Path, default=FACT_SHEET_SET, help="Fragen (Faktenblatt)")
    args = parser.parse_args()
    rows = realistic_rows(Settings(), args.embedder or [BUNDLED_EMBEDDER], args.sets, args.facts)
    text = f"Maschine: {machine()}\n\n{table(rows)}\n"
    print(text)
    (RESULTS / "realistic.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
