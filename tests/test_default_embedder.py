"""The default embedder, EmbeddingGemma-300M, end to end: the product path users get."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.run import EXIT_OK, run_ingest
from quellenchat.settings import GEMMA_EMBEDDER, Settings
from quellenchat.types import letters_key
from retrieval.answering import Answerer
from retrieval.refusal import default_threshold
from retrieval.search import Searcher
from tests.helpers import FACT_SHEET, MODELS_DIR, PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("corpus")
    shutil.copy(FACT_SHEET, corpus / FACT_SHEET.name)
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", corpus / "metadata.toml")
    settings = Settings(
        corpus=[corpus],
        store=tmp_path_factory.mktemp("store"),
        models_dir=MODELS_DIR,
        embedder=Settings.model_fields["embedder"].default,
        llm_backend="extractive",
    )
    report = run_ingest(settings)
    assert report.exit_code == EXIT_OK, report.to_json()
    return settings


def test_the_default_is_embeddinggemma() -> None:
    assert Settings.model_fields["embedder"].default == GEMMA_EMBEDDER


@pytest.mark.parametrize(
    ("question", "section", "words", "rank"),
    [
        (
            "Welche Hemmnisse gibt es beim KI-Einsatz in KMU?",
            "Herausforderungen",
            ["Mangelndes Know-how", "Fehlender Innovationsdruck"],
            1,
        ),
        (
            "Wofür kann man KI in der Fertigung nutzen?",
            "Anwendungsbereiche/-beispiele",
            ["vorausschauende"],
            1,
        ),
        # Rank 3 in int8, 4 in bf16: „Weiterführende Literatur“ (full of „Mittelstand“) lies
        # 0.003 to 0.005 ahead or behind. A known miss of hit@1, see bench/results.
        (
            "Gibt es Berater, die Mittelständler beim Thema KI schulen?",
            "Nützliche Links",
            ["KI-Trainer"],
            5,
        ),
    ],
)
def test_everyday_words_find_the_sheets_section(
    default_store: Settings, question: str, section: str, words: list[str], rank: int
) -> None:
    passages = Searcher(default_store).search(question, 5)
    # hit@1 is measured by the bench on the realistic sets; here: within the rank stated
    assert section in [p.section for p in passages[:rank]], [p.section for p in passages]
    top = " ".join(p.text for p in passages)
    assert all(word in top for word in words)


def test_answers_and_refusals_use_the_default_embedders_threshold(default_store: Settings) -> None:
    answerer = Answerer(default_store)
    assert answerer.threshold == default_threshold(GEMMA_EMBEDDER)
    answer = answerer.ask("Was brauche ich technisch, bevor ich mit KI anfangen kann?")
    assert not answer.refused
    assert any("Rechnerkapazitäten" in c.passage.text for c in answer.citations)
    assert answerer.ask("Wie hoch ist der Mindestlohn in Österreich?").refused


def test_a_store_of_the_old_default_is_rebuilt_not_mixed(default_store: Settings) -> None:
    old = default_store.model_copy(
        update={
            "store": Path(str(default_store.store) + "-e5"),
            "embedder": "bundled:multilingual-e5-small",
        }
    )
    assert run_ingest(old).exit_code == EXIT_OK
    again = run_ingest(old.model_copy(update={"embedder": GEMMA_EMBEDDER}))
    assert again.exit_code == EXIT_OK
    assert "Einbettungsmodell geändert" in (again.rebuild_reason or ""), again.to_json()


def test_a_list_question_reads_a_section_its_first_hits_miss(default_store: Settings) -> None:
    # „Firmen, die KI einführen“ brings „Herausforderungen“ and the sheet's figures first; the
    # bullets of the contact points follow from rank 5 on. A list question's deeper search
    # reads their section whole, and its heading (the thesaurus's term for „Anlaufstellen“)
    # makes it the answer.
    question = "Welche Anlaufstellen gibt es für Firmen, die KI einführen wollen?"
    answer = Answerer(default_store).ask(question)
    text = letters_key(answer.answer)
    for point in ("KI-Trainer", "Kompetenzzentren", "Zukunftszentren", "Regionalzentren"):
        assert letters_key(point) in text, answer.answer
