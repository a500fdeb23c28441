"""A question asking what a thing is, where the sources only name it (`retrieval.mentions`)."""

from __future__ import annotations

import pytest

from retrieval.answering import Answerer
from retrieval.mentions import asks_what, only_named
from tests.retrieval.answer_factory import make_passage

FIELDS = make_passage(
    "• Denkbare Anwendungsfelder umfassen u.a. intelligente Assistenzsysteme, Sensorik, "
    "Robotik, Bild- und Tonerkennung sowie autonome Systeme.\n\n"
    "• Technische Infrastruktur wie Rechnerkapazitäten.\n\n"
    "• KI-Trainer Netzwerk der Mittelstand-Digital Zentren: https://example.org/ki-trainer\n\n"
    "• Eine Wärmepumpe ist ein Gerät, das Wärme aus der Umgebung in das Haus bringt, "
    "zum Beispiel aus der Luft, dem Erdreich oder dem Grundwasser."
)


@pytest.mark.parametrize(
    ("question", "named_only"),
    [
        # Entries of an enumeration, and an example after „wie“ (misspelt in the compound's
        # first part), say nothing of what the thing is.
        ("Was sind Assistenzsysteme?", True),
        ("Was ist eigentlich Sensorik?", True),
        ("Was ist mit der Rechenkapazität gemeint, die man braucht?", True),
        ("Was versteht man unter Robotik?", True),
        # A thing with a line of its own, or explained by its sentence, is more than named.
        ("Was hat es mit diesen KI-Trainern auf sich?", False),
        ("Was ist eine Wärmepumpe?", False),
        # Not mentioned at all: not decided here.
        ("Was ist ein Digitalzwilling?", False),
        # Not a question of what a thing is.
        ("Gibt es Assistenzsysteme mit KI?", False),
    ],
)
def test_a_thing_only_listed_is_not_explained(question: str, named_only: bool) -> None:
    assert only_named(question, [FIELDS]) is named_only


def test_questions_asking_what_a_thing_is() -> None:
    assert asks_what("Was sind Assistenzsysteme im KI-Zusammenhang?")
    assert asks_what("Wir sind Maler. Was bedeutet eigentlich Robotik?")
    assert asks_what("erklär mir mal Sensorik")
    assert not asks_what("Welche Assistenzsysteme gibt es?")
    assert not asks_what("Wie viele Firmen nutzen Robotik?")


def test_the_fact_sheet_does_not_explain_what_it_only_lists(answerer: Answerer) -> None:
    assert answerer.ask("Was sind Assistenzsysteme im KI-Zusammenhang?").refused
    assert answerer.ask("Was versteht man unter vorausschauender Wartung?").refused
    answer = answerer.ask("Was hat es mit diesen KI-Trainern auf sich?")
    assert not answer.refused
    assert "KI-Trainer Netzwerk" in answer.answer
