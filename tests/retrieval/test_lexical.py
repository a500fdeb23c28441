from __future__ import annotations

import pytest

from retrieval.lexical import (
    STOPWORDS,
    GermanAnalyzer,
    LexicalIndex,
    analyze,
    fold,
    split_compound,
    tokenize,
)

# A small hand-written German corpus (own sentences, no third-party text).
CORPUS: dict[str, str] = {
    "datenschutz": "Kleine Firmen müssen hohe Anforderungen an den Datenschutz erfüllen.",
    "wetter": "Morgen wird das Wetter an der Küste sonnig und warm.",
    "verbreitung": "Rund 15% der mittelgroßen Unternehmen setzen KI bereits ein.",
    "strategie": "Eine Digitalisierungsstrategie hilft dem Unternehmen bei Investitionen.",
    "einkauf": "Im Einkauf übernimmt eine KI-basierte Abwicklung Routinebestellungen.",
    "sprachmodelle": "Große Sprachmodelle brauchen viel Rechenleistung für das Training.",
    "brot": "Ein Brot aus Sauerteig braucht Zeit, Mehl, Wasser und Salz.",
    "groesse": "Die Größe des Betriebs entscheidet über das Budget.",
}


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex(list(CORPUS), list(CORPUS.values()))


def ranked_ids(index: LexicalIndex, query: str, k: int = 10) -> list[str]:
    return [chunk_id for chunk_id, _ in index.search(query, k)]


@pytest.mark.parametrize(
    "variants",
    [
        pytest.param(["Größe", "groesse", "GRÖSSE", "Grösse"], id="umlaut-and-sharp-s"),
        pytest.param(["Übernahme", "uebernahme", "ÜBERNAHME"], id="capital-umlaut"),
        pytest.param(["Straße", "Strasse", "STRAẞE"], id="capital-sharp-s"),
        pytest.param(["Unternehmen", "Unternehmens", "unternehmen"], id="stemming"),
        pytest.param(["Anforderung", "Anforderungen"], id="plural"),
        pytest.param(["ﬁnanzen", "Finanzen"], id="nfkc-ligature"),
    ],
)
def test_variants_meet(variants: list[str]) -> None:
    assert len({tuple(analyze(word)) for word in variants}) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("15%", ["15", "prozent"], id="percent"),
        pytest.param("im Jahr 2021", ["jahr", "2021"], id="year"),
        pytest.param("KI", ["ki"], id="short-acronym"),
        pytest.param("15.000 EUR", ["15.000", "15", "000", "eur"], id="number-with-separator"),
        pytest.param("und der die das", [], id="only-stopwords"),
        pytest.param("", [], id="empty"),
        pytest.param("  ...  ", [], id="punctuation-only"),
    ],
)
def test_analyze_tokens(text: str, expected: list[str]) -> None:
    assert analyze(text) == expected


def test_fold_and_tokenize() -> None:
    assert fold("Größe ÄÖÜ") == "groesse aeoeue"
    assert tokenize("KI-basierte Lösungen (2021): 9%") == [
        "ki",
        "basierte",
        "loesungen",
        "2021",
        "9",
        "prozent",
    ]


def test_stopwords_are_folded() -> None:
    assert "fuer" in STOPWORDS
    assert all(word == fold(word) for word in STOPWORDS)


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        pytest.param(
            "datenschutzanforderungen",
            {"datenschutz", "anforderungen", "daten", "schutz"},
            id="three-parts",
        ),
        pytest.param("digitalisierungsstrategie", {"digitalisierung", "strategie"}, id="linking-s"),
        pytest.param("geschaeftsmodelle", {"geschaeft", "modelle"}, id="folded-umlaut"),
        pytest.param("wettbewerbsfaehiger", {"wettbewerb", "faehig"}, id="inflected-adjective"),
        pytest.param("unternehmen", set(), id="prefix-verb-not-split"),
        pytest.param("gesellschaft", set(), id="suffix-not-a-part"),
        pytest.param("interessen", set(), id="frequent-word-kept-whole"),
        pytest.param("ki", set(), id="too-short"),
        pytest.param("datenschutz" * 7, set(), id="too-long"),
    ],
)
def test_split_compound(word: str, parts: set[str]) -> None:
    assert set(split_compound(word)) == parts


