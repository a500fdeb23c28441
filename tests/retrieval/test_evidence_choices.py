"""Choices taken on the evidence: a list's section by the hits' rank votes."""

from __future__ import annotations

from retrieval.compose import Matcher, compose, render
from retrieval.evidence import section_votes
from retrieval.lexical import analyze
from tests.retrieval.answer_factory import make_citation, make_passage

CHALLENGES = (
    "Herausforderungen • Mangelndes Know-how im Unternehmen. • Unzureichende Digitalisierung. "
    "• Hohe Anforderung an den Datenschutz."
)
FIGURES = (
    "Zahlen • KMU sind beim Einsatz von KI noch zurückhaltend. • 40% der Mittelständler "
    "setzen weder KI ein noch planen sie deren Einsatz."
)


def test_votes_are_rank_weighted_shares_per_section() -> None:
    first = make_passage("• Mangelndes Know-how.", id="a1", section="Herausforderungen")
    second = make_passage("• Unzureichende Digitalisierung.", id="a2", section="Herausforderungen")
    third = make_passage("• KMU sind zurückhaltend.", id="b1", section="Zahlen")
    whole_a = make_passage(CHALLENGES, id="a", section="Herausforderungen")
    whole_b = make_passage(FIGURES, id="b", section="Zahlen")
    votes = section_votes([first, second, third], [whole_a, whole_b])
    total = 1 + 1 / 2 + 1 / 3
    assert abs(votes["a"] - (1 + 1 / 2) / total) < 1e-9
    assert abs(votes["b"] - (1 / 3) / total) < 1e-9


def test_list_is_drawn_from_the_section_the_hits_vote_for() -> None:
    # The figures' items hold a word of the question („KMU“), the challenges none; but every
    # search hit came from the challenges: the list must be the challenges.
    challenges = make_citation(
        make_passage(CHALLENGES, id="a", section="Herausforderungen"), CHALLENGES, n=1
    )
    figures = make_citation(make_passage(FIGURES, id="b", section="Zahlen"), FIGURES, n=2)
    matcher = Matcher(analyze("Welche Hemmnisse gibt es in KMU?"))
    without = render(compose("list", [challenges, figures], matcher), "list")
    assert "zurückhaltend" in without  # the items' words alone pick the figures
    pieces = compose("list", [challenges, figures], matcher, votes={"a": 1.0, "b": 0.0})
    text = render(pieces, "list")
    assert text.splitlines() == [
        "- Mangelndes Know-how im Unternehmen. [1]",
        "- Unzureichende Digitalisierung. [1]",
        "- Hohe Anforderung an den Datenschutz. [1]",
    ]
