"""Tune the fusion of dense and lexical scores on the dev sets, never on XQuAD-de (the test set).

Runs the real `Searcher` over two real stores kept in the bench cache, with every `Fusion` of a
small grid: the bounded lexical bonus (`bonus`, several weights) and reciprocal rank fusion
(`rrf`, several k and lexical weights). Dev sets: `eval/dev-faktenblatt.jsonl` with the
XQuAD-de paragraphs ingested beside the fact sheet as distractors, and the page-level LilyPond
set `eval/dev-lilypond.jsonl`.

Choice: the most questions answered at rank 1 over both sets (ties: mean MRR@10). With 20 + 40
answerable questions one question is noise, so the incumbent (`INCUMBENT`, the default before
this tuning) stays unless another fusion answers at least `MIN_GAIN` more questions at rank 1.
Writes `bench/results/tune_fusion.md`.

    python bench/tune_fusion.py
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.rerank_experiment import CachingEmbedder  # noqa: E402
from bench.retrieval_bench import CACHE, lilypond_store  # noqa: E402
from ingest.run import run_ingest  # noqa: E402
from quellenchat.settings import Settings  # noqa: E402
from retrieval.evaluation import EvalItem, evaluate, read_items, squad_corpus  # noqa: E402
from retrieval.search import Fusion, Searcher  # noqa: E402

OUT = ROOT / "bench" / "results" / "tune_fusion.md"
BONUS_WEIGHTS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.16)
INCUMBENT = Fusion(method="bonus", lexical_bonus=0.08)
MIN_GAIN = 2  # questions at rank 1, over both dev sets
RRF_GRID = ((10, 1.0), (30, 1.0), (60, 0.5), (60, 1.0), (60, 1.5))


def grid() -> list[Fusion]:
    """Every fusion the tuning compares."""
    return [Fusion(method="bonus", lexical_bonus=w) for w in BONUS_WEIGHTS] + [
        Fusion(method="rrf", rrf_k=k, lexical_weight=w) for k, w in RRF_GRID
    ]


def label(fusion: Fusion) -> str:
    """A short name of a fusion."""
    if fusion.method == "rrf":
        return f"RRF k={fusion.rrf_k}, BM25-Gewicht {fusion.lexical_weight:g}"
    return f"Bonus {fusion.lexical_bonus:g}"


def dev_stores(env_settings: Settings) -> list[tuple[str, Settings, list[EvalItem]]]:
    """The dev sets with their stores, kept in the bench cache and updated incrementally."""
    folder = CACHE / "dev-mixed" / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    squad_corpus(ROOT / "eval" / "xquad-de" / "xquad.de.json", folder)  # distractors only
    for name in ("ki-faktenblatt.txt", "metadata.toml"):
        shutil.copy(ROOT / "corpus" / name, folder / name)
    mixed = Settings(
        corpus=[folder], store=CACHE / "dev-mixed" / "store", models_dir=env_settings.models_dir
    )
    if run_ingest(mixed).exit_code != 0:
        raise RuntimeError("Einlesen des Dev-Index fehlgeschlagen")
    stores = [("Dev Faktenblatt", mixed, read_items(ROOT / "eval" / "dev-faktenblatt.jsonl"))]
    lilypond = lilypond_store(env_settings)
    if lilypond is not None:
        stores.append(("Dev LilyPond", lilypond, read_items(ROOT / "eval" / "dev-lilypond.jsonl")))
    return stores


def tune(env_settings: Settings) -> tuple[list[str], Fusion]:
    """Measure every fusion on every dev set; the table lines and the winner."""
    from quellenchat.embedding import make_embedder

    embedder = CachingEmbedder(make_embedder(env_settings))
    stores = dev_stores(env_settings)
    results: dict[Fusion, list[dict[str, Any]]] = {}
    for _, settings, items in stores:
        searcher = Searcher(settings, embedder=embedder)
        for fusion in grid():
            searcher.fusion = fusion
            results.setdefault(fusion, []).append(
                evaluate(items, lambda q, s=searcher: s.search(q, 10))
            )
    top = max(results, key=lambda f: _key(results[f]))
    gain = _key(results[top])[0] - _key(results[INCUMBENT])[0]
    best = top if gain >= MIN_GAIN else INCUMBENT
    names = " | ".join(name for name, _, _ in stores)
    lines = [
        f"| Fusion | {names} | Treffer auf Rang 1 (von {_answerable(results[top])}) |",
        "|---|" + "---|" * len(stores) + "---|",
    ]
    for fusion, found in results.items():
        cells = " | ".join(_cell(r) for r in found)
        mark = " **(gewählt)**" if fusion == best else ""
        mark += " (bisher)" if fusion == INCUMBENT else ""
        lines.append(f"| {label(fusion)}{mark} | {cells} | {_key(found)[0]} |")
    return lines, best


def _answerable(found: Sequence[dict[str, Any]]) -> int:
    return sum(r["answerable"] for r in found)


def _key(found: Sequence[dict[str, Any]]) -> tuple[int, float]:
    """Questions answered at rank 1 over all sets, then mean MRR@10."""
    hits = sum(round(r["hit@1"] * r["answerable"]) for r in found)
    return hits, round(sum(r["mrr@10"] for r in found) / len(found), 4)


def _cell(result: dict[str, Any]) -> str:
    return f"hit@1 {result['hit@1']:.3f} · hit@5 {result['hit@5']:.3f} · MRR {result['mrr@10']:.3f}"


def main() -> int:
    """Run the tuning and write its table."""
    lines, best = tune(Settings())
    report = "\n".join(
        [
            "Fusion auf den Dev-Sets (nie auf XQuAD-de). Gewählt: die meisten Treffer auf "
            f"Rang 1 über beide Sets (dann MRR@10); die bisherige Fusion bleibt, solange keine "
            f"andere mindestens {MIN_GAIN} Fragen mehr auf Rang 1 beantwortet.",
            "",
            *lines,
            "",
            f"Gewählt: {label(best)}",
            "",
        ]
    )
    print(report)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