def test_compound_emits_whole_word_first() -> None:
    terms = analyze("Datenschutzanforderungen")
    assert terms[0] == analyze("datenschutzanforderung")[0]
    assert set(analyze("Anforderungen an den Datenschutz")) <= set(terms)


def test_analysis_is_deterministic() -> None:
    text = "Die Wertschöpfungskette im Mittelstand: 40% der Firmen."
    assert analyze(text) == analyze(text) == GermanAnalyzer()(text)


def test_analyzer_options() -> None:
    text = "Die Datenschutzanforderungen"
    assert GermanAnalyzer(stopwords=False, stem=False, splitter=None)(text) == [
        "die",
        "datenschutzanforderungen",
    ]
    assert "die" not in GermanAnalyzer(stem=False, splitter=None)(text)


@pytest.mark.parametrize(
    ("query", "best"),
    [
        pytest.param("Datenschutzanforderungen", "datenschutz", id="compound-query-finds-parts"),
        pytest.param("Strategie zur Digitalisierung", "strategie", id="parts-query-finds-compound"),
        pytest.param(
            "Wie viel Prozent der Unternehmen nutzen KI?", "verbreitung", id="percent-as-word"
        ),
        pytest.param("15 %", "verbreitung", id="number"),
        pytest.param("Wie hilft KI im Einkauf?", "einkauf", id="question"),
        pytest.param("Training von Sprachmodellen", "sprachmodelle", id="inflected-compound"),
        pytest.param("Modelle der Sprache", "sprachmodelle", id="truncated-modifier"),
        pytest.param("GROESSE des Betriebes", "groesse", id="folded-query"),
        pytest.param("Sauerteigbrot backen", "brot", id="unknown-compound"),
    ],
)
def test_ranking(index: LexicalIndex, query: str, best: str) -> None:
    assert ranked_ids(index, query)[0] == best


def test_compound_ranks_above_unrelated(index: LexicalIndex) -> None:
    ranking = ranked_ids(index, "Datenschutzanforderungen")
    assert ranking[0] == "datenschutz"
    assert "wetter" not in ranking


def test_scores_descend_and_are_positive(index: LexicalIndex) -> None:
    hits = index.search("KI Unternehmen Einkauf Datenschutz", 10)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)
    assert len({chunk_id for chunk_id, _ in hits}) == len(hits)


def test_k_limits_results(index: LexicalIndex) -> None:
    assert len(index.search("KI Unternehmen Einkauf Datenschutz", 2)) == 2
    assert index.search("KI", 0) == []


@pytest.mark.parametrize(
    "allowed",
    [
        pytest.param({"einkauf", "brot"}, id="subset"),
        pytest.param(["einkauf", "unbekannt"], id="unknown-id-ignored"),
        pytest.param(set(), id="empty"),
    ],
)
def test_allowed_filter(index: LexicalIndex, allowed: set[str] | list[str]) -> None:
    hits = index.search("KI Unternehmen Einkauf", 10, allowed=allowed)
    assert {chunk_id for chunk_id, _ in hits} <= set(allowed)
    if "einkauf" in allowed:
        assert hits[0][0] == "einkauf"


def test_allowed_filter_keeps_scores(index: LexicalIndex) -> None:
    unfiltered = dict(index.search("KI im Einkauf", 10))
    filtered = index.search("KI im Einkauf", 10, allowed={"verbreitung"})
    assert filtered == [("verbreitung", unfiltered["verbreitung"])]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("und oder der", id="stopwords-only"),
        pytest.param("Quantenchromodynamik", id="unknown-word"),
    ],
)
def test_query_without_known_terms(index: LexicalIndex, query: str) -> None:
    assert index.search(query, 5) == []


def test_len(index: LexicalIndex) -> None:
    assert len(index) == len(CORPUS)


def test_empty_index() -> None:
    empty = LexicalIndex([], [])
    assert len(empty) == 0
    assert empty.search("KI", 5) == []


