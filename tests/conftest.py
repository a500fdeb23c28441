"""Fixtures shared by all tests: settings on tmp stores, the bundled embedder, PDFs written here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from quellenchat.settings import Settings
from tests.helpers import FACT_SHEET, MODELS_DIR, PROJECT_ROOT, TEST_EMBEDDER, write_pdf

# Temporary stores are embedded: a Chroma server configured in the developer's environment must
# never receive test data. Server-mode tests pass their own server's URL explicitly.
os.environ.pop("QUELLENCHAT_CHROMA_URL", None)
# Settings built in tests, and the CLIs and apps they start (which inherit the environment),
# embed with TEST_EMBEDDER unless a test names another; tests of the default pass it explicitly.
os.environ["QUELLENCHAT_EMBEDDER"] = TEST_EMBEDDER


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh store below tmp_path; keyword arguments override fields."""

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "store": tmp_path / "store",
            "models_dir": MODELS_DIR,
            "corpus": [tmp_path / "corpus"],
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """An empty corpus folder."""
    path = tmp_path / "corpus"
    path.mkdir()
    return path


@pytest.fixture
def fact_sheet_corpus(corpus_dir: Path) -> Path:
    """A corpus with the real fact sheet and its metadata."""
    shutil.copy(FACT_SHEET, corpus_dir / FACT_SHEET.name)
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", corpus_dir / "metadata.toml")
    return corpus_dir


@pytest.fixture
def pdf_writer() -> Callable[..., Path]:
    """The `write_pdf` helper as a fixture."""
    return write_pdf
