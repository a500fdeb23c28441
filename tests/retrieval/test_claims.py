"""The claim check: cited sentences their passage does not hold are never shown as supported."""

from __future__ import annotations

import pytest

from retrieval.citations import UNSUPPORTED_MARK
from retrieval.claims import check, closest_sentence, echoes, supports, tidy

NUMBERS = (
    "KMU sind beim Einsatz von KI noch zurückhaltend. Unterschiedliche Studien deuten auf "
    "einen Anteil von bis zu 15% (Eurostat 2021: 9% (10-49 MA) - 15% (51-249 MA))."
)
INFRA = "• Technische Infrastruktur wie Rechnerkapazitäten."
HEADING = "Künstliche Intelligenz (KI) im Mittelstand\n\nEinführung von KI in kleinen Betrieben"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("KI bringt meinen Kunden [ [1]", "KI bringt meinen Kunden [1]"),
        ("Sie sind zurückhaltend [1][1].", "Sie sind zurückhaltend [1]."),
        ("Sie sind zurückhaltend [1] [1] [2].", "Sie sind zurückhaltend [1] [2]."),
        ("Zurückhaltend [] ] und [ so [Quelle 2].", "Zurückhaltend und so [Quelle 2]."),
    ],
)
def test_tidy_repairs_broken_brackets(raw: str, clean: str) -> None:
    assert tidy(raw) == clean


def test_numbers_must_occur_in_the_cited_passage() -> None:
    assert supports("Bis zu 15% der KMU sind beim Einsatz von KI zurückhaltend.", NUMBERS)
    assert not supports("Bis zu 40% der KMU sind beim Einsatz von KI zurückhaltend.", NUMBERS)


def test_content_words_must_occur_in_the_cited_passage() -> None:
    claim = "KI wird in der Regel in der mittelständlichen Welt verwendet."
    assert not supports(claim, NUMBERS)
    # German stems and compounds: „Rechnerkapazität“ meets „Kapazitäten von Rechnern“.
    assert supports("Es braucht Kapazitäten von Rechnern.", INFRA)


def test_an_unsupported_cited_sentence_is_replaced_by_the_passages_own() -> None:
    checked = check(
        "Die Einführung kostet 10% der Gesamtkosten [1].", {1: HEADING}, "Was kostet KI?"
    )
    assert "10%" not in checked.text
    assert checked.text == "Einführung von KI in kleinen Betrieben [1]"
    assert checked.replaced == ("Die Einführung kostet 10% der Gesamtkosten.",)


def test_a_sentence_sharing_nothing_with_its_passage_is_marked_not_supported() -> None:
    checked = check("Die Sonne scheint heute [1].", {1: INFRA}, "Wie ist das Wetter?")
    assert checked.text == "Die Sonne scheint heute." + UNSUPPORTED_MARK
    assert checked.cited == ()
    assert checked.unsupported == ("Die Sonne scheint heute.",)


def test_supported_sentences_stay_and_echoes_go() -> None:
    text = "KI bringt meinen Kunden [1]. KMU sind beim Einsatz von KI zurückhaltend [1]."
    checked = check(text, {1: NUMBERS}, "Was bringt KI meinen Kunden?")
    assert checked.text == "KMU sind beim Einsatz von KI zurückhaltend [1]."
    assert echoes("KI bringt meinen Kunden", "Was bringt KI meinen Kunden?")


def test_a_cited_question_is_no_claim() -> None:
    # The model echoed the question with its typo mended, cited, and with a stop after the „?“.
    text = (
        "KMU sind beim Einsatz von KI zurückhaltend [1]. "
        "Spielt Datenschutz eine Rolle, warum Firmen KI nicht nutzen [1]?."
    )
    checked = check(
        text, {1: NUMBERS}, "Spielt Datenschuz eine Rolle, warum Firmen KI nicht nutzen?"
    )
    assert checked.text == "KMU sind beim Einsatz von KI zurückhaltend [1]."
    assert checked.unsupported == ()


def test_a_last_sentence_cut_off_is_not_shown_as_written() -> None:
    checked = check(
        "KMU sind zurückhaltend [1]. Studien deuten auf einen Ant [1]", {1: NUMBERS}, "Wie viele?"
    )
    assert "Ant [1]" not in checked.text
    assert checked.text.startswith("KMU sind zurückhaltend [1].")


