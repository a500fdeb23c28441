"""Retrieval metrics over question sets: hit@k, MRR@10, list recall, the top score distributions."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quellenchat.types import letters_key
from retrieval.passages import Passage

if TYPE_CHECKING:
    from retrieval.refusal import Weighing

CUTOFFS = (1, 3, 5, 10)


@dataclass(frozen=True)
class EvalItem:
    """One question; `gold` is a phrase a correct passage contains (None: unanswerable)."""

    question: str
    gold: str | None
    answerable: bool
    # Optional: the source a hit must come from (SQuAD paragraphs, PDFs of a dev set) …
    source: str | None = None
    # … and the 1-based physical page it must be on (PDFs).
    page: int | None = None
    # Realistic sets: every gold passage (a list question has one per item), the facts an
    # answer must name, the question's kind, its split ("tune" or "heldout") and its id.
    golds: tuple[str, ...] = ()
    points: tuple[str, ...] = ()
    kind: str | None = None
    split: str | None = None
    id: str | None = None

    @property
    def gold_phrases(self) -> tuple[str, ...]:
        """Every phrase whose passage answers the question: `golds`, else `gold`."""
        return self.golds or ((self.gold,) if self.gold else ())


def read_items(path: Path) -> list[EvalItem]:
    """Read one `{"question", "gold", "answerable"}` object per line; errors name the line.

    Optional fields: `source` (as ingested, relative to its corpus folder) and `page` (1-based
    physical page); a hit must then come from that source and page. The realistic sets add
    `golds`, `points`, `kind`, `split` and `id` (see `eval/realistic.md`).
    """
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_item(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}, Zeile {number}: kein gültiges Objekt ({exc})") from exc
    return items


def _item(data: dict[str, Any]) -> EvalItem:
    source, page = data.get("source"), data.get("page")
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise ValueError(f"page muss eine Seitenzahl ab 1 sein, nicht {page!r}")
    golds, points = data.get("golds") or [], data.get("points") or []
    if not all(isinstance(v, str) for v in [*golds, *points]):
        raise ValueError("golds und points müssen Textlisten sein")
    split = data.get("split")
    if split not in (None, *SPLITS):
        raise ValueError(f"split muss {', '.join(SPLITS)} sein, nicht {split!r}")
    return EvalItem(
        str(data["question"]),
        data.get("gold"),
        bool(data.get("answerable", True)),
        None if source is None else str(source),
        page,
        golds=tuple(golds),
        points=tuple(points),
        kind=data.get("kind"),
        split=split,
        id=data.get("id"),
    )


# "tune" is tuned on; "heldout" and "fresh" never are. "fresh" was written on 6.12.2026 in its
# own file, after heldout's misses had been read in earlier results; "fresh2" in the evening of
# the same day, after fresh's misses had been read too. fresh2 was measured once and its misses
# then read; "fresh3" was written on 7.12.2026 for the next round, measured and read the same
# night; "fresh4" was written on 7.12.2026 at 04:45 for the round after, measured and read the
# same morning; "fresh5" was written on 7.12.2026 at noon for the round after, measured and read
# the same afternoon; "fresh6" was written on 7.12.2026 at 14:40 for the round after, measured
# and read the same evening; "fresh7" was written on 7.12.2026 at 16:45 and
# "fresh8" at 17:55, both for the rounds after and measured and read the same evening;
# "fresh9" was written on 7.12.2026 at 19:00 for the round after, measured and read that night;
# "fresh10" was written on 7.12.2026 at 21:10 for the round after, measured and read on
# 8.12.2026 at night; "fresh11" (not wired yet) for the round after that (eval/realistic.md).
SPLITS = (
    "tune",
    "heldout",
    "fresh",
    "fresh2",
    "fresh3",
    "fresh4",
    "fresh5",
    "fresh6",
    "fresh7",
    "fresh8",
    "fresh9",
    "fresh10",
)


def split_items(items: Sequence[EvalItem], split: str) -> list[EvalItem]:
    """The items of one split (see `SPLITS`)."""
    return [item for item in items if item.split == split]


def is_hit(item: EvalItem, passage: Passage) -> bool:
    """The passage contains a gold phrase (normalised) and is from the item's source and page."""
    return bool(golds_in(item, passage))


