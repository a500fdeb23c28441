from __future__ import annotations

import itertools

import pytest

from ingest.chunking import (
    ChunkSizes,
    blocks,
    chunk_spans,
    chunk_units,
    find_headings,
    is_directory,
    section_units,
    split_sentences,
    word_count,
)
from quellenchat.types import Page


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Das ist gut. Das auch!",
            ["Das ist gut.", "Das auch!"],
            id="two-sentences",
        ),
        pytest.param(
            "Etwa in der Logistik (z. B. Lagerhaltung) und u. a. im Einkauf. Neuer Satz.",
            ["Etwa in der Logistik (z. B. Lagerhaltung) und u. a. im Einkauf.", "Neuer Satz."],
            id="abbreviations",
        ),
        pytest.param(
            "Am 3. Mai 2021 kam es. Danach ca. 25% mehr.",
            ["Am 3. Mai 2021 kam es.", "Danach ca. 25% mehr."],
            id="ordinal-and-ca",
        ),
        pytest.param(
            "Siehe https://www.example.de/a.html für mehr. Weiter geht es.",
            ["Siehe https://www.example.de/a.html für mehr.", "Weiter geht es."],
            id="url-dots",
        ),
        pytest.param(
            "• Erster Punkt\n• Zweiter Punkt",
            ["• Erster Punkt", "• Zweiter Punkt"],
            id="bullet-lines",
        ),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_blocks_split_bullets_and_paragraphs() -> None:
    text = "Titel\n\nEin Absatz\nüber zwei Zeilen.\n• Punkt eins\n• Punkt zwei\n\nSchluss."
    assert [text[a:b] for a, b in blocks(text)] == [
        "Titel",
        "Ein Absatz\nüber zwei Zeilen.",
        "• Punkt eins",
        "• Punkt zwei",
        "Schluss.",
    ]


def test_headings_plain_inline_markdown_and_not_title() -> None:
    text = (
        "# Einleitung\n\nChancen\n\nAspekte\n\n• KMU sind zurückhaltend.\n\n"
        "Herausforderungen • Mangelndes Know-how im Unternehmen.\n\n"
        "Digitalisierungstechnologien Künstliche Intelligenz (KI)\n\n"
        "Ein ganz normaler Satz mit Punkt.\n\nhttps://www.example.de/seite"
    )
    found = [
        h.text
        for h in find_headings(text, "Digitalisierungstechnologien – Künstliche Intelligenz (KI)")
    ]
    assert found == ["Einleitung", "Chancen", "Aspekte", "Herausforderungen"]


def test_section_units_stack_adjacent_headings_and_cover_all_text() -> None:
    text = (
        "…ein paar Zahlen\n\nChancen\n\nAspekte\n\n"
        "• KMU sind beim Einsatz von KI noch zurückhaltend.\n\n"
        "Einschätzung\n\nHerausforderungen • Mangelndes Know-how im Unternehmen."
    )
    units = section_units(text, None)
    assert [u.section for u in units] == ["Chancen / Aspekte", "Einschätzung / Herausforderungen"]
    assert units[0].text.startswith("…ein paar Zahlen")  # a short preamble joins the first section
    assert [u.index for u in units] == [0, 1]
    assert all(u.number is None for u in units)
    assert "".join(u.text for u in units).replace("\n", "") == text.replace("\n", "")


def test_by_block_keeps_each_bullet_whole_and_merges_tiny_blocks() -> None:
    bullet = "• " + " ".join(["Wort"] * 30) + "."
    text = f"Chancen\n\n{bullet}\n\n{bullet}"
    spans = chunk_spans(text, ChunkSizes(), by_block=True)
    assert [text[a:b] for a, b in spans] == [f"Chancen\n\n{bullet}", bullet]


def _long_page(sentence_count: int) -> str:
    return " ".join(f"Satz Nummer {i} hat genau sieben Wörter." for i in range(sentence_count))


