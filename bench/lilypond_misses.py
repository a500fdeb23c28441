"""Failure analysis of the LilyPond dev set: why a question is not answered at rank 1.

For every question whose first passage is not a hit, the rank of the first hit under our fused
search, under e5 alone and under BM25 alone (rank 50+ counts as not found), and where the
passage that won instead comes from: the other manual, the right page (a chunk without the gold
phrase), a neighbouring page (at most two pages away) or another page of the right manual.

Uses the cached LilyPond store of the bench (built on first use, as `bench/run.py --only
lilypond` does). `python bench/lilypond_misses.py` writes `bench/results/lilypond-misses.md`.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lilypond import DEV_SET  # noqa: E402
from bench.retrieval_bench import (  # noqa: E402
    DENSE_ONLY,
    SearchFn,
    lexical_only,
    lilypond_store,
)
from quellenchat.settings import Settings  # noqa: E402
from retrieval.evaluation import EvalItem, is_hit, read_items  # noqa: E402
from retrieval.passages import Passage  # noqa: E402
from retrieval.search import Searcher  # noqa: E402

DEPTH = 50  # passages looked at per question
NEAR_PAGES = 2


def first_hit(item: EvalItem, passages: Sequence[Passage]) -> int | None:
    """1-based rank of the first hit among the passages; None if there is none."""
    return next((n for n, p in enumerate(passages, start=1) if is_hit(item, p)), None)


def winner_kind(item: EvalItem, winner: Passage) -> str:
    """Where the passage ranked first comes from, seen from the item's gold page (German)."""
    if winner.source != item.source:
        return "anderes Handbuch"
    if winner.page is None or item.page is None:
        return "andere Seite"
    distance = winner.page - item.page
    if distance == 0:
        return "richtige Seite, Abschnitt ohne Gold"
    if abs(distance) <= NEAR_PAGES:
        return f"Nachbarseite ({distance:+d})"
    return "andere Seite"


def _rank(rank: int | None) -> str:
    return "–" if rank is None else str(rank)


def analyse(items: Sequence[EvalItem], searches: dict[str, SearchFn]) -> tuple[list[str], Counter]:
    """Markdown table rows of the misses at rank 1, and how often each winner kind occurs."""
    rows: list[str] = []
    kinds: Counter[str] = Counter()
    for number, item in enumerate(items, start=1):
        found = {name: search(item.question) for name, search in searches.items()}
        ours = found["ours"]
        if ours and is_hit(item, ours[0]):
            continue
        ranks = " | ".join(_rank(first_hit(item, passages)) for passages in found.values())
        kind = winner_kind(item, ours[0]) if ours else "nichts gefunden"
        kinds[kind.split(" (")[0]] += 1  # neighbouring pages counted together
        winner = f"{ours[0].source} S. {ours[0].page}, „{ours[0].section}“" if ours else "–"
        rows.append(
            f"| {number} | {item.question} | S. {item.page} | {ranks} | {kind} | {winner} |"
        )
    return rows, kinds


def main() -> int:
    """Write the failure analysis of the cached LilyPond store."""
    settings = lilypond_store(Settings())
    if settings is None:
        print("Handbücher nicht verfügbar (apt-get download lilypond-doc-pdf-de)", file=sys.stderr)
        return 2
    searcher = Searcher(settings)
    dense = Searcher(settings, embedder=searcher.embedder, fusion=DENSE_ONLY)
    searches: dict[str, SearchFn] = {
        "ours": lambda q: searcher.search(q, DEPTH),
        "dense": lambda q: dense.search(q, DEPTH),
        "bm25": lexical_only(searcher, k=DEPTH),
    }
    items = read_items(DEV_SET)
    rows, kinds = analyse(items, searches)
    summary = ", ".join(f"{kind}: {count}" for kind, count in kinds.most_common())
    text = "\n".join(
        [
            f"LilyPond-Dev-Set: {len(rows)} von {len(items)} Fragen nicht auf Rang 1 "
            f"(Ränge bis {DEPTH}; – = nicht gefunden). Sieger: {summary}.",
            "",
            "| Nr. | Frage | Gold-Seite | Rang Quellenchat | Rang nur e5 | Rang nur BM25 "
            "| Sieger kommt von | Sieger |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    out = ROOT / "bench" / "results" / "lilypond-misses.md"
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
