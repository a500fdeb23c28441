"""Questions for the first of a list where the sources rank nothing (`retrieval.ranking`)."""

from __future__ import annotations

import pytest

from retrieval.answering import Answerer
from retrieval.ranking import asks_for_the_first, ranking_missing

CHALLENGES = [
    "Herausforderungen • Mangelndes Know-how im Unternehmen.",
    "• Hohe Anforderung an den Datenschutz und an die Datensicherheit.",
]


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Was ist das größte Hemmnis für KMU?", True),
        ("Was ist der wichtigste Grund, warum Firmen zögern?", True),
        ("Was ist das Hauptproblem bei KI?", True),
        ("Welche Hemmnisse gibt es?", False),
        # „am häufigsten“ asks who uses it most, which the sheet's shares answer.
        ("Welche Firmen nutzen KI am häufigsten?", False),
    ],
)
def test_questions_for_the_first_of_a_list(question: str, asks: bool) -> None:
    assert asks_for_the_first(question) is asks


def test_a_list_side_by_side_ranks_nothing() -> None:
    assert ranking_missing("Was ist das größte Hemmnis?", CHALLENGES)
    ranked = [*CHALLENGES, "• Vor allem fehlt es an Know-how."]
    assert not ranking_missing("Was ist das größte Hemmnis?", ranked)
    assert not ranking_missing("Welche Hemmnisse gibt es?", CHALLENGES)


def test_the_fact_sheet_does_not_say_which_challenge_is_the_biggest(answerer: Answerer) -> None:
    assert answerer.ask("Was ist das größte Problem für kleine Firmen bei KI?").refused
    assert not answerer.ask("Welche Probleme haben kleine Firmen bei KI?").refused
