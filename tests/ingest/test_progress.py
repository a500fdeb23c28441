"""The run says what it does: progress bars over documents and chunks, a summary at the end."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from quellenchat.settings import Settings
from tests.fakes import ingest_fake
from tests.helpers import write_pdf


def test_progress_bars_count_documents_and_every_stored_chunk(
    make_settings: Callable[..., Settings], corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = [
        " ".join(f"Seite {p}, Satz {n}: Maschinen melden Verschleiß." for n in range(80))
        for p in range(1, 4)
    ]
    write_pdf(corpus_dir / "a.pdf", pages)
    write_pdf(corpus_dir / "b.pdf", pages[:1])
    report = ingest_fake(make_settings(chunk_words=40, chunk_max_words=60), show_progress=True)
    assert report.exit_code == 0, report.to_json()
    err = capsys.readouterr().err
    total = report.chunks_embedded
    assert total > 8
    assert re.search(r"Dokumente: 100%.*2/2", err), err[-500:]
    assert re.search(rf"Chunks: 100%.*{total}/{total}", err), err[-500:]


def test_no_bars_unless_asked(
    make_settings: Callable[..., Settings], corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pdf(corpus_dir / "a.pdf", ["Ein kurzer Text über Wartung und Instandhaltung."])
    assert ingest_fake(make_settings()).exit_code == 0
    assert "Chunks:" not in capsys.readouterr().err
