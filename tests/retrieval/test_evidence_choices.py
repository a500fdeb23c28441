"""Choices taken on the evidence: a list's section by the hits' rank votes, refusals by names,
the finding first in a yes/no answer."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from retrieval.answering import Answerer
from retrieval.answers import REFUSAL
from retrieval.claims import check as check_claims
from retrieval.compose import Matcher, compose, lead, render
from retrieval.evidence import EvidenceBuilder, mentions_topic, section_votes
from retrieval.lexical import analyze
from retrieval.names import missing_names
from retrieval.passages import Passage
from retrieval.question_kind import question_kind
from retrieval.thesaurus import default_thesaurus
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


def test_a_key_sentence_in_the_heading_gives_the_sections_items() -> None:
    # „Minimum“ matched the heading „Digitale Mindestanforderungen“, so the search's key
    # sentence is the heading; a heading alone says nothing, the bullets under it answer.
    text = (
        "Digitale Mindestanforderungen\n\n• Die Entwicklung von KI-Anwendungen setzt die "
        "digitale Erfassung von Daten voraus.\n\n• Technische Infrastruktur wie "
        "Rechnerkapazitäten."
    )
    heading = (0, len("Digitale Mindestanforderungen"))
    minimum = make_passage(text, id="m", section="Digitale Mindestanforderungen")
    minimum = dataclasses.replace(minimum, highlights=(heading,))
    other = make_passage("Chancen • KI kann Prozesse optimieren.", id="c", section="Chancen")
    quotes = [make_citation(minimum, text, n=1), make_citation(other, other.text, n=2)]
    matcher = Matcher(analyze("Was brauchen wir als Minimum, um KI einzuführen?"))
    answer = render(compose("fact", quotes, matcher), "fact")
    assert answer == (
        "Die Entwicklung von KI-Anwendungen setzt die digitale Erfassung von Daten voraus. [1] "
        "Technische Infrastruktur wie Rechnerkapazitäten. [1]"
    )
    # From a later passage the heading is left out, not its section drawn in.
    later = render(compose("fact", [quotes[1], dataclasses.replace(quotes[0], n=2)], matcher), "")
    assert "Mindestanforderungen" not in later
    assert "Rechnerkapazitäten" not in later


SHEET = [
    "KI Transfer+ (BSMD): KI-Regionalzentren in München und Regensburg für den Mittelstand",
    "Unterschiedliche Studien deuten auf einen Anteil von bis zu 15% (Eurostat 2021) hin; "
    "Digitalisierungsausgaben von jährlich 15.000 EUR und mehr.",
]


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("Wie viele Firmen in Österreich nutzen KI?", ["österreich"]),
        ("Sind Schweizer Firmen bei KI weiter als deutsche?", ["schweiz"]),
        ("Gibt es einen Zuschuss vom Land NRW für KI-Projekte?", ["nrw"]),
        ("Darf ich ChatGPT im Betrieb mit Kundendaten benutzen?", ["ChatGPT", "Recht"]),
        ("Welche Tools von SAP haben eingebaute KI?", ["SAP"]),
        ("Wie viele KMU nutzen 2025 KI?", ["2025"]),
        ("Lohnt sich KI ab 5.000 Euro?", ["5.000 Euro"]),
        ("Wie lange dauert die Einführung von KI?", ["Dauer"]),
        # A span put to the test asks for one too.
        ("Rechnet sich ein Chatbot für uns innerhalb von sechs Monaten?", ["Dauer"]),
        # „mit steigender Tendenz“ says that, not by how much.
        ("Um wie viel ist der Anteil gestiegen?", ["Veränderung"]),
        ("Um wieviel Prozent pro Jahr wächst der KI-Einsatz?", ["Veränderung"]),
        (
            "Wie stark ist der Anteil der KMU mit KI in den letzten Jahren gestiegen?",
            ["Veränderung"],
        ),
        # A web link is no phone number.
        ("Wie lautet die Telefonnummer des KI-Zentrums in München?", ["Kontakt"]),
        # A comma after the year is punctuation, not a decimal.
        ("Gibt es schon Zahlen für 2025, wie viele KMU KI nutzen?", ["2025"]),
        # What the law demands: „Anforderung an den Datenschutz“ names no law.
        ("Was regelt das neue KI-Gesetz für kleine Firmen?", ["Recht"]),
        ("Ab wann gelten die Pflichten aus dem AI Act?", ["Recht"]),
        ("Darf ich Kundendaten in eine KI hochladen?", ["Recht"]),
        ("Brauche ich für KI eine Datenschutz-Folgenabschätzung?", ["Recht"]),
        ("Wer haftet, wenn die KI Fehler macht?", ["Recht"]),
        # Tax law too: „Steuervorteile“ is no „Vorteil“ the sheet names under „Chancen“.
        ("Gibt es Steuervorteile, wenn ich in KI investiere?", ["Recht"]),
        # A product to be recommended: the sources recommend none.
        ("welches ki tool empfehlt ihr für tourenplanung bei kühltransporten", ["Empfehlung"]),
        ("Welche KI-Software könnt ihr für Angebote empfehlen?", ["Empfehlung"]),
    ],
)
def test_names_and_figures_the_evidence_lacks_are_found(question: str, missing: list[str]) -> None:
    assert missing_names(question, SHEET) == missing


@pytest.mark.parametrize(
    "question",
    [
        "Nenne die regionalen KI-Zentren in Bayern.",  # Bavaria: its cities are named
        "Gibts KI Zentren in Muenchen?",  # spelled without umlaut
        "Wie viele KMU in Deutschland nutzen KI?",  # the sources' own country
        "Wie viele KMU nutzten 2021 KI, 15 % oder mehr?",
        "Welche KI-Anwendungen gibt es für KMU?",  # KI, KMU: in the sources
        "Was kostet die Digitalisierung, 15.000 EUR?",
        "Wie kann man KI im Kundenkontakt einsetzen, zB im Kundenservice?",  # „zB“: no product
        "Wir sind eine Spedition mit 40 LKW. Wofür nutzt man KI in der Logistik?",  # a noun
        # „gesetzt“ is no law, „Datenschutz“ asks what the sheet says of it.
        "Haben schon viele Firmen auf KI gesetzt?",
        "Spielt Datenschutz eine Rolle, warum Firmen KI nicht nutzen?",
        "Was muss ich tun, bevor wir in unserer Steuerkanzlei mit KI arbeiten?",
        # Costs weighed against benefit ask about the return („ROI“), not a price.
        "Ist der unklare Nutzen im Verhältnis zu den Kosten ein Grund, warum Firmen KI meiden?",
        "Lohnt sich KI, wenn man Kosten und Nutzen vergleicht?",
        "Wie sieht das Kosten-Nutzen-Verhältnis von KI aus?",
        "Stehen die Kosten bei KI in einem vernünftigen Verhältnis zum Ertrag?",
        # A span in the context before the question asks nothing.
        "Wir wollen in zwei Jahren papierlos sein. Wie fangen wir mit KI an?",
        "Wird der Gewinn die Kosten für KI wieder hereinholen?",
        # Reading is recommended by the sources; a tool merely named is asked, not advised.
        "Welche Studien empfehlt ihr zum Weiterlesen?",
        "Welche Planungstools nutzen Firmen in der Logistik?",
    ],
)
def test_names_and_figures_the_evidence_holds_are_not_missing(question: str) -> None:
    assert missing_names(question, SHEET) == []


@pytest.mark.parametrize(
    ("question", "evidence"),
    [
        ("Um wie viel ist der Anteil gestiegen?", "Der Anteil stieg um 3 Prozentpunkte."),
        ("Wie stark ist die Nutzung gewachsen?", "Die Nutzung stieg von 6 % auf 9 %."),
        ("Wie ist die Telefonnummer?", "Telefon: 0721 608-12345"),
        ("Hat das Zentrum eine E-Mail-Adresse?", "Kontakt: info@ki-zentrum.de"),
        ("Wie lautet die Anschrift?", "Musterstraße 12, 80331 München"),
        ("Was verlangt die DSGVO?", "Die DSGVO verlangt eine Rechtsgrundlage (Art. 6)."),
        ("Darf ich Kundendaten nutzen?", "Nach § 26 BDSG ist das zulässig."),
        ("Welches KI-Tool empfehlt ihr?", "Wir empfehlen das Werkzeug X für den Einstieg."),
    ],
)
def test_a_change_or_a_contact_is_answered_where_the_evidence_gives_one(
    question: str, evidence: str
) -> None:
    assert missing_names(question, [evidence]) == []


def test_a_question_naming_what_no_passage_mentions_is_refused(answerer: Answerer) -> None:
    answer = answerer.ask("Wie viele Firmen in Österreich nutzen KI?")
    assert answer.refused
    assert answer.answer == REFUSAL
    assert not answerer.ask("Wie viele KMU setzen bereits KI ein?").refused


TREND = (
    "• KMU sind beim Einsatz von KI noch zurückhaltend. Unterschiedliche Studien deuten auf "
    "einen Anteil von bis zu 15% (Eurostat 2021: 9%) mit steigender Tendenz (KI-Monitor 2021)."
)
# The same bullet with the sheet's full list of studies: too long to be quoted whole.
LONG_TREND = TREND.replace(
    "(Eurostat 2021: 9%)",
    "(Eurostat 2021: 9% (10-49 MA) - 15% (51-249 MA); KfW 2021: 4% - 6%; BVMW/Gemeinsam "
    "digital 2020: 6%; weitere Erhebungen von Verbänden, Kammern und Instituten zum Thema)",
)


def _yesno(question: str, text: str) -> list[str]:
    first = text.index(".") + 1
    passage = make_passage(text, highlights=((2, first),))  # the search's key sentence
    matcher = Matcher(analyze(default_thesaurus().expand(question)))
    return [p.text for p in compose("yesno", [make_citation(passage, text)], matcher)]


@pytest.mark.parametrize(
    "question",
    [
        "Nimmt die Nutzung von KI in KMU zu?",
        # A trend in everyday words (thesaurus: „immer mehr“ → „steigender Tendenz“).
        "wird ki in kleinen firmen immer mehr genutzt oder bleibt das gleich",
    ],
)
def test_yes_no_answer_starts_with_the_sentence_that_holds_the_finding(question: str) -> None:
    shown = _yesno(question, LONG_TREND)
    assert "steigender Tendenz" in shown[0]
    assert shown[0].startswith("Unterschiedliche Studien")
    assert shown[1] == "KMU sind beim Einsatz von KI noch zurückhaltend."


def test_a_short_bullet_is_quoted_whole() -> None:
    # A bullet is one thought; its second sentence often says what was asked.
    shown = _yesno("Nimmt die Nutzung von KI in KMU zu?", TREND)
    assert shown == [TREND.removeprefix("• ")]


def test_a_planted_instruction_is_never_pulled_into_a_quote() -> None:
    from tests.retrieval.planted import INJECTION, INSTRUCTION

    # The item is short, but one of its sentences instructs the assistant: only the key
    # sentence is shown, and a why-question's next sentence is not added either.
    shown = _yesno("Hilft KI im Kundenservice?", INJECTION)
    assert INSTRUCTION not in " ".join(shown)
    passage = make_passage(INJECTION, highlights=((0, INJECTION.index(".") + 1),))
    matcher = Matcher(analyze("Warum hilft KI im Kundenservice?"))
    why = compose("fact", [make_citation(passage, INJECTION)], matcher, why=True)
    assert why
    assert all(INSTRUCTION not in p.text for p in why)


@pytest.mark.parametrize(
    ("question", "opening"),
    [
        ("Gibt es eine Video-Reihe zum Einstieg in KI-Systeme?", "Ja: "),
        ("Gibt es Videos für Einsteiger zum Thema KI?", ""),  # „Einsteiger“: not in the source
        ("Ist die Video-Reihe zum Einstieg in KI-Systeme gut?", ""),  # not an existence question
    ],
)
def test_yes_only_where_the_cited_sentence_holds_every_term(question: str, opening: str) -> None:
    text = "• Video-Reihe zum Einstieg in KI-Systeme (Plattform Lernende Systeme)"
    passage = make_passage(text, highlights=((2, len(text)),))
    pieces = compose("yesno", [make_citation(passage, text[2:])], Matcher(analyze(question)))
    assert lead(question, pieces) == opening
    rendered = render(pieces, "yesno", lead(question, pieces))
    assert rendered == f"{opening}{text[2:]} [1]"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Wie veile KMU setzn eigentlich KI ein?", "number"),  # two letters swapped
        ("Wie vile Firmen nutzen KI?", "number"),  # one dropped
        # Three letters off „viele“: a way is asked for, not a number.
        ("Wie teile ich Daten mit KI-Dienstleistern?", "howto"),
    ],
)
def test_a_mistyped_how_many_still_asks_for_a_number(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_a_yes_lead_passes_the_claim_check_unchanged() -> None:
    text = "• Es gibt eine Video-Reihe zum Einstieg in KI-Systeme der Plattform Lernende Systeme."
    question = "Gibt es eine Video-Reihe zum Einstieg in KI-Systeme?"
    passage = make_passage(text, highlights=((2, len(text)),))
    pieces = compose("yesno", [make_citation(passage, text[2:])], Matcher(analyze(question)))
    answer = render(pieces, "yesno", lead(question, pieces))
    assert answer.startswith("Ja: Es gibt")
    checked = check_claims(answer, {1: text}, question)
    assert checked.replaced == ()
    assert checked.unsupported == ()
    assert checked.text.startswith("Ja: Es gibt")


class _ContextSearcher:
    """Finds the prerequisites strongly for the asking sentence alone, weakly with its context."""

    TEXT = "Digitale Mindestanforderungen • Die Entwicklung setzt die digitale Erfassung voraus."

    def __init__(self) -> None:
        self.searched: list[str] = []

    def search(self, question: str, k: int) -> list[Passage]:
        self.searched.append(question)
        similarity = 0.80 if question.startswith("Wir sind") else 0.95
        return [make_passage(self.TEXT, similarity=similarity, coverage=0.5)]

    def page_text(self, doc_sha: str, unit: int) -> str | None:
        return self.TEXT


def test_context_before_the_question_does_not_hide_the_evidence() -> None:
    # The context dilutes the question's embedding; the asking sentence alone finds the
    # evidence, and the rules still read the whole question.
    searcher = _ContextSearcher()
    builder = EvidenceBuilder(cast(Any, searcher), 5, 0.9)
    question = "Wir sind ein Architekturbüro mit sechs Leuten. Wie fangen wir mit KI an?"
    prepared = builder.prepare(question, question)
    assert not prepared.refused
    assert searcher.searched == [question, "Wie fangen wir mit KI an?"]
    assert prepared.passages[0].similarity == 0.95
    # A question without context is searched once; a weak one stays refused.
    searcher.searched.clear()
    assert builder.prepare("Was kostet das?", "Was kostet das?").refused
    assert searcher.searched == ["Was kostet das?"]
    priced = "Wir sind ein Architekturbüro. Was kostet eine KI-Lösung?"
    assert builder.prepare(priced, priced).refused  # the price rule reads the whole question


def test_fields_of_use_in_everyday_compounds_find_the_fields(answerer: Answerer) -> None:
    # „Einsatzfelder“ split into „Einsatz“ matched „beim Einsatz von KI“ in the figures.
    answer = answerer.ask("Nenne typische Einsatzfelder von KI im Mittelstand.")
    assert "Anwendungsfelder" in answer.answer or "Einsatzpotenziale" in answer.answer
    assert "zurückhaltend" not in answer.answer


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("Welche Hemmnisse gibt es?", False),
        ("Wie viele Studien werden zum Weiterlesen empfohlen?", False),
        ("Welche Hemmnisse gibt es beim KI-Einsatz?", True),
        ("Was bringt uns künstliche Inteligenz?", True),  # the thesaurus gives „KI“
        ("Was machen die KI-Trainer?", True),
    ],
)
def test_a_question_names_the_topic_or_not(question: str, named: bool) -> None:
    assert mentions_topic(question, "KI") is named


class _TopicSearcher(_ContextSearcher):
    """Finds the passage strongly only where the query names the topic."""

    def search(self, question: str, k: int) -> list[Passage]:
        self.searched.append(question)
        similarity = 0.95 if "KI" in question else 0.5
        return [make_passage(self.TEXT, similarity=similarity, coverage=0.5)]


def test_a_question_without_the_topic_is_searched_with_it_after_the_others() -> None:
    searcher = _TopicSearcher()
    builder = EvidenceBuilder(cast(Any, searcher), 5, 0.9, topic="KI")
    prepared = builder.prepare("Welche Hemmnisse gibt es?", "Welche Hemmnisse gibt es?")
    assert not prepared.refused
    assert searcher.searched == ["Welche Hemmnisse gibt es?", "Welche Hemmnisse gibt es? (KI)"]
    # A question that names the topic is searched as asked.
    searcher.searched.clear()
    builder.prepare("Welche Hemmnisse hat KI?", "Welche Hemmnisse hat KI?")
    assert searcher.searched == ["Welche Hemmnisse hat KI?"]
    # Empty: off.
    searcher.searched.clear()
    off = EvidenceBuilder(cast(Any, searcher), 5, 0.9)
    assert off.prepare("Welche Hemmnisse?", "Welche Hemmnisse?").refused
    assert searcher.searched == ["Welche Hemmnisse?"]


def test_the_topic_the_asker_means_finds_the_evidence(answerer: Answerer) -> None:
    # Without „KI“ the question's embedding lies far from every passage of the sheet.
    question = "Wie viele Hemmnisse werden für kleine und mittlere Firmen aufgezählt?"
    answer = answerer.ask(question)
    assert not answer.refused
    assert "Know-how" in answer.answer
    assert "Auftragsbücher" in answer.answer
    off = Answerer(answerer.settings.model_copy(update={"topic": ""}), searcher=answerer.searcher)
    assert off.ask(question).refused
    # A near-miss stays refused with the topic added.
    assert answerer.ask("Wie programmiere ich ein neuronales Netz in Python?").refused
