"""Retrieval metrics over question sets: hit@k, MRR@10 and the top score distributions."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quellenchat.types import letters_key
from retrieval.passages import Passage

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


def read_items(path: Path) -> list[EvalItem]:
    """Read one `{"question", "gold", "answerable"}` object per line; errors name the line.

    Optional fields: `source` (as ingested, relative to its corpus folder) and `page` (1-based
    physical page); a hit must then come from that source and page.
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
    return EvalItem(
        str(data["question"]),
        data.get("gold"),
        bool(data.get("answerable", True)),
        None if source is None else str(source),
        page,
    )


def is_hit(item: EvalItem, passage: Passage) -> bool:
    """The passage contains the gold phrase (normalised) and is from the item's source and page."""
    if item.gold is None:
        return False
    if item.source is not None and passage.source != item.source:
        return False
    if item.page is not None and passage.page != item.page:
        return False
    return letters_key(item.gold) in letters_key(passage.text)


def evaluate(
    items: Sequence[EvalItem],
    search: Callable[[str], list[Passage]],
    refusal_threshold: float | None = None,
) -> dict[str, Any]:
    """hit@k and MRR@10 of the answerable items; score distributions; refusal calibration.

    Besides the top similarities it reports both groups' evidence strengths (as the answerer's
    gate computes them) and the refusal threshold calibrated from them, with the rates it gives
    and those of `refusal_threshold` (the default when None).
    """
    from retrieval.answering import is_english
    from retrieval.refusal import DEFAULT_THRESHOLD, calibration_report, evidence_strength

    ranks: list[int | None] = []
    top_answerable: list[float] = []
    top_unanswerable: list[float] = []
    strengths: dict[bool, list[float]] = {True: [], False: []}
    for item in items:
        passages = search(item.question)
        top = passages[0].similarity if passages else 0.0
        lexical = not is_english(item.question)  # as the answerer's gate does
        strengths[item.answerable].append(evidence_strength(passages, lexical=lexical))
        if not item.answerable:
            top_unanswerable.append(top)
            continue
        top_answerable.append(top)
        ranks.append(next((i + 1 for i, p in enumerate(passages) if is_hit(item, p)), None))
    current = DEFAULT_THRESHOLD if refusal_threshold is None else refusal_threshold
    return {
        "questions": len(items),
        "answerable": len(ranks),
        **{f"hit@{k}": _share(r is not None and r <= k for r in ranks) for k in CUTOFFS},
        "mrr@10": round(sum(1 / r for r in ranks if r and r <= 10) / max(len(ranks), 1), 4),
        "top_similarity_answerable": distribution(top_answerable),
        "top_similarity_unanswerable": distribution(top_unanswerable),
        "evidence_strength_answerable": distribution(strengths[True]),
        "evidence_strength_unanswerable": distribution(strengths[False]),
        **calibration_report(strengths[True], strengths[False], current),
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