def test_pack_respects_sizes_whole_sentences_and_overlap() -> None:
    text = _long_page(120)  # 840 words
    sizes = ChunkSizes(target=150, maximum=250, overlap=30)
    spans = chunk_spans(text, sizes, by_block=False)
    assert len(spans) >= 5
    for a, b in spans:
        assert 20 <= word_count(text[a:b]) <= sizes.maximum
        assert text[a:b].startswith("Satz")
        assert text[a:b].endswith(".")
    for (_, prev_end), (next_start, _) in itertools.pairwise(spans):
        assert next_start < prev_end  # overlap with the previous chunk
        assert word_count(text[next_start:prev_end]) >= sizes.overlap
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)


def test_overlong_sentence_is_cut_at_words() -> None:
    text = " ".join(["Wort"] * 600)
    spans = chunk_spans(text, ChunkSizes(target=150, maximum=250, overlap=0), by_block=False)
    assert all(word_count(text[a:b]) <= 250 for a, b in spans)
    assert sum(word_count(text[a:b]) for a, b in spans) == 600


def test_chunks_are_exact_substrings_with_ids_and_sentence_spans() -> None:
    page = Page(index=4, text=_long_page(60), number=5, label="iii")
    chunks = chunk_units([page], "abc", ChunkSizes(), by_block=False)
    assert len({c.id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert page.text[chunk.start : chunk.end] == chunk.text
        assert (chunk.unit, chunk.page, chunk.page_label) == (4, 5, "iii")
        first = chunk.sentences[0]
        assert chunk.text[first[0] : first[1]].startswith("Satz Nummer")
    again = chunk_units([page], "abc", ChunkSizes(), by_block=False)
    assert [c.id for c in again] == [c.id for c in chunks]  # stable ids
    other = chunk_units([page], "abd", ChunkSizes(), by_block=False)
    assert not {c.id for c in other} & {c.id for c in chunks}


def test_by_block_short_bullets_stand_alone_and_bare_link_lists_are_no_chunks() -> None:
    text = (
        "Nützliche Links • KI-Trainer Netzwerk (BMWK):\nhttps://www.example.de/trainer.html\n\n"
        "• Digital Hub Karlsruhe\nhttps://digitalhub.example/\n\n"
        "Titelzeile\n\nhttps://www.example.de/a\nhttps://www.example.de/b\n\n"
        "Zwischentitel\n\n• " + " ".join(["Wort"] * 20)
    )
    chunks = [text[a:b] for a, b in chunk_spans(text, ChunkSizes(), by_block=True)]
    assert chunks == [
        "Nützliche Links • KI-Trainer Netzwerk (BMWK):\nhttps://www.example.de/trainer.html",
        "• Digital Hub Karlsruhe\nhttps://digitalhub.example/",
        "Zwischentitel\n\n• " + " ".join(["Wort"] * 20),
    ]


def test_packed_chunks_start_at_headings_without_overlap_and_skip_directories() -> None:
    first = _long_page(30)  # 210 words
    second = _long_page(12)
    text = (
        f"1.1 Erster Abschnitt\n\n{first}\n\n1.2 Zweiter Abschnitt\n\n{second}\n\n"
        "Taktangabe . . . . . . . . . . 20\n\nTempo . . . . . . . . 19"
    )
    chunks = [text[a:b] for a, b in chunk_spans(text, ChunkSizes(), by_block=False)]
    assert chunks[0].startswith("1.1 Erster Abschnitt")
    assert [c for c in chunks if "1.2 Zweiter Abschnitt" in c] == [
        f"1.2 Zweiter Abschnitt\n\n{second}"
    ]  # starts at its heading: no overlap from the section before
    assert not any(". . ." in c for c in chunks)  # the index lines are no chunk


def test_is_directory() -> None:
    assert is_directory("3.1.6 Automatische und manuelle Balken . . . . . . . . 30")
    assert not is_directory("Beispiele mit %{ ... %} und Punkten. Am Ende.")