def test_closest_sentence_is_verbatim_from_the_passage() -> None:
    found = closest_sentence("Studien sagen bis zu 20%", NUMBERS)
    assert found is not None
    assert found in NUMBERS


def test_english_answers_are_checked_by_numbers_and_names() -> None:
    source = "KI-Trainer Netzwerk der Mittelstand-Digital Zentren (BMWK) seit 2021."
    assert supports("The network is run by the BMWK [1].", source, words=False)
    assert not supports("The network is run by the BMBF [1].", source, words=False)
    assert not supports("It started in 2019.", source, words=False)


SECTION = (
    "• KMU sind beim Einsatz von KI noch zurückhaltend. Studien deuten auf bis zu 15% hin.\n"
    "• KI wird vorrangig in Unternehmen eingesetzt, die bereits investieren (12 % der "
    "Unternehmen mit Digitalisierungsausgaben von jährlich 15.000 EUR und mehr).\n"
    "• Technische Infrastruktur wie Rechnerkapazitäten fehlt oft."
)


def test_the_support_is_the_stretch_that_holds_the_claim_not_the_key_sentence() -> None:
    claim = "12 % der Unternehmen mit Digitalisierungsausgaben von 15.000 EUR setzen KI ein [1]."
    checked = check(claim, {1: SECTION}, "Wie viele Firmen nutzen KI?")
    assert checked.cited == (1,)
    assert checked.replaced == ()
    (a, b), *_ = checked.support[1]
    assert "12 %" in SECTION[a:b]
    assert "15%" not in SECTION[a:b]  # the first bullet does not hold it


def test_words_scattered_over_a_section_hold_no_claim() -> None:
    # Every term occurs somewhere in the section, but no sentence or bullet says this.
    claim = "Technische Infrastruktur macht KMU zurückhaltend [1]."
    assert supports(claim, SECTION)
    checked = check(claim, {1: SECTION}, "Warum zögern KMU?")
    assert checked.replaced == ("Technische Infrastruktur macht KMU zurückhaltend.",)
    (a, b), *_ = checked.support[1]
    assert checked.text.replace(" [1]", "") == " ".join(SECTION[a:b].split())


def test_only_the_passages_that_hold_a_claim_stay_cited() -> None:
    checked = check("Rechnerkapazitäten sind Infrastruktur [1][2].", {1: NUMBERS, 2: INFRA}, "?")
    assert checked.cited == (2,)
    assert checked.text == "Rechnerkapazitäten sind Infrastruktur [2]."


SHARES = (
    "KMU sind beim Einsatz von KI noch zurückhaltend. Studien deuten auf einen Anteil von bis zu "
    "15 % (Eurostat 2021: 9 %; KfW 2021: 4 % - 6 %) mit steigender Tendenz. KI wird vorrangig in "
    "Unternehmen eingesetzt, die in die Digitalisierung investieren (12 %)."
)


def test_a_failed_sentence_is_replaced_from_the_stretch_the_model_read() -> None:
    claim = "KI wird im Mittelstand verbreitet eingesetzt [1]."  # no sentence holds it
    read = SHARES.index("Studien"), SHARES.index(" KI wird vorrangig")
    checked = check(claim, {1: SHARES}, "Wie verbreitet ist KI?", read={1: read})
    # What the model read (a colon inside it ends no sentence), not the passage's sentence
    # closest to the claim's words (the 12 % one, which the model never saw).
    assert checked.text == (
        "Studien deuten auf einen Anteil von bis zu 15 % (Eurostat 2021: 9 %; KfW 2021: "
        "4 % - 6 %) mit steigender Tendenz [1]."
    )
    assert checked.replaced == ("KI wird im Mittelstand verbreitet eingesetzt.",)
    assert checked.support == {1: (read,)}
    unread = check(claim, {1: SHARES}, "Wie verbreitet ist KI?")
    assert "12 %" in unread.text


def test_a_sentence_is_shown_once_whatever_its_marks() -> None:
    # The model repeated its sentence, once citing both passages and once the first.
    sentence = "Unterschiedliche Studien deuten auf einen Anteil von bis zu 15%"
    text = f"{sentence} [1][2]. {sentence} [1]."
    checked = check(text, {1: NUMBERS, 2: NUMBERS}, "Wie viele KMU nutzen KI?")
    assert checked.text.count("bis zu 15%") == 1, checked.text


