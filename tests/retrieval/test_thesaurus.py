"""Everyday words bring the sources' terms into the lexical query and the choice of key sentence.

The embedding and the question as shown stay as asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import retrieval.thesaurus
from retrieval.thesaurus import Thesaurus, default_thesaurus


def test_keys_match_inflected_and_folded_words() -> None:
    thesaurus = Thesaurus.from_mapping({"Hemmnis": ["Herausforderungen"], "kleine Firma": ["KMU"]})
    assert thesaurus.expand("Welche Hemmnisse gibt es?") == (
        "Welche Hemmnisse gibt es? Herausforderungen"
    )
    assert thesaurus.expand("Hemmnisse fuer KLEINE Firma?").endswith("Herausforderungen KMU")
    # every word of a key must occur
    assert thesaurus.expand("Eine kleine Bäckerei") == "Eine kleine Bäckerei"


def test_a_noun_key_matches_its_plural_where_the_stemmer_cuts_it_differently() -> None:
    # The stemmer reduces „Problem“ to „probl“ but „Probleme“ to „problem“.
    thesaurus = Thesaurus.from_mapping({"Problem": ["Herausforderungen"]})
    assert thesaurus.added("Probleme bei der KI-Einführung?") == ["Herausforderungen"]
    assert thesaurus.added("Welches Problem gibt es?") == ["Herausforderungen"]
    assert thesaurus.added("Prognosen für KI?") == []


def test_related_maps_each_asked_term_to_the_source_terms_it_stands_for() -> None:
    thesaurus = Thesaurus.from_mapping(
        {"Hemmnis": ["Herausforderungen"], "kleine Firma": ["KMU"], "Lager": ["Logistik"]}
    )
    related = thesaurus.related("Welche Hemmnisse hat eine kleine Firma?")
    assert related == {
        "hemmnis": frozenset({"herausforder"}),
        "klein": frozenset({"kmu"}),
        "firma": frozenset({"kmu"}),
    }
    assert thesaurus.related("Eine kleine Bäckerei?") == {}


def test_a_long_word_one_letter_off_a_key_is_a_typo_of_it() -> None:
    thesaurus = Thesaurus.from_mapping(
        {"Qualitätskontrolle": ["Fehlererkennung"], "Planung": ["Planungstools"]}
    )
    question = "KI in der Qualitätskontrole – funktioniert das?"
    assert thesaurus.added(question) == ["Fehlererkennung"]
    # The coverage bridge is keyed by the term as typed.
    assert thesaurus.related(question) == {
        "qualitatskontrol": frozenset({"fehlererkenn", "fehl", "erkenn"})
    }
    # Short stems are left alone: „Planer“ is no typo of „Planung“.
    assert thesaurus.added("Braucht ein Planer KI?") == []


def test_a_part_of_a_misspelt_compound_is_no_key_by_itself() -> None:
    # „Qualitätskontrole“ holds the parts of „Qualitätskontrolle“ only for that key.
    other = Thesaurus.from_mapping({"Kontrolle": ["Prüfung"], "Qualität": ["Güte"]})
    assert other.added("KI in der Qualitätskontrole?") == []


def test_a_shorter_word_is_a_typo_of_a_key_only_by_a_doubled_letter_typed_once() -> None:
    thesaurus = Thesaurus.from_mapping({"Hemmnis": ["Herausforderungen"], "Planung": ["Tools"]})
    assert thesaurus.added("Welche Hemnisse gibt es?") == ["Herausforderungen"]
    # Any other slip in a word that short is left alone (it too often makes another word).
    assert thesaurus.added("Hilft KI bei der Planug?") == []


def test_terms_are_added_once() -> None:
    thesaurus = Thesaurus.from_mapping(
        {"Hürde": ["Herausforderungen"], "Hemmnis": ["Herausforderungen"]}
    )
    assert thesaurus.expand("Hürden und Hemmnisse").count("Herausforderungen") == 1


def test_the_shipped_thesaurus_bridges_the_issue_examples() -> None:
    expand = default_thesaurus().expand
    assert "Produktion" in expand("Wofür kann man KI in der Fertigung nutzen?")
    assert "Herausforderungen" in expand("Welche Hemmnisse gibt es beim KI-Einsatz in KMU?")
    assert "KI-Trainer" in expand("Gibt es Berater, die Mittelständler beim Thema KI schulen?")
    assert expand("Wie backt man Brot?") == "Wie backt man Brot?"


def test_what_firms_lack_are_the_challenges() -> None:
    added = default_thesaurus().added("Warum fehlt vielen Mittelständlern der Druck?")
    assert "Herausforderungen" in added
    # „Fehler“ shares the stem of „fehlen“, not of „fehlt“.
    assert "Herausforderungen" not in default_thesaurus().added("Erkennt KI Fehler?")


def test_what_comes_out_in_the_end_is_the_result() -> None:
    added = default_thesaurus().added("Man weiß ja vorher nicht, was am Ende rauskommt.")
    assert "Ergebnissen" in added


def test_conjugated_and_separable_verbs_match_their_infinitive_key() -> None:
    from retrieval.thesaurus import Thesaurus

    thesaurus = Thesaurus.from_mapping({"bringen": ["Chancen"], "abhalten": ["Hürden"]})
    assert thesaurus.expand("Was bringt mir KI?").endswith("Chancen")
    assert thesaurus.expand("Was hält kleine Firmen davon ab, KI einzusetzen?").endswith("Hürden")
    assert thesaurus.expand("Was hält die Firma?") == "Was hält die Firma?"  # no particle


def test_a_verb_the_stemmer_cuts_differently_matches_its_infinitive_key() -> None:
    from retrieval.thesaurus import Thesaurus

    # Stemmed, „bremst“ is „brem“ but „bremsen“ is „brems“; „hindert“ stays, „hindern“ is „hind“.
    thesaurus = Thesaurus.from_mapping({"bremsen": ["Hürden"], "hindern": ["Hürden"]})
    assert thesaurus.expand("Was bremst Betriebe?").endswith("Hürden")
    assert thesaurus.expand("Was hindert uns?").endswith("Hürden")
    assert thesaurus.expand("Was brennt?") == "Was brennt?"


def test_the_added_terms_are_the_targets_of_every_key_asked() -> None:
    thesaurus = Thesaurus.from_mapping({"Ablauf": ["Prozesse"], "verbessern": ["optimieren"]})
    assert thesaurus.added("Wie kann ich meine Abläufe verbessern?") == ["Prozesse", "optimieren"]
    assert thesaurus.added("Wie backt man Brot?") == []
    # Keys can be left out (`retrieval.search.VAGUE_KEYS`), in each of their noun forms.
    assert thesaurus.added("Wie kann ich meine Abläufe verbessern?", without=["Ablauf"]) == [
        "optimieren"
    ]


def test_starting_with_ki_asks_for_the_prerequisites() -> None:
    for question in ("Wie starte ich mit KI?", "Womit sollten wir starten?"):
        assert "Mindestanforderungen" in default_thesaurus().added(question), question


def test_a_particle_before_und_still_joins_its_verb() -> None:
    added = default_thesaurus().added
    assert "Mindestanforderungen" in added("Wie fangen wir mit KI an und was klären wir vorher?")
    # Split at „und“, „vor“ would lose „bereite“: both readings count.
    assert "Mindestanforderungen" in added("Wie bereite ich unsere Daten und Systeme auf KI vor?")


def test_counting_keys_hold_only_where_a_number_is_asked() -> None:
    thesaurus = Thesaurus.from_mapping({"Hürde": ["Herausforderungen"]}, {"Mitarbeiter": ["MA"]})
    assert thesaurus.added("Wie viele Betriebe mit 20 Mitarbeitern nutzen KI?") == ["MA"]
    assert thesaurus.added("Setzen Firmen mit 250 Mitarbeitern öfter KI ein als kleine?") == ["MA"]
    assert thesaurus.added("Wie mache ich meine Mitarbeiter fit für KI?") == []
    # A noun taken from a number question keeps them.
    assert thesaurus.expand("Mitarbeitern", counting=True) == "Mitarbeitern MA"


def test_the_shipped_size_classes_are_for_number_questions_only() -> None:
    shipped = default_thesaurus()
    assert "MA" not in shipped.added("Wie kann ich meine Mitarbeiter für KI fit machen?")
    assert "MA" in shipped.added("Wieviel Prozent der Firmen ab 50 Mitarbeitern nutzen KI?")


def test_more_use_from_year_to_year_asks_for_the_trend() -> None:
    shipped = default_thesaurus()
    for asked in (
        "Wird KI im Mittelstand von Jahr zu Jahr mehr genutzt?",
        "Wird KI heute mehr eingesetzt als vor ein paar Jahren?",
    ):
        assert "steigender Tendenz" in shipped.added(asked), asked
    assert "steigender Tendenz" not in shipped.added("Aus welchem Jahr stammen die Zahlen?")


@pytest.fixture
def thesaurus_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A thesaurus file of the test's own in place of the shipped one, read afresh."""
    path = tmp_path / "thesaurus.de.toml"
    monkeypatch.setattr(retrieval.thesaurus, "THESAURUS_FILE", path)
    default_thesaurus.cache_clear()
    yield path
    default_thesaurus.cache_clear()


def test_a_file_without_terms_is_refused_and_counting_may_be_left_out(thesaurus_file: Path) -> None:
    thesaurus_file.write_text('[counting]\n"Mitarbeiter" = ["MA"]\n', encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"\[terms\] muss Wörter auf Textlisten abbilden"):
        default_thesaurus()
    thesaurus_file.write_text('[terms]\n"Hürde" = ["Herausforderungen"]\n', encoding="utf-8")
    default_thesaurus.cache_clear()
    assert default_thesaurus().added("Welche Hürden gibt es?") == ["Herausforderungen"]
