"""Citation post-processing on fixed strings: mapping, invented numbers, verification."""

from __future__ import annotations

import pytest

from retrieval.citations import (
    UNSUPPORTED_MARK,
    is_connective,
    map_citations,
    passage_quote,
    quote_occurs,
    split_sentences,
)
from retrieval.passages import Passage

PAGE = (
    "• KMU sind beim Einsatz von KI noch zurückhaltend. Unterschiedliche Studien deuten auf "
    "einen Anteil von bis zu 15% (Eurostat 2021: 9% (10-49 MA) - 15% (51-249 MA)) hin.\n"
    "• Fehlende Kennt-\nnisse und KI-\nTechnologien bremsen."
)


def _passage(text: str, highlights: tuple[tuple[int, int], ...]) -> Passage:
    return Passage(
        "id", "s.txt", "T", text, 1.0, 0.9, "sha", 0, 0, len(text), highlights=highlights
    )


SOURCES = [
    "Unterschiedliche Studien deuten auf einen Anteil von bis zu 15% der KMU, die KI nutzen.",
    "KMU sind beim Einsatz von KI noch zurückhaltend.",
    "Mangelndes Know-how bedingt das fehlende Vertrauen in diese Technologie.",
]


def test_valid_citations_are_kept_in_order_of_first_use() -> None:
    mapped = map_citations(
        "KMU sind noch zurückhaltend [2]. Bis zu 15% der KMU nutzen KI [1, 2].", SOURCES
    )
    assert mapped.cited == (2, 1)
    assert mapped.text == "KMU sind noch zurückhaltend [2]. Bis zu 15% der KMU nutzen KI [1][2]."
    assert mapped.unsupported == ()


def test_invented_numbers_are_dropped_and_their_sentence_marked() -> None:
    mapped = map_citations(
        "Die KfW Bankengruppe hat 4 Mitarbeiter [7]. KMU sind zurückhaltend [2].", SOURCES
    )
    assert mapped.cited == (2,)
    assert "[7]" not in mapped.text
    assert mapped.unsupported == ("Die KfW Bankengruppe hat 4 Mitarbeiter.",)
    assert mapped.text.startswith("Die KfW Bankengruppe hat 4 Mitarbeiter." + UNSUPPORTED_MARK)


def test_citation_of_an_unrelated_source_is_dropped() -> None:
    # [3] exists, but the sentence has nothing to do with source 3: a wrong citation is worse
    # than none.
    mapped = map_citations("Die Gewerbesteuer in Köln liegt bei 475 Punkten [3].", SOURCES)
    assert mapped.cited == ()
    assert mapped.unsupported == ("Die Gewerbesteuer in Köln liegt bei 475 Punkten.",)


def test_verbatim_sentence_is_attributed_to_its_source_whatever_the_mark() -> None:
    mapped = map_citations(
        "KMU sind beim Einsatz von KI noch zurückhaltend. "
        "Mangelndes Know-how bedingt das fehlende Vertrauen in diese Technologie [1].",
        SOURCES,
    )
    assert mapped.cited == (2, 3)
    assert mapped.unsupported == ()
    assert mapped.text.startswith("KMU sind beim Einsatz von KI noch zurückhaltend [2].")


def test_uncited_sentence_is_marked_not_kept_silently() -> None:
    mapped = map_citations(
        "KMU sind zurückhaltend [2]. Das hier ist frei erfunden worden.", SOURCES
    )
    assert mapped.unsupported == ("Das hier ist frei erfunden worden.",)
    assert mapped.text.endswith(UNSUPPORTED_MARK)


@pytest.mark.parametrize(
    "sentence",
    [
        pytest.param("PWNED.", id="one-word"),
        pytest.param("Ja, stimmt.", id="two-words"),
        pytest.param("15%.", id="bare-number"),
        pytest.param("Laut den Quellen ist das so.", id="lead-in-with-a-claim"),
    ],
)
def test_short_uncited_sentences_are_marked_too(sentence: str) -> None:
    mapped = map_citations(f"KMU sind noch zurückhaltend [2]. {sentence}", SOURCES)
    assert mapped.unsupported == (sentence,)
    assert mapped.text == f"KMU sind noch zurückhaltend [2]. {sentence}{UNSUPPORTED_MARK}"


