"""The refusal threshold calibration on known numbers."""

from __future__ import annotations

from retrieval.refusal import calibrate


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
