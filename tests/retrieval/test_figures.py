"""A number question is answered only by a figure of what it asks about (`retrieval.figures`)."""

from __future__ import annotations

import pytest

from retrieval.answering import Answerer
from retrieval.figures import asked_nouns, asked_unit, figure_missing
from tests.retrieval.answer_factory import make_passage

SHARES = make_passage(
    "…ein paar Zahlen\n\n• KMU sind beim Einsatz von KI noch zurückhaltend. Studien deuten auf "
    "einen Anteil von bis zu 15% hin.\n\n• Firmen mit Digitalisierungsausgaben von jährlich "
    "15.000 EUR und mehr nutzen KI öfter (12 %).",
    section="…ein paar Zahlen",
)


def test_the_nouns_asked_about_leave_out_what_every_figure_is_about() -> None:
    assert asked_nouns("Wie viele Arbeitsplätze fallen durch KI im Mittelstand weg?") == [
        "Arbeitsplätze"
    ]
    assert asked_nouns("Wie viele KMU in Deutschland setzen KI ein?") == []
    assert asked_nouns("Wir sind ein Handwerksbetrieb. Wie hoch ist der Fördersatz?") == [
        "Fördersatz"
    ]


def test_a_misspelt_generic_noun_names_nothing_counted() -> None:
    assert asked_nouns("Wieviel Prozent der Betriebe nutzen künstliche Inteligenz?") == []
    assert asked_nouns("Wie viele Arbeitsplätze kostet künstliche Inteligenz?") == ["Arbeitsplätze"]


def test_idioms_and_comparisons_name_nothing_counted() -> None:
    assert asked_nouns("Wie viel Prozent der KMU haben mit KI nichts am Hut?") == []
    assert (
        asked_nouns("Wie viel Prozent der kleinen Firmen nutzen KI im Vergleich zu großen?") == []
    )
    # A noun beside the idiom still counts.
    assert asked_nouns("Wie viele Arbeitsplätze hat KI auf dem Schirm?") == ["Arbeitsplätze"]
    # Users of KI are the firms every figure counts; what they are in is asked.
    assert asked_nouns("Wie hoch ist der Anteil der KI-Nutzer in der Landwirtschaft?") == [
        "Landwirtschaft"
    ]
    # So is the use of KI itself; „in die Richtung“ points back to it.
    assert asked_nouns("Ist die KI-Nutzung bei kleinen Firmen anders als bei größeren?") == []
    assert asked_nouns("Wie viele Firmen planen auch nichts in die Richtung?") == []
    assert asked_nouns("Wie hoch ist die KI-Nutzung in der Landwirtschaft?") == ["Landwirtschaft"]


def test_the_section_heading_says_what_an_item_counts() -> None:
    footprint = make_passage(
        "Nachhaltigkeitsaspekte\n\n• ca. 25% der Unternehmen sehen einen positiven Einfluss auf "
        "ihren ökologischen Fußabdruck.",
        section="Nachhaltigkeitsaspekte",
    )
    question = "Wie viel Prozent sehen einen Vorteil für die Nachhaltigkeit?"
    assert not figure_missing(question, [footprint])
    # The heading names the item's subject; its figure must still be in the item itself.
    bare = make_passage(
        "Nachhaltigkeitsaspekte 2021\n\n• Viele Unternehmen sehen einen positiven Einfluss.",
        section="Nachhaltigkeitsaspekte 2021",
    )
    assert figure_missing(question, [bare])


def test_money_and_time_are_units_asked_for() -> None:
    assert asked_unit("Was kostet ein KI-Projekt?") == "money"
    assert asked_unit("Wie viel verdient ein KI-Experte?") == "money"
    assert asked_unit("Wie lange dauert die Einführung?") == "time"
    assert asked_unit("Wie viele KMU nutzen KI?") is None
    assert asked_unit("Welche Zuschüsse bekomme ich für KI?") == "money"
    assert asked_unit("Wie hoch ist die Förderquote?") == "money"
    assert asked_unit("Welches Ministerium fördert die Zukunftszentren?") is None


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("Wie viele KMU setzen KI ein?", False),
        ("Wie hoch ist der Anteil der Firmen mit KI?", False),
        # The figure is given for what the question names (Digitales → Digitalisierung, by the
        # thesaurus), with an amount of money.
        ("Wie viel Geld für Digitales steckt man in KI?", False),
        # Figures about something else are no answer.
        ("Wie viele Arbeitsplätze fallen durch KI weg?", True),
        ("Wie hoch ist der Fördersatz für KI-Projekte?", True),
        # An amount of money is asked; the passage's 15.000 EUR are not the price of a project.
        ("Was kostet ein KI-Projekt?", True),
        ("Wie lange dauert die Einführung von KI?", True),
    ],
)
def test_a_figure_of_something_else_does_not_answer(question: str, missing: bool) -> None:
    assert figure_missing(question, [SHARES]) is missing


def test_a_figure_needs_a_quantity_not_only_the_noun() -> None:
    plain = make_passage("Die Rendite von KI-Projekten ist ungewiss (ROI).")
    assert figure_missing("Wie hoch ist die Rendite von KI-Projekten?", [plain])


