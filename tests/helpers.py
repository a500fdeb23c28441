"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.run import Report
    from quellenchat.embedding import Embedder
    from quellenchat.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FACT_SHEET = PROJECT_ROOT / "corpus" / "ki-faktenblatt.txt"
# The converted embedding model is a cache, not a store: share it with `make run` so a test
# session converts it at most once.
MODELS_DIR = Path(os.environ.get("QUELLENCHAT_TEST_MODELS_DIR", PROJECT_ROOT / "data" / "models"))
# The embedder of tests that check something else (ingest bookkeeping, answers, the app, servers):
# the bundled e5-small, a real model three times faster than the default EmbeddingGemma. The
# default itself is tested end to end in tests/test_default_embedder.py and test_gemma.py.
TEST_EMBEDDER = "bundled:multilingual-e5-small"
# What makes two embedders the same: the settings `make_embedder` reads.
_EMBEDDER_FIELDS = (
    "embedder",
    "models_dir",
    "embed_batch_size",
    "embed_quantize",
    "embed_precision",
    "embed_threads",
    "embed_passage_prefix",
    "embed_query_prefix",
)


def shared_embedder(settings: Settings) -> Embedder:
    """The real embedder these settings name, loaded once per test process and then shared.

    Loading e5-small takes about 6 s; every test that ingests used to pay it again. An embedder
    is read-only once loaded, so tests may share it like the app's threads do.
    """
    return _embedder(tuple((name, getattr(settings, name)) for name in _EMBEDDER_FIELDS))


@functools.cache
def _embedder(key: tuple[tuple[str, Any], ...]) -> Embedder:
    from quellenchat.embedding import make_embedder
    from quellenchat.settings import Settings

    embedder = make_embedder(Settings(**dict(key)))
    # Loaded now, not on the first embed: inside an ingest that would be under the writer lease,
    # and a load that holds the GIL for seconds on a busy machine starves the lease's renewer
    # (tests use 6 s leases).
    getattr(embedder, "model", None)
    return embedder


def ingest_corpus(settings: Settings, **options: Any) -> Report:
    """`run_ingest` with the process's shared real embedder (see `shared_embedder`)."""
    from ingest.run import run_ingest

    return run_ingest(settings, embedder=shared_embedder(settings), **options)


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