def golds_in(item: EvalItem, passage: Passage) -> set[str]:
    """The item's gold phrases that the passage contains, if it is from its source and page."""
    if item.source is not None and passage.source != item.source:
        return set()
    if item.page is not None and passage.page != item.page:
        return set()
    text = letters_key(passage.text)
    return {gold for gold in item.gold_phrases if letters_key(gold) in text}


def gold_recall(item: EvalItem, passages: Sequence[Passage], k: int = 5) -> float:
    """Share of the item's gold phrases found in its first k passages (list questions)."""
    wanted = item.gold_phrases
    found = set().union(*(golds_in(item, p) for p in passages[:k])) if passages else set()
    return len(found) / len(wanted) if wanted else 0.0


def evaluate(
    items: Sequence[EvalItem],
    search: Callable[[str], list[Passage]],
    refusal_threshold: float | None = None,
    weighing: Weighing | None = None,
) -> dict[str, Any]:
    """hit@k and MRR@10 of the answerable items; score distributions; refusal calibration.

    Besides the top similarities it reports both groups' evidence strengths (as the answerer's
    gate computes them, with the embedder's `weighing`) and the refusal threshold calibrated
    from them, with the rates it gives and those of `refusal_threshold` (the default when None).
    """
    from retrieval.answering import is_english
    from retrieval.refusal import DEFAULT_THRESHOLD, calibration_report, evidence_strength

    ranks: list[int | None] = []
    recalls: list[float] = []
    misses: list[dict[str, Any]] = []
    top_answerable: list[float] = []
    top_unanswerable: list[float] = []
    strengths: dict[bool, list[float]] = {True: [], False: []}
    for item in items:
        passages = search(item.question)
        top = passages[0].similarity if passages else 0.0
        lexical = not is_english(item.question)  # as the answerer's gate does
        strengths[item.answerable].append(
            evidence_strength(passages, lexical=lexical, weighing=weighing)
        )
        if not item.answerable:
            top_unanswerable.append(top)
            continue
        top_answerable.append(top)
        rank = next((i + 1 for i, p in enumerate(passages) if is_hit(item, p)), None)
        ranks.append(rank)
        recall = gold_recall(item, passages)
        if len(item.gold_phrases) > 1:
            recalls.append(recall)
        if rank != 1 or recall < 1.0:
            misses.append(_miss(item, rank, recall, passages))
    current = DEFAULT_THRESHOLD if refusal_threshold is None else refusal_threshold
    return {
        "questions": len(items),
        "answerable": len(ranks),
        **{f"hit@{k}": _share(r is not None and r <= k for r in ranks) for k in CUTOFFS},
        "mrr@10": round(sum(1 / r for r in ranks if r and r <= 10) / max(len(ranks), 1), 4),
        "list_questions": len(recalls),
        "list_recall@5": round(sum(recalls) / len(recalls), 4) if recalls else None,
        "misses": misses,
        "top_similarity_answerable": distribution(top_answerable),
        "top_similarity_unanswerable": distribution(top_unanswerable),
        "evidence_strength_answerable": distribution(strengths[True]),
        "evidence_strength_unanswerable": distribution(strengths[False]),
        **calibration_report(strengths[True], strengths[False], current),
    }


def _miss(
    item: EvalItem, rank: int | None, recall: float, passages: Sequence[Passage]
) -> dict[str, Any]:
    """What a miss report shows of one question.

    The rank of its first hit, the passage ranked first instead (its section or page), and, for
    several golds, the share of them found in the top 5.
    """
    top = passages[0] if passages else None
    return {
        "id": item.id,
        "question": item.question,
        "rank": rank,
        "recall@5": round(recall, 2) if len(item.gold_phrases) > 1 else None,
        "first": None if top is None else f"{top.source} {top.section or top.page or ''}".strip(),
    }


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """min, quartiles and max of a list of scores."""
    if not values:
        return None
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "n": len(ordered),
        "min": round(ordered[0], 4),
        "p25": round(quartiles[0], 4),
        "median": round(quartiles[1], 4),
        "p75": round(quartiles[2], 4),
        "max": round(ordered[-1], 4),
    }


def squad_corpus(path: Path, corpus: Path) -> list[EvalItem]:
    """Write each paragraph of a SQuAD-format file as a text document; return its questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    items = []
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            source = f"a{a:03d}-p{p:02d}.txt"
            (corpus / source).write_text(paragraph["context"], encoding="utf-8")
            items += [
                EvalItem(qa["question"], qa["answers"][0]["text"], True, source)
                for qa in paragraph["qas"]
            ]
    return items