def test_the_fact_sheet_refuses_figures_it_does_not_give(answerer: Answerer) -> None:
    for question in (
        "Wie viele Arbeitsplätze fallen durch KI im Mittelstand weg?",
        "Was kostet ein KI-Projekt für einen kleinen Betrieb?",
        # Asked as a list, but what is asked for is still an amount of money.
        "Mit welchen Kosten muss ich bei einem KI-Projekt rechnen?",
        "Welche Zuschüsse bekomme ich für KI?",
    ):
        assert answerer.ask(question).refused, question
    answer = answerer.ask("Wie viele KMU setzen bereits KI ein?")
    assert not answer.refused
    assert "15%" in answer.answer


def test_a_negated_figure_comes_after_the_one_that_counts(answerer: Answerer) -> None:
    # The first passage holds only „40% … setzen weder KI ein …“; the 15 % come from the next.
    answer = answerer.ask(
        "Wie viel Prozent der Mittelständler nutzen schon künstliche Intelligenz?"
    )
    assert "15%" in answer.answer
    assert answer.answer.index("15%") < answer.answer.find("40%") or "40%" not in answer.answer


SIZES = make_passage("• Eurostat 2021: 9% (10-49 MA) - 15% (51-249 MA) nutzen KI.")


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        # The smallest size class starts at 10: it says nothing about smaller firms.
        ("Wie verbreitet ist KI in Betrieben mit weniger als 10 Mitarbeitern?", True),
        ("Wie viele Firmen unter 10 Beschäftigten nutzen KI?", True),
        ("Wie viel Prozent der Firmen über 250 Mitarbeiter nutzen KI?", True),
        ("Wieviel Prozent der Firmen ab 50 Mitarbeitern nutzen KI?", False),
        ("Wie viele Betriebe bis 20 Mitarbeiter nutzen KI?", False),
        ("Wie viele Firmen mit mehr als 100 Beschäftigten nutzen KI?", False),
        # Written as a word, and the size classes a word names (EU: micro < 10, large ≥ 250).
        ("Wie viel Prozent sind es bei Firmen mit weniger als zehn Beschäftigten?", True),
        ("Wieviel Prozent der Großunternehmen setzen KI schon ein?", True),
        ("Wie viele Kleinstbetriebe nutzen KI?", True),
        ("Nutzen große Firmen KI öfter als kleine, in Prozent?", False),
    ],
)
def test_a_size_bound_needs_a_size_class_reaching_into_it(question: str, missing: bool) -> None:
    assert figure_missing(question, [SIZES]) is missing


def test_larger_and_smaller_firms_get_the_shares_by_size(answerer: Answerer) -> None:
    # „Mitarbeiter“ and „Größe“ stand for the sheet's „MA“ (thesaurus).
    answer = answerer.ask("Wieviel Prozent der Firmen ab 50 Mitarbeitern nutzen KI?")
    assert "(51-249 MA)" in answer.answer
    refused = answerer.ask("Wie verbreitet ist KI in Betrieben mit weniger als 10 Mitarbeitern?")
    assert refused.refused
    compared = answerer.ask(
        "Ist die KI-Nutzung bei kleinen Mittelständlern anders als bei größeren?"
    )
    assert "(51-249 MA)" in compared.answer


NEITHER = make_passage(
    "• 40% der Mittelständler setzen weder KI-Technologien ein noch planen sie deren Einsatz.\n\n"
    "• KMU sind beim Einsatz von KI noch zurückhaltend: ein Anteil von bis zu 15%."
)


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        # The 40 % count the firms that do not plan; the 15 % say nothing about planning.
        ("Wie viele Firmen planen, KI demnächst einzuführen?", True),
        # Intentions in everyday words ask about planning too.
        ("Wie viele Mittelständler wollen demnächst KI einführen?", True),
        ("Wie viele KMU haben vor, KI einzusetzen?", True),
        ("Wie viele Betriebe nehmen sich KI für die nächsten Jahre vor?", True),
        ("Wie viele Firmen werden künftig KI nutzen?", True),
        # Asked with the negation, the 40 % are the answer.
        ("Wie viele Firmen planen keinen Einsatz von KI?", False),
        ("Wie viele KMU wollen nix mit KI machen und planen auch nichts?", False),
        # „setzen … ein“ stands before the negation: the figure is not about its opposite.
        ("Wie viele KMU setzen bereits KI ein?", False),
    ],
)
def test_a_figure_counts_with_its_clauses_polarity(question: str, missing: bool) -> None:
    assert figure_missing(question, [NEITHER]) is missing


def test_the_fact_sheet_gives_no_share_of_firms_planning_ki(answerer: Answerer) -> None:
    assert answerer.ask("Wie viele Unternehmen planen, demnächst KI einzuführen?").refused
    assert answerer.ask("Wie viele Mittelständler wollen demnächst KI einführen?").refused
    answer = answerer.ask("Wie viele Mittelständler planen gar keinen KI-Einsatz?")
    assert "40%" in answer.answer


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("Was kostet die Einführung von KI?", "money"),
        ("Mit welchen Kosten muss ich rechnen?", "money"),
        # A price asked beside a cost-benefit phrase is still a price.
        ("Rechnet sich KI für uns, und was kostet die Einführung?", "money"),
        # Costs weighed against benefit ask about the return („ROI“), not an amount.
        ("Ist der unklare Nutzen im Verhältnis zu den Kosten ein Grund, KI zu meiden?", None),
        ("Wie sieht das Kosten-Nutzen-Verhältnis von KI aus?", None),
        ("Was ist das Problem mit Kosten und Ertrag bei KI?", None),
        ("Wie lange dauert die Einführung?", "time"),
    ],
)
def test_a_question_asks_for_money_when_it_asks_a_price(question: str, unit: str | None) -> None:
    assert asked_unit(question) == unit