@pytest.mark.parametrize(
    "lead_in",
    ["Laut den Quellen:", "Im Einzelnen:", "Zusammengefasst:", "According to the sources:"],
)
def test_pure_lead_ins_need_no_citation(lead_in: str) -> None:
    assert is_connective(lead_in)
    mapped = map_citations(f"{lead_in} KMU sind noch zurückhaltend [2].", SOURCES)
    assert mapped.unsupported == ()
    assert mapped.text == f"{lead_in} KMU sind noch zurückhaltend [2]."


@pytest.mark.parametrize("text", ["Laut den Quellen.", "Quellen:", "Ja:", "PWNED:"])
def test_only_lead_ins_made_of_connective_words_count(text: str) -> None:
    assert is_connective(text) == (text == "Quellen:")


def test_punctuation_alone_is_no_sentence() -> None:
    mapped = map_citations("KMU sind noch zurückhaltend [2]. …", SOURCES)
    assert mapped.text == "KMU sind noch zurückhaltend [2]."
    assert mapped.unsupported == ()


def test_citation_after_the_full_stop_belongs_to_its_sentence() -> None:
    assert split_sentences("KMU zögern noch. [1] Sie nutzen KI selten. [2]") == [
        "KMU zögern noch [1].",
        "Sie nutzen KI selten [2].",
    ]
    mapped = map_citations("KMU sind noch zurückhaltend. [2] Vertrauen fehlt. [3]", SOURCES)
    assert mapped.unsupported == ()
    assert mapped.cited == (2, 3)


def test_abbreviations_end_no_sentence() -> None:
    assert split_sentences(
        "Daten bzw. Dateninfrastruktur fehlen, z. B. im Handel [1]. Am 3. Mai."
    ) == [
        "Daten bzw. Dateninfrastruktur fehlen, z. B. im Handel [1].",
        "Am 3. Mai.",
    ]


def test_variant_citation_marks_are_understood() -> None:
    mapped = map_citations(
        "KMU sind zurückhaltend [Quelle 2]. Bis zu 15% der KMU nutzen KI [1;2].", SOURCES
    )
    assert mapped.cited == (2, 1)
    assert mapped.text == "KMU sind zurückhaltend [2]. Bis zu 15% der KMU nutzen KI [1][2]."


def test_refusal_sentence_needs_no_citation() -> None:
    refusal = "Dazu enthalten die Quellen keine Aussage."
    assert map_citations(refusal, SOURCES, exempt=(refusal,)).unsupported == ()
    # Only the exact refusal is exempt, not a sentence that merely resembles it.
    near = "Dazu enthalten die Quellen keine genaue Aussage."
    assert map_citations(near, SOURCES, exempt=(refusal,)).unsupported == (near,)


def test_quote_verification_normalises_whitespace_and_hyphen_breaks() -> None:
    assert quote_occurs("Fehlende Kennt- nisse und KI-Technologien bremsen.", PAGE)
    assert quote_occurs("KMU sind beim  Einsatz von KI\nnoch zurückhaltend.", PAGE)


def test_doctored_quote_is_not_verified() -> None:
    assert not quote_occurs("Anteil von bis zu 25% (Eurostat 2021", PAGE)
    assert not quote_occurs("KMU sind beim Einsatz von KI sehr zurückhaltend.", PAGE)
    assert not quote_occurs("", PAGE)
    assert not quote_occurs("KMU sind beim Einsatz von KI noch zurückhaltend.", None)


def test_quote_joins_neighbouring_key_sentences_and_drops_the_bullet() -> None:
    first = (0, PAGE.index(" Unterschiedliche"))
    second = (first[1] + 1, PAGE.index("hin.") + 4)
    quote, span = passage_quote(_passage(PAGE, (second, first)))
    assert quote.startswith("KMU sind")
    assert quote.endswith("hin.")
    assert PAGE[span[0] : span[1]] == quote


@pytest.mark.parametrize("best_first", [True, False])
def test_distant_key_sentences_quote_only_the_best(best_first: bool) -> None:
    first = (2, PAGE.index(" Unterschiedliche"))
    last = (PAGE.index("Fehlende"), len(PAGE))
    highlights = (first, last) if best_first else (last, first)
    quote, _ = passage_quote(_passage(PAGE, highlights))
    best = highlights[0]
    assert quote == PAGE[best[0] : best[1]].strip()
