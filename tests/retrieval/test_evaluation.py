"""Evaluation with page-level gold: a real two-page PDF whose gold phrase is on both pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quellenchat.settings import Settings
from quellenchat.types import letters_key
from retrieval.cli import main
from retrieval.evaluation import EvalItem, evaluate, read_items
from retrieval.search import Searcher
from tests.helpers import MODELS_DIR, ingest_corpus, write_pdf

PDF = "zwei-seiten.pdf"
GOLD = "Treffpunkt ist der alte Brunnen"
# The gold sentence sits mid-page on both pages, so header/footer stripping leaves it alone.
PAGES = [
    "Die Bäckerei am Markt backt jeden Morgen frisches Brot und Brötchen. Treffpunkt ist der "
    "alte Brunnen neben dem Rathaus. Der Sauerteig ruht über Nacht in der warmen Backstube, "
    "bevor er in den Ofen kommt.",
    "Der Fußballverein gewann das Pokalfinale nach einem langen Elfmeterschießen. Treffpunkt "
    "ist der alte Brunnen neben dem Rathaus. Die Fans feierten den Sieg ihrer Mannschaft bis "
    "tief in die Nacht.",
]
BREAD = "Wie lange ruht der Sauerteig in der Backstube?"
FOOTBALL = "Wie hat der Verein das Pokalfinale gewonnen?"
# Bread questions rank page 1 first and page 2 second (the store has just these two passages).
ITEMS: list[dict[str, Any]] = [
    {"question": BREAD, "gold": GOLD, "answerable": True, "source": PDF, "page": 2},  # rank 2
    {"question": BREAD, "gold": GOLD, "answerable": True, "source": PDF, "page": 1},  # rank 1
    {"question": BREAD, "gold": GOLD, "answerable": True},  # no page: page 1 counts, rank 1
    {"question": FOOTBALL, "gold": GOLD, "answerable": True, "page": 2},  # rank 1
    {"question": BREAD, "gold": GOLD, "answerable": True, "source": "andere.pdf", "page": 1},
    {"question": "Wie hoch ist der Mindestlohn?", "gold": None, "answerable": False},
]


@pytest.fixture(scope="module")
def two_page_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("evaluation")
    write_pdf(root / "corpus" / PDF, PAGES)
    settings = Settings(corpus=[root / "corpus"], store=root / "store", models_dir=MODELS_DIR)
    report = ingest_corpus(settings)
    assert report.exit_code == 0, report.to_json()
    return settings


@pytest.fixture(scope="module")
def searcher(two_page_store: Settings) -> Searcher:
    return Searcher(two_page_store)


def _write_items(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")
    return path


def test_gold_phrase_is_on_both_pages_and_bread_ranks_page_one_first(searcher: Searcher) -> None:
    passages = searcher.search(BREAD, 10)
    assert [(p.source, p.page) for p in passages] == [(PDF, 1), (PDF, 2)]
    assert all(letters_key(GOLD) in letters_key(p.text) for p in passages)
    assert searcher.search(FOOTBALL, 10)[0].page == 2


def test_only_the_right_page_and_source_count(searcher: Searcher, tmp_path: Path) -> None:
    items = read_items(_write_items(tmp_path / "set.jsonl", ITEMS))
    assert items[0] == EvalItem(BREAD, GOLD, True, PDF, 2)
    assert items[2].page is None
    result = evaluate(items, lambda q: searcher.search(q, 10))
    assert result["questions"] == 6
    assert result["answerable"] == 5
    assert result["hit@1"] == pytest.approx(3 / 5)
    assert result["hit@3"] == result["hit@10"] == pytest.approx(4 / 5)
    assert result["mrr@10"] == pytest.approx((0.5 + 1 + 1 + 1 + 0) / 5)
    assert result["top_similarity_unanswerable"]["n"] == 1


def test_eval_cli_accepts_page_and_source(
    two_page_store: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QUELLENCHAT_MODELS_DIR", str(MODELS_DIR))
    path = _write_items(tmp_path / "set.jsonl", ITEMS)
    code = main(["eval", str(path), "--store", str(two_page_store.store), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (result["hit@1"], result["hit@5"], result["mrr@10"]) == (0.6, 0.8, 0.7)


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(0, id="zero"),
        pytest.param("3", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(2.0, id="float"),
    ],
)
def test_invalid_page_names_the_line(tmp_path: Path, page: object) -> None:
    good = {"question": "Frage?", "gold": "x", "answerable": True}
    path = _write_items(tmp_path / "bad.jsonl", [good, {**good, "page": page}])
    with pytest.raises(ValueError, match=r"Zeile 2: .*page"):
        read_items(path)


def _passage(text: str, section: str) -> Any:
    from retrieval.passages import Passage

    return Passage(
        text[:8], "blatt.txt", "", text, 0.5, 0.5, "sha", 0, 0, len(text), section=section
    )


def test_realistic_fields_list_recall_and_misses(tmp_path: Path) -> None:
    listed = {
        "id": "fb-1",
        "question": "Welche Hemmnisse gibt es?",
        "answerable": True,
        "kind": "list",
        "split": "heldout",
        "gold": "Know-how",
        "golds": ["Know-how", "Datenschutz", "Ressourcen", "Innovationsdruck"],
        "points": ["Know-how", "Datenschutz"],
    }
    single = {"id": "fb-2", "question": "Wie viele?", "gold": "15%", "split": "tune"}
    [item, other] = read_items(_write_items(tmp_path / "r.jsonl", [listed, single]))
    assert (item.kind, item.split, item.id, item.points) == (
        "list",
        "heldout",
        "fb-1",
        ("Know-how", "Datenschutz"),
    )
    assert other.gold_phrases == ("15%",)
    ranked = [
        _passage(
            "Mangelndes Know-how und hohe Anforderung an den Datenschutz.", "Herausforderungen"
        ),
        _passage("Limitierte Ressourcen.", "Herausforderungen"),
        _passage("Anteil von bis zu 15%.", "Zahlen"),
    ]
    result = evaluate([item, other], lambda q: ranked)
    assert result["hit@1"] == 0.5  # the list's first passage holds a gold; 15% is third
    assert result["list_questions"] == 1
    assert result["list_recall@5"] == 0.75  # Innovationsdruck is not in the top 5
    assert [(m["id"], m["rank"], m["recall@5"]) for m in result["misses"]] == [
        ("fb-1", 1, 0.75),
        ("fb-2", 3, None),
    ]
    assert result["misses"][1]["first"] == "blatt.txt Herausforderungen"


def test_an_unknown_split_names_the_line(tmp_path: Path) -> None:
    path = _write_items(tmp_path / "r.jsonl", [{"question": "?", "gold": "x", "split": "test"}])
    with pytest.raises(
        ValueError,
        match=r"Zeile 1: .*split muss tune, heldout, fresh, fresh2, fresh3, fresh4, fresh5, "
        r"fresh6, fresh7, fresh8, fresh9, fresh10 sein",
    ):
        read_items(path)
