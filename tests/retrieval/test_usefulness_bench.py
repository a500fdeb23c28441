"""The usefulness bench refuses to measure a store that holds nothing, and reads claims itself.

An empty store answers every question with the refusal, so its figures (named 0.0, near-misses
refused 1.0) would look like a measurement. The bench says so instead, in German, naming the
option and the folder, and leaves the folder as it was.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.usefulness_bench import main, unsupported_sentences


def test_a_store_that_was_never_ingested_is_named_not_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "kein-index"
    with pytest.raises(SystemExit) as stop:
        main(["--store", str(store), "--misses", str(tmp_path / "misses.md")])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert f"--store {store}" in message
    assert "kein eingelesener Index" in message
    assert not store.exists()  # nothing was created there
    assert not (tmp_path / "misses.md").exists()


def test_a_claim_whose_added_words_its_quote_lacks_counts_as_unsupported() -> None:
    title = "WIK Consult (2021): Implementierung von KI im Mittelstand"
    answer = SimpleNamespace(
        question="Hindernisse KI Mittelstand",
        answer="KI hindert Mittelstand [1]. Implementierung von KI im Mittelstand [1].",
        citations=[SimpleNamespace(n=1, quote=title)],
    )
    assert unsupported_sentences(answer) == ["KI hindert Mittelstand [1]."]