def test_a_sentence_without_a_source_stays_marked_and_listed() -> None:
    # `map_citations` marks it; the bracket repair must not turn the mark into plain words.
    text = f"Das kostet 5000 Euro.{UNSUPPORTED_MARK}"
    checked = check(text, {1: NUMBERS}, "Was kostet KI?")
    assert checked.text == f"Das kostet 5000 Euro.{UNSUPPORTED_MARK}"
    assert checked.unsupported == ("Das kostet 5000 Euro.",)


def test_a_question_in_the_answer_is_dropped_not_shown_as_unsupported() -> None:
    question = "Spielt es eine Rolle, ob ein Betrieb selbst forscht?"
    for asked in (question, "Möchten Sie mehr darüber erfahren?"):
        # The mark lands before the question mark once the answer is split into sentences.
        text = f"KMU sind beim Einsatz von KI noch zurückhaltend [1]. {asked}{UNSUPPORTED_MARK}"
        checked = check(text, {1: NUMBERS}, question)
        assert checked.text == "KMU sind beim Einsatz von KI noch zurückhaltend [1].", checked
        assert checked.unsupported == ()


def test_a_garbled_copy_is_shown_as_its_passage_says_it() -> None:
    source = (
        "• KI-basierte Analysen von Kundendaten ermöglichen die Anpassung von Produkten und "
        "Dienstleistungen auf individuelle Kundenwünsche."
    )
    garbled = (
        "KI basiert auf KI-basierten Analysen von Kundendaten ermöglicht die Anpassung von "
        "Produkten und Dienstleistungen auf individuelle Kundenwünsche [1]."
    )
    checked = check(garbled, {1: source}, "Wie kann KI uns in der Logistik helfen?")
    assert checked.text.startswith("KI-basierte Analysen von Kundendaten ermöglichen")
    assert "basiert auf" not in checked.text
    assert checked.replaced
    # An excerpt in the passage's order stays as written; dropping a negation is no excerpt.
    short = "KI-basierte Analysen ermöglichen die Anpassung von Produkten [1]."
    assert check(short, {1: source}, "Was bringt KI?").text == short
    negated = "• Kleinere Unternehmen erkennen häufig noch nicht den Nutzen von KI."
    dropped = "Kleinere Unternehmen erkennen häufig noch den Nutzen von KI [1]."
    assert "nicht" in check(dropped, {1: negated}, "Was sehen kleine Firmen?").text


def test_a_lone_uncited_word_is_dropped_but_a_lone_finding_stays_flagged() -> None:
    # The local model ended „… vor [1].“ with a stray „Nummer“.
    text = f"KMU sind beim Einsatz von KI zurückhaltend [1]. Nummer{UNSUPPORTED_MARK}"
    checked = check(text, {1: NUMBERS}, "Ist das ein Problem?")
    assert checked.text == "KMU sind beim Einsatz von KI zurückhaltend [1]."
    assert checked.unsupported == ()
    # „Nein.“ alone says something: it stays, marked.
    text = f"Nein.{UNSUPPORTED_MARK} KMU sind beim Einsatz von KI zurückhaltend [1]."
    checked = check(text, {1: NUMBERS}, "Nutzen alle KMU KI?")
    assert checked.unsupported == ("Nein.",)


def test_what_a_claim_adds_to_the_question_must_be_held() -> None:
    # Two of three terms („KI“, „Mittelstand“) are in the title; „hindert“, the claim, is not.
    title = (
        "WIK Consult (2021): Implementierung von KI im Mittelstand – Die Verfügbarkeit von Daten"
    )
    assert supports("KI hindert Mittelstand", title)
    assert not supports("KI hindert Mittelstand", title, question="Hindernisse KI Mittelstand")
    checked = check("KI hindert Mittelstand [1].", {1: title}, "Hindernisse KI Mittelstand")
    assert "KI hindert Mittelstand [1]" not in checked.text
    # A claim whose added words the passage holds passes as before.
    assert supports(
        "KMU sind beim Einsatz von KI noch zurückhaltend.",
        NUMBERS,
        question="Wie viele KMU nutzen KI?",
    )
