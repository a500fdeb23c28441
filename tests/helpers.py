"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FACT_SHEET = PROJECT_ROOT / "corpus" / "ki-faktenblatt.txt"
# The converted embedding model is a cache, not a store: share it with `make run` so a test
# session converts it at most once.
MODELS_DIR = Path(os.environ.get("QUELLENCHAT_TEST_MODELS_DIR", PROJECT_ROOT / "data" / "models"))
# The embedder of tests that check something else (ingest bookkeeping, answers, the app, servers):
# the bundled e5-small, a real model three times faster than the default EmbeddingGemma. The
# default itself is tested end to end in tests/test_default_embedder.py and test_gemma.py.
TEST_EMBEDDER = "bundled:multilingual-e5-small"


def run_retrieval(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m retrieval ARGS` in a clean environment, as a script would call it."""
    return subprocess.run(
        [sys.executable, "-m", "retrieval", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
            "QUELLENCHAT_EMBEDDER": TEST_EMBEDDER,
        },
        timeout=300,
        check=False,
    )


def write_pdf(path: Path, pages: Sequence[str], header: str | None = None) -> Path:
    """Write a real PDF with one text page per entry (latin-1 core font: umlauts work)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("Helvetica", size=11)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            pdf.cell(0, 8, header, new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, text)
        pdf.set_auto_page_break(auto=False)  # the footer must not spill onto a new page
        pdf.set_y(-15)
        pdf.cell(0, 8, str(number), align="C")
        pdf.set_auto_page_break(auto=True, margin=15)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
