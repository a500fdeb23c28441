"""A real store with the fact sheet and a few written distractors, shared by retrieval tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quellenchat.settings import Settings
from retrieval.answering import Answerer
from retrieval.search import Searcher
from tests.helpers import FACT_SHEET, MODELS_DIR, PROJECT_ROOT, ingest_corpus
from tests.retrieval.planted import INJECTION

DISTRACTORS = {
    "baeckerei.txt": "Die Bäckerei am Markt backt jeden Morgen Brot und Brötchen. "
    "Sauerteig braucht Zeit, Geduld und eine warme Backstube.",
    "fussball.txt": "Der Verein gewann das Pokalfinale nach Elfmeterschießen. "
    "Die Fans feierten bis tief in die Nacht auf dem Marktplatz.",
    "datenschutz.txt": "Anforderungen an den Datenschutz steigen: Betriebe müssen personenbezogene "
    "Daten schützen und Löschfristen dokumentieren.",
}


@pytest.fixture(scope="session")
def fact_sheet_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A store holding the real fact sheet and three short German distractor documents."""
    root = tmp_path_factory.mktemp("retrieval")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(FACT_SHEET, corpus / FACT_SHEET.name)
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", corpus / "metadata.toml")
    for name, text in DISTRACTORS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(corpus=[corpus], store=root / "store", models_dir=MODELS_DIR)
    report = ingest_corpus(settings)
    assert report.exit_code == 0, report.to_json()
    return settings


@pytest.fixture(scope="session")
def searcher(fact_sheet_store: Settings) -> Searcher:
    """A searcher over the shared store, with the bundled embedder."""
    return Searcher(fact_sheet_store)


@pytest.fixture(scope="session")
def store_dir(fact_sheet_store: Settings) -> Path:
    """The shared store's folder."""
    return fact_sheet_store.store


@pytest.fixture(scope="session")
def planted_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The fact sheet beside a document that tries to give the answerer instructions."""
    root = tmp_path_factory.mktemp("planted")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(FACT_SHEET, corpus / FACT_SHEET.name)
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", corpus / "metadata.toml")
    (corpus / "hinweis.txt").write_text(INJECTION, encoding="utf-8")
    settings = Settings(
        corpus=[corpus], store=root / "store", models_dir=MODELS_DIR, llm_backend="extractive"
    )
    assert ingest_corpus(settings).exit_code == 0
    return settings


@pytest.fixture(scope="module")
def answerer(fact_sheet_store: Settings, searcher: Searcher) -> Answerer:
    """An extractive answerer over the shared store (a module may override it with the model)."""
    return Answerer(
        fact_sheet_store.model_copy(update={"llm_backend": "extractive"}), searcher=searcher
    )