def test_chunk_without_terms_is_indexed() -> None:
    small = LexicalIndex(["leer", "voll"], ["und der", "KI im Einkauf"])
    assert len(small) == 2
    assert [chunk_id for chunk_id, _ in small.search("KI", 5)] == ["voll"]


@pytest.mark.parametrize(
    ("ids", "texts"),
    [
        pytest.param(["a", "b"], ["nur ein Text"], id="length-mismatch"),
        pytest.param(["a", "a"], ["eins", "zwei"], id="duplicate-ids"),
    ],
)
def test_invalid_input(ids: list[str], texts: list[str]) -> None:
    with pytest.raises(ValueError, match="ids"):
        LexicalIndex(ids, texts)


def test_bm25_parameters_change_scores() -> None:
    texts = ["KI KI KI im Einkauf und in der Logistik", "KI"]
    default = LexicalIndex(["a", "b"], texts).search("KI", 2)
    saturated = LexicalIndex(["a", "b"], texts, k1=0.1, b=0.0).search("KI", 2)
    assert default != saturated


def test_idf_orders_terms_by_rarity(index: LexicalIndex) -> None:
    (rare,) = analyze("Salz")
    (common,) = analyze("KI")
    assert 0 < index.idf(common) < index.idf(rare) < index.idf("unbekannt")
    # A term no chunk holds weighs most; `holds` tells it apart from the rarest held term.
    assert index.holds(rare)
    assert index.holds(common)
    assert not index.holds("unbekannt")


def test_idf_matches_bm25_scores() -> None:
    small = LexicalIndex(["a", "b", "c"], ["Brot", "Salz", "Wasser"], k1=1.2, b=0.0)
    ((_, score),) = small.search("Brot", 3)
    # Lucene BM25 (as in bm25s) with b=0 and tf=1: idf * tf / (tf + k1).
    assert score == pytest.approx(small.idf("brot") / (1 + 1.2), rel=1e-5)


def test_query_scores_every_chunk_once(index: LexicalIndex) -> None:
    scores = index.query("KI im Einkauf")
    top = scores.top(10)
    assert top == index.search("KI im Einkauf", 10)
    assert all(scores.score(chunk_id) == score for chunk_id, score in top)
    assert scores.score("wetter") == 0.0  # no shared term
    assert scores.score("unbekannt") == 0.0  # no such chunk
    assert index.query("Quantenchromodynamik").top(5) == []


def test_a_questions_filler_adverbs_choose_no_passage() -> None:
    # „bereits“ says nothing about what is asked; as a term it chose the 12 % sentence, which
    # counts firms that already invest in digitalisation, over the share of KMU.
    assert analyze("Wie viele KMU setzen bereits KI ein?") == analyze(
        "Wie viele KMU setzen KI ein?"
    )
    index = LexicalIndex(
        ["anteil", "digital"],
        [
            "KMU sind beim Einsatz von KI noch zurückhaltend: ein Anteil von bis zu 15 %.",
            "KI wird vorrangig in Unternehmen eingesetzt, die bereits in die Digitalisierung "
            "investieren (12 % der Unternehmen).",
        ],
    )
    for filler in ("bereits", "schon", "eigentlich", "überhaupt", "inzwischen", "derzeit"):
        best = index.search(f"Wie viele KMU setzen {filler} KI ein?", 1)
        assert [chunk for chunk, _ in best] == ["anteil"], filler


def test_a_long_word_the_index_lacks_is_read_as_its_term_one_letter_off() -> None:
    index = LexicalIndex(
        ["a", "b", "c"],
        [
            "Hohe Anforderung an den Datenschutz.",
            "Datenschutz und Datensicherheit.",
            "Vorausschauende Wartung der Anlagen.",
        ],
    )
    found = index.corrections(analyze("Spielt Datenschuz eine Rolle? Instandhaltnug, Wartnug"))
    # „Instandhaltnug“ is no word of the index one letter off.
    assert found == {"datenschuz": "datenschutz", "wartnug": "wartung"}
    # Short words lie one letter apart too often; words the index holds are no typos.
    assert index.corrections(analyze("Dtaen Datenschutz Anlage")) == {}
    top = index.query("Datenschuz", ["datenschutz"]).top(3)
    assert {cid for cid, _ in top} == {"a", "b"}
