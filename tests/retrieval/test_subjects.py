"""A „Welche …?“ question for a kind of thing the sources never name (`retrieval.subjects`)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from retrieval.answering import Answerer
from retrieval.lexical import analyze, one_edit
from retrieval.subjects import asked_noun, unnamed_subject

# The words the store's passages hold, as the analyzer gives them.
STORE = frozenset(
    analyze(
        "Herausforderungen Voraussetzungen Unternehmen Sprach- und Textverarbeitung "
        "Kompetenzzentren Studien"
    )
)


def known(term: str) -> bool:
    return term in STORE


def corrections(terms: Iterable[str]) -> dict[str, str]:
    return {t: s for t in terms for s in STORE if t not in STORE and len(t) >= 7 and one_edit(t, s)}


@pytest.mark.parametrize(
    ("question", "noun"),
    [
        ("Welche Branchen nutzen KI?", "Branchen"),
        ("In welcher Branche ist KI verbreitet?", "Branche"),
        ("Welche großen Hürden gibt es?", "Hürden"),
        ("Wir sind ein Betrieb. Welche KI-Software taugt was?", "KI-Software"),
        ("Was bringt KI?", None),
        ("welche gibt es denn?", None),
        # „welche“ without a noun points back to what is asked whether there is.
        ("Gibts Zuschüsse für Roboter? Welche werden genannt?", "Zuschüsse"),
        ("Gibt es denn eine Förderung? Welche ist das?", None),
    ],
)
def test_the_asked_noun_follows_welche(question: str, noun: str | None) -> None:
    assert asked_noun(question) == noun


@pytest.mark.parametrize(
    ("question", "unnamed"),
    [
        # No passage names any.
        ("Welche Branchen nutzen KI am meisten?", "Branchen"),
        ("Welche Programmiersprache lernt man für KI?", "Programmiersprache"),
        # Named as written, through the thesaurus („Hürden“ → „Herausforderungen“), or one
        # letter off („Kompetenzzentrem“), also as a misspelt compound's head.
        ("Welche Studien gibt es?", None),
        ("Welche Hürden gibt es?", None),
        ("Welche Kompetenzzentrem gibt es?", None),
        ("Welche Grundvorraussetzungen braucht man?", None),
        # A noun naming the answer's shape, not a thing.
        ("Welche Rolle spielt Vertrauen?", None),
        ("Aus welchem Jahr stammt die Umfrage?", None),
        ("Welche Arten von KI gibt es?", None),
        # No „welche“: not decided here.
        ("Was machen die Branchenverbände?", None),
    ],
)
def test_a_kind_of_thing_no_passage_names(question: str, unnamed: str | None) -> None:
    assert unnamed_subject(question, known, corrections) == unnamed


def test_a_question_for_industries_the_sheet_never_names_is_refused(answerer: Answerer) -> None:
    answer = answerer.ask("In welchen Branchen ist KI schon Alltag?")
    assert answer.refused
    assert answer.answer == "Dazu enthalten die Quellen keine Aussage."


def test_an_unknown_noun_does_not_refuse_where_the_evidence_is_strong(answerer: Answerer) -> None:
    # Neither the sheet nor the thesaurus says „Knackpunkte“, but the question's other words
    # match the sheet strongly; the rule decides only in the uncertain band above the threshold.
    question = "Welche Knackpunkte hat der KI-Einsatz im Mittelstand?"
    assert unnamed_subject(question, known, corrections) == "Knackpunkte"
    assert not answerer.ask(question).refused
