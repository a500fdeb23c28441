"""Fusion on the realistic sets' tuning split only: which lexical bonus, with or without thesaurus.

The held-out split is never read here. `python bench/tune_realistic.py --embedder NAME`;
results go to bench/results/tune_realistic.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.realistic_bench import (  # noqa: E402
    FACT_SHEET_SET,
    LILYPOND_SET,
    RESULTS,
    fact_sheet_store,
    lilypond_store,
)
from quellenchat.settings import BUNDLED_EMBEDDER, Settings  # noqa: E402
from retrieval.evaluation import evaluate, read_items, split_items  # noqa: E402
from retrieval.search import Fusion, Searcher  # noqa: E402

BONUSES = (0.0, 0.04, 0.08, 0.12, 0.16, 0.24)


def main() -> int:
    """Print and write a table of tune-split figures per fusion variant."""
    parser = argparse.ArgumentParser(description="Fusion auf dem Abstimmungsteil")
    parser.add_argument("--embedder", default=BUNDLED_EMBEDDER)
    parser.add_argument("--sets", nargs="+", default=["faktenblatt", "lilypond"])
    args = parser.parse_args()
    env = Settings()
    stores = []
    if "faktenblatt" in args.sets:
        stores.append(("Faktenblatt", fact_sheet_store(env, args.embedder), FACT_SHEET_SET))
    if "lilypond" in args.sets and (lily := lilypond_store(env, args.embedder)) is not None:
        stores.append(("LilyPond", lily, LILYPOND_SET))
    lines = [
        f"Embedder {args.embedder}, nur Abstimmungsteil",
        "",
        "| Satz | Bonus | Thesaurus | hit@1 | hit@5 | MRR | Listen-Recall@5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, settings, path in stores:
        items = split_items(read_items(path), "tune")
        base = Searcher(settings)
        for bonus in BONUSES:
            for expand in (True, False):
                fusion = Fusion(lexical_bonus=bonus, expand=expand)
                searcher = Searcher(settings, embedder=base.embedder, fusion=fusion)
                r = evaluate(items, lambda q, s=searcher: s.search(q, 10))
                recall = r["list_recall@5"]
                lines.append(
                    f"| {label} | {bonus} | {'ja' if expand else 'nein'} | {r['hit@1']:.3f} "
                    f"| {r['hit@5']:.3f} | {r['mrr@10']:.3f} | "
                    f"{'' if recall is None else f'{recall:.3f}'} |"
                )
                print(lines[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"tune_realistic-{args.embedder.removeprefix('bundled:')}.md").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
