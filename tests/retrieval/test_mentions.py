"""A question asking what a thing is, where the sources only name it (`retrieval.mentions`)."""

from __future__ import annotations

import pytest

from retrieval.answering import Answerer
from retrieval.mentions import asks_what, asks_what_it_does, only_named
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
        # What a thing other than KI does: an entry of a list of fields does not say.
        ("Wie kann ein Assistenzsystem die Beschäftigten unterstützen?", True),
        ("Was leistet intelligente Robotik für uns?", True),
        ("Was bringt eine Wärmepumpe im Winter?", False),
        # What KI does for a field: its entry or example says that KI is used there.
        ("Wie kann KI bei der Bild- und Tonerkennung helfen?", False),
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
    assert asks_what_it_does("Ich bin Pflegerin. Wie kann ein Assistenzsystem uns helfen?")
    assert asks_what_it_does("Was bietet so ein Kompetenzzentrum?")
    assert not asks_what_it_does("Wie kann künstliche Intelligenz beim Verarbeiten helfen?")
    assert not asks_what_it_does("Welche Assistenzsysteme gibt es?")
    assert not asks_what_it_does("Gibt es Hilfe für kleine Betriebe?")
    # The same asked yes or no, with the verb first.
    assert asks_what_it_does("Können Assistenzsysteme unsere Monteure entlasten?")
    assert asks_what_it_does("Kann Robotik uns beim Verpacken helfen?")
    assert not asks_what_it_does("Kann KI uns beim Verpacken helfen?")
    assert not asks_what_it_does("Können kleine Betriebe KI schon nutzen?")


def test_the_fact_sheet_does_not_explain_what_it_only_lists(answerer: Answerer) -> None:
    assert answerer.ask("Was sind Assistenzsysteme im KI-Zusammenhang?").refused
    assert answerer.ask("Was versteht man unter vorausschauender Wartung?").refused
    answer = answerer.ask("Was hat es mit diesen KI-Trainern auf sich?")
    assert not answer.refused
    assert "KI-Trainer Netzwerk" in answer.answer
    refused = answerer.ask("Wie kann ein intelligentes Assistenzsystem unsere Leute unterstützen?")
    assert refused.refused
    # A field the sheet gives examples for is answered („Logistik (z. B. Lagerhaltung …)“).
    answer = answerer.ask("Wie kann KI uns in der Logistik helfen?")
    assert not answer.refused
    assert "Lagerhaltung" in answer.answer
