"""Search over a real store with the bundled embedder."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from quellenchat.settings import BUNDLED_EMBEDDER, GEMMA_EMBEDDER, Settings
from quellenchat.types import letters_key
from retrieval.evaluation import EvalItem, evaluate
from retrieval.lexical import analyze
from retrieval.passages import Passage
from retrieval.search import (
    Fusion,
    Searcher,
    collapse_duplicates,
    counting_first,
    default_fusion,
    fuse,
    named_sections_first,
)
from tests.helpers import ingest_corpus, run_retrieval


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        pytest.param(
            "Lohnt sich KI für kleine Betriebe überhaupt?",
            "erkennen häufig noch nicht den Nutzen",
            id="nutzen",
        ),
        pytest.param(
            "Woran scheitert die Einführung von KI oft?", "Mangelndes Know-how", id="know-how"
        ),
        pytest.param(
            "Wie wirkt sich KI auf die Umwelt aus?", "ökologischen Fußabdruck", id="umwelt"
        ),
        pytest.param(
            "Was brauche ich technisch, um KI zu nutzen?",
            "Technische Infrastruktur",
            id="technik",
        ),
        pytest.param(
            "Wo finde ich Beispiele erfolgreicher KI-Projekte?", "Best-Practice", id="beispiele"
        ),
    ],
)
def test_german_paraphrases_find_the_right_bullet(
    searcher: Searcher, question: str, expected: str
) -> None:
    passages = searcher.search(question, k=3)
    assert any(expected in p.text for p in passages), [p.text[:80] for p in passages]


def test_compound_query_finds_its_parts(searcher: Searcher) -> None:
    [first, *_] = searcher.search("Datenschutzanforderungen", k=3)
    assert "Datenschutz" in first.text
    assert "Anforderung" in first.text


def test_passage_fields_spans_and_key_sentence(searcher: Searcher) -> None:
    [top, *_] = searcher.search("Warum fehlt vielen Firmen das Vertrauen in KI?", k=5)
    assert top.source == "ki-faktenblatt.txt"
    assert top.title == "Digitalisierungstechnologien – Künstliche Intelligenz (KI)"
    assert top.page is None  # plain text: no page
    assert top.section is not None
    assert "Herausforderungen" in top.section
    page = searcher.client.get_collection("qc_pages").get(ids=[f"{top.doc_sha}:{top.unit}"])
    assert page["documents"][0][top.start : top.end] == top.text  # exact span in the page text
    [key, *_] = top.key_sentences
    assert "fehlende Vertrauen in diese Technologie" in key
    assert top.similarity > 0.5


def test_near_duplicates_never_fill_two_slots(searcher: Searcher) -> None:
    snapshot = searcher.snapshot()
    passages = searcher.search(
        "Plattform Lernende Systeme KI im Mittelstand Potenziale erkennen", k=10
    )
    keys = [frozenset(snapshot.terms(p.id)) for p in passages]
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert len(a & b) / len(a | b) < searcher.fusion.duplicate_overlap


def _passage(pid: str, text: str) -> Passage:
    return Passage(
        id=pid,
        source="s",
        title="t",
        text=text,
        score=0.0,
        similarity=0.0,
        doc_sha="d",
        unit=0,
        start=0,
        end=len(text),
    )


def test_collapse_duplicates_keeps_long_passages_that_contain_a_short_one() -> None:
    short = _passage("a", "KI Einkauf")
    long = _passage("b", "KI Einkauf Logistik Produktion Wartung")
    same = _passage("c", "KI Einkauf")
    terms = {
        "a": frozenset({"ki", "einkauf"}),
        "b": frozenset({"ki", "einkauf", "logistik", "produktion", "wartung"}),
        "c": frozenset({"ki", "einkauf"}),
    }
    kept = collapse_duplicates([short, long, same], 10, 0.85, lambda p: terms[p.id])
    assert [p.id for p in kept] == ["a", "b"]


def test_filters_restrict_to_matching_documents(searcher: Searcher) -> None:
    passages = searcher.search("Brot backen", k=5, filters={"source": "ki-faktenblatt.txt"})
    assert passages
    assert all(p.source == "ki-faktenblatt.txt" for p in passages)
    assert searcher.search("Brot backen", k=5, filters={"source": "gibt-es-nicht.txt"}) == []
    assert searcher.search("   ", k=5) == []


def test_eval_metrics_on_a_tiny_set_with_known_numbers(searcher: Searcher) -> None:
    items = [
        EvalItem("Warum fehlt vielen Firmen das Vertrauen in KI?", "fehlende Vertrauen", True),
        EvalItem("Wie backt man Sauerteigbrot?", "Sauerteig braucht Zeit", True),
        EvalItem("Wer gewann das Pokalfinale?", "Zeichenkette die nirgends vorkommt", True),
        EvalItem("Wie hoch ist der Mindestlohn?", None, False),
    ]
    result = evaluate(items, lambda q: searcher.search(q, 10))
    assert result["answerable"] == 3
    assert result["hit@1"] == result["hit@10"] == pytest.approx(2 / 3, abs=1e-3)
    assert result["mrr@10"] == pytest.approx(2 / 3, abs=1e-3)
    assert result["top_similarity_unanswerable"]["n"] == 1
    assert letters_key("15% (51-249 MA)") == "1551249ma"


def test_cli_search_json_contract(store_dir: Path, tmp_path: Path) -> None:
    done = run_retrieval(
        "search", "Wie kann KI im Einkauf helfen?", "--k", "3", "--store", str(store_dir), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout carries only JSON
    assert result["query"] == "Wie kann KI im Einkauf helfen?"
    assert len(result["passages"]) == 3
    for passage in result["passages"]:
        assert {"id", "source", "title", "page", "section", "text", "score", "url"} <= set(passage)
    assert "KI-basierte Abwicklung" in result["passages"][0]["text"]

    questions = tmp_path / "fragen.txt"
    questions.write_text("Was ist Sauerteig?\n\nWer gewann das Pokalfinale?\n", encoding="utf-8")
    lines = run_retrieval(
        "search", "--questions", str(questions), "--store", str(store_dir), "--json"
    )
    assert lines.returncode == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["Was ist Sauerteig?", "Wer gewann das Pokalfinale?"]
    assert rows[1]["passages"][0]["source"] == "fussball.txt"

    listing = run_retrieval("search", "Wer gewann das Pokalfinale?", "--store", str(store_dir))
    assert "Frage: Wer gewann das Pokalfinale?" in listing.stdout
    assert "[1]" in listing.stdout


def test_cli_eval_prints_metrics_json(store_dir: Path, tmp_path: Path) -> None:
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        '{"question": "Wer gewann das Pokalfinale?", "gold": "Elfmeterschießen", '
        '"answerable": true}\n'
        '{"question": "Wie hoch ist der Mindestlohn?", "gold": null, "answerable": false}\n',
        encoding="utf-8",
    )
    done = run_retrieval("eval", str(dev), "--store", str(store_dir), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["hit@1"] == 1.0
    assert result["top_similarity_unanswerable"]["n"] == 1
    missing = run_retrieval("search", "x", "--store", str(tmp_path / "fehlt"))
    assert missing.returncode == 2
    assert "existiert nicht" in missing.stderr


def test_fuse_bonus_reaches_dense_candidates_outside_the_lexical_list() -> None:
    similarity = {"a": 0.90, "b": 0.88, "c": 0.80}
    lexical = [("c", 10.0)]  # "b" is just outside the lexical top list but has a BM25 score
    bm25 = {"c": 10.0, "b": 5.0}.get
    fused = fuse(Fusion(lexical_bonus=0.08), similarity, lexical, lambda cid: bm25(cid, 0.0))
    assert fused == pytest.approx({"b": 0.92, "a": 0.90, "c": 0.88})
    assert list(fused) == ["b", "a", "c"]


def test_gemmas_wider_cosines_get_a_larger_lexical_bonus() -> None:
    assert default_fusion(GEMMA_EMBEDDER).lexical_bonus == pytest.approx(0.12)
    assert default_fusion(BUNDLED_EMBEDDER) == Fusion()
    # On Gemma's scale a dense lead of 0.09 is common between the right bullet and a wrong one;
    # the bullet holding the question's rare word overtakes it only with the larger bonus.
    similarity = {"wrong": 0.50, "right": 0.41}
    lexical = [("right", 10.0), ("wrong", 1.0)]
    bm25 = dict(lexical).get
    for fusion, first in ((Fusion(), "wrong"), (default_fusion(GEMMA_EMBEDDER), "right")):
        fused = fuse(fusion, similarity, lexical, lambda cid: bm25(cid, 0.0))
        assert next(iter(fused)) == first


def test_fuse_rrf_adds_reciprocal_ranks() -> None:
    similarity = {"a": 0.90, "b": 0.88, "c": 0.80}
    lexical = [("c", 10.0), ("b", 5.0)]
    fused = fuse(Fusion(method="rrf", rrf_k=10), similarity, lexical, lambda cid: 0.0)
    assert fused == pytest.approx({"b": 1 / 12 + 1 / 12, "c": 1 / 13 + 1 / 11, "a": 1 / 11})
    assert list(fused) == ["c", "b", "a"]


def test_a_number_question_puts_figures_that_count_before_negated_ones() -> None:
    terms = {
        "none": [
            frozenset(analyze("40% der Mittelständler setzen weder KI ein noch planen sie es."))
        ],
        "some": [frozenset(analyze("Studien deuten auf einen Anteil von bis zu 15% hin."))],
        "text": [frozenset(analyze("KMU sind beim Einsatz von KI noch zurückhaltend."))],
    }
    fused = {"none": 0.90, "some": 0.87, "text": 0.86}
    asked = set(analyze("Wie viele Mittelständler setzen KI ein?"))
    assert list(counting_first(fused, asked, terms)) == ["some", "text", "none"]
    negated = set(analyze("Wie viele Mittelständler setzen keine KI ein?"))
    assert list(counting_first(fused, negated, terms)) == ["none", "some", "text"]


def test_the_share_of_firms_using_ai_comes_before_those_that_do_not(searcher: Searcher) -> None:
    [top, *_] = searcher.search(
        "Wie viel Prozent der Mittelständler nutzen schon künstliche Intelligenz?", k=3
    )
    assert "weder" not in top.text, top.text[:80]
    negated = searcher.search("Wie viele Mittelständler setzen keine KI ein?", k=3)
    assert any("weder" in p.text for p in negated), [p.text[:80] for p in negated]


def test_coverage_counts_a_users_word_the_passage_holds_in_the_sheets_word(
    fact_sheet_store: Settings, searcher: Searcher
) -> None:
    # „Hemmnisse“ never occurs in the sheet; its bullets stand under „Herausforderungen“.
    # Without the thesaurus the question's heaviest word is missing from every passage.
    question = "Welche Hemmnisse gibt es?"
    fusion = replace(searcher.fusion, expand=False)
    plain = Searcher(fact_sheet_store, embedder=searcher.embedder, fusion=fusion)
    assert all(p.coverage == 0.0 for p in plain.search(question, 10))
    challenges = [p for p in searcher.search(question, 10) if p.section == "Herausforderungen"]
    assert challenges
    assert all(p.coverage >= 0.5 for p in challenges)  # „gibt“ weighs as much, held by none


def test_the_key_sentence_holds_the_sheets_word_for_the_users_word(searcher: Searcher) -> None:
    # „Abläufe verbessern“: the sheet says „Prozesse optimieren“, in the Chancen passage's
    # first bullet; its customer-data bullet shares only „KI“ with the question.
    passages = searcher.search("Wie kann ich meine Abläufe mit KI verbessern?", k=5)
    chancen = [p for p in passages if "Verknüpfung von Daten" in p.text]
    assert chancen, [p.text[:60] for p in passages]
    assert all("Prozesse optimieren" in p.key_sentences[0] for p in chancen)


def test_page_texts_are_read_once_per_snapshot_and_afresh_after_a_change(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    from quellenchat.storage import read_page_text, read_sources

    document = corpus_dir / "notiz.txt"
    document.write_text("Die Werkstatt nutzt KI für die Wartung der Maschinen.\n", encoding="utf-8")
    settings = make_settings()
    assert ingest_corpus(settings).exit_code == 0
    searcher = Searcher(settings)
    searcher.search("Wartung der Maschinen", 3)
    old = read_sources(searcher.client)[0].doc_sha

    first = searcher.page_text(old, 0)
    assert first == read_page_text(searcher.client, old, 0)
    assert first is not None
    assert "Wartung" in first
    assert searcher.page_text(old, 0) is first  # kept, not read again
    assert searcher.page_text(old, 99) is None  # a page the store lacks

    document.write_text("Die Werkstatt nutzt KI für die Planung der Schichten.\n", encoding="utf-8")
    assert ingest_corpus(settings).exit_code == 0
    searcher.search("Planung der Schichten", 3)  # sees the new manifest: the cache is emptied
    new = read_sources(searcher.client)[0].doc_sha

    assert new != old
    assert searcher.page_text(old, 0) is None  # the old version is gone from the store
    assert "Schichten" in (searcher.page_text(new, 0) or "")


def test_a_section_the_question_names_comes_first() -> None:
    fused = {"bullet": 0.50, "start": 0.41, "other": 0.45}
    sections = {"bullet": "Herausforderungen", "start": "Digitale Mindestanforderungen"}
    asked = frozenset(analyze("Wie fange ich an? Mindestanforderungen"))
    ranked, boosted = named_sections_first(fused, asked, sections, 0.12)
    assert list(ranked) == ["start", "bullet", "other"]
    assert boosted == {"start"}
    # Whole words only: „weitesten“ shares a compound part with „Weiterführende“, no more.
    far = frozenset(analyze("Welche Firmen sind am weitesten vorne?"))
    assert (
        named_sections_first(fused, far, {"bullet": "Weiterführende Literatur"}, 0.12)[1] == set()
    )


def test_the_heading_bonus_sends_how_to_start_questions_to_the_prerequisites(
    searcher: Searcher,
) -> None:
    assert default_fusion(GEMMA_EMBEDDER).heading_bonus == pytest.approx(0.12)
    assert default_fusion(BUNDLED_EMBEDDER).heading_bonus == 0.0
    first = searcher.search("Wie fange ich in meiner Firma mit KI an, was brauche ich?", 5)[0]
    assert first.section == "Digitale Mindestanforderungen"
    assert first.section_bonus == pytest.approx(searcher.fusion.heading_bonus)
    # „nutzen“ is the verb of nearly every question, not the „Anwendungsbereiche“.
    for passage in searcher.search("Welche Firmen nutzen KI am häufigsten?", 5):
        assert passage.section_bonus == 0.0


def test_a_misspelt_word_finds_the_passage_it_means(searcher: Searcher) -> None:
    question = "Spielt Datenschutz eine Rolle, warum Firmen KI nicht nutzen?"
    right = {p.id: p.coverage for p in searcher.search(question, 5)}
    typo = {p.id: p.coverage for p in searcher.search(question.replace("tz", "z", 1), 5)}
    assert any("Datenschutz" in p.text for p in searcher.search(question, 3))
    # The passages holding the word count it for the misspelt question as for the right one.
    both = right.keys() & typo.keys()
    assert any("Datenschutz" in searcher.snapshot().chunks[cid].text for cid in both)
    assert {cid: typo[cid] for cid in both} == pytest.approx({cid: right[cid] for cid in both})
