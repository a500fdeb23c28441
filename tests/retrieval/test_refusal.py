"""The refusal threshold: calibration on known numbers, and reproduced by `retrieval eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from quellenchat.embedding import embed_precision
from quellenchat.settings import BUNDLED_EMBEDDER, GEMMA_EMBEDDER, Settings
from retrieval.passages import Passage
from retrieval.refusal import (
    DEFAULT_THRESHOLD,
    Weighing,
    calibrate,
    calibrate_keeping,
    calibration_report,
    default_weighing,
    evidence_strength,
)
from tests.helpers import MODELS_DIR, PROJECT_ROOT, ingest_corpus

DEV = PROJECT_ROOT / "eval" / "dev-faktenblatt.jsonl"


def test_calibration_puts_the_threshold_into_the_gap() -> None:
    assert calibrate([0.9, 0.95, 0.88], [0.7, 0.8]) == 0.84


def test_calibration_with_overlap_balances_both_groups() -> None:
    # Any threshold loses one question; the best keeps both rates at 2/3 or better.
    threshold = calibrate([0.80, 0.90, 0.95], [0.70, 0.85, 0.75])
    assert threshold is not None
    kept = sum(s >= threshold for s in [0.80, 0.90, 0.95])
    refused = sum(s < threshold for s in [0.70, 0.85, 0.75])
    assert min(kept, refused) == 2
    assert kept + refused == 5


def test_calibration_needs_both_groups() -> None:
    assert calibrate([0.9], []) is None


def test_report_gives_both_thresholds_rates() -> None:
    report = calibration_report([0.9, 0.95, 0.88], [0.7, 0.8], current=0.89)
    assert report["refusal_threshold"] == 0.84
    assert report["refusal_calibrated"] == {
        "threshold": 0.84,
        "answerable_kept": 1.0,
        "unanswerable_refused": 1.0,
    }
    assert report["refusal_current"]["answerable_kept"] == round(2 / 3, 4)
    assert calibration_report([], [0.7], current=0.8)["refusal_calibrated"] is None


# What `retrieval eval` calibrates on the shipped corpus, by the embedder's arithmetic: bf16
# where the CPU has bf16 instructions, int8 where it has int8 ones (the default was calibrated
# there), exact fp32 elsewhere or with embed_quantize=false; they move the strengths by ~0.001.
CALIBRATED = {"bf16": 0.865, "int8": DEFAULT_THRESHOLD, "fp32": 0.8655}


@pytest.fixture(scope="module", params=[True, False], ids=["quantize", "no-quantize"])
def shipped_store(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    """The shipped corpus, as the default threshold was calibrated on it."""
    settings = Settings(
        corpus=[PROJECT_ROOT / "corpus"],
        store=tmp_path_factory.mktemp("shipped") / "store",
        models_dir=MODELS_DIR,
        embed_quantize=request.param,
    )
    assert ingest_corpus(settings).exit_code == 0
    return settings


def _eval(store: Settings, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrieval", "eval", str(DEV), "--store", str(store.store), *extra],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=True,
        env={
            **os.environ,
            "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
            "QUELLENCHAT_EMBED_QUANTIZE": str(store.embed_quantize).lower(),
        },
    )


def test_eval_reproduces_the_default_threshold(shipped_store: Settings) -> None:
    result = json.loads(_eval(shipped_store, "--json").stdout)
    answerable = result["evidence_strength_answerable"]
    unanswerable = result["evidence_strength_unanswerable"]
    assert (answerable["n"], unanswerable["n"]) == (20, 10)
    assert unanswerable["max"] < DEFAULT_THRESHOLD <= answerable["p25"]
    calibrated = CALIBRATED[embed_precision(shipped_store)]
    assert result["refusal_threshold"] == calibrated
    assert result["refusal_current"]["threshold"] == DEFAULT_THRESHOLD
    assert result["refusal_calibrated"]["answerable_kept"] >= 0.9
    assert result["refusal_calibrated"]["unanswerable_refused"] >= 0.9
    assert "hit@1" in result  # the retrieval fields stay

    text = _eval(shipped_store).stdout
    assert "Evidenzstärke, beantwortbar (n=20)" in text
    assert "Evidenzstärke, nicht beantwortbar (n=10)" in text
    assert f"Ablehnungsschwelle kalibriert: {calibrated:.4f}" in text


def test_calibrate_keeping_keeps_the_share_and_sits_midway_into_the_gap() -> None:
    answerable = [0.9] * 18 + [0.5, 0.3]  # 19 of 20 kept = 0.95
    assert calibrate_keeping(answerable, [0.4, 0.1]) == 0.45
    assert calibrate_keeping([], [0.4]) is None


def _scored(similarity: float, coverage: float) -> Passage:
    return Passage("p", "s", "t", "Text", 0.0, similarity, "sha", 0, 0, 4, coverage=coverage)


def test_gemma_weighs_the_coverage_of_more_passages_more() -> None:
    # The fourth passage holds most of the question's terms: e5's rule looks at three.
    passages = [_scored(0.40, 0.1), _scored(0.39, 0.1), _scored(0.38, 0.1), _scored(0.3, 0.8)]
    assert evidence_strength(passages) == pytest.approx(0.40 + 0.1 * 0.1)
    gemma = default_weighing(GEMMA_EMBEDDER)
    assert gemma == Weighing(weight=0.2, depth=5)
    assert evidence_strength(passages, weighing=gemma) == pytest.approx(0.40 + 0.2 * 0.8)
    assert default_weighing(BUNDLED_EMBEDDER) == Weighing()  # e5's threshold is calibrated so
    assert evidence_strength([], weighing=gemma) == 0.0


def test_a_section_bonus_is_no_evidence_that_the_sources_answer() -> None:
    # The heading bonus put a passage of lower cosine first: the strength keeps the cosine of
    # the passage that ranks first without it.
    boosted = replace(_scored(0.30, 0.2), score=0.55, section_bonus=0.12)
    plain = replace(_scored(0.45, 0.2), score=0.50)
    gemma = default_weighing(GEMMA_EMBEDDER)
    assert evidence_strength([boosted, plain], weighing=gemma) == pytest.approx(0.45 + 0.2 * 0.2)
