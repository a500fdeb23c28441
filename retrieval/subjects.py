"""What a „Welche …?“ question asks for, when the sources never name such a thing.

„Welche Branchen sind bei KI ganz vorne?“ lies as close to the sheet's figures on KMU as „Welche
Firmen nutzen KI am häufigsten?“, but the sheet names no industry: its closest passage answers
another question. The noun after „welche“ says what kind of thing the answer must list. When
that noun occurs in no passage of the store – not as written (after the analyzer's stemming and
compound splitting), not as a source term the thesaurus gives for it, not one letter off – the
sources list no such thing, and the answer is the refusal.

The rule decides only where the evidence is not strong anyway (below `SUBJECT_CEILING`): an
everyday noun the thesaurus lacks („Welche Vorbehalte …?“) must not refuse a question the
passages plainly answer. On the read splits the near-misses it refuses lie at 0.46–0.58, the
answerable questions' median at 0.64.

Nouns that name the answer's shape rather than a thing („Welche Rolle …“, „Aus welchem Jahr …“,
„Welche Arten …“, „Welche Möglichkeiten …“) say nothing about the sources and do not count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from retrieval.lexical import analyze
from retrieval.question_kind import asking_sentences
from retrieval.thesaurus import default_thesaurus

# „welche“ (any case, after a preposition too: „In welcher Branche …“) and the next words.
_WHICH_RE = re.compile(r"\bwelche[nrsm]?\s+((?:\S+\s*){1,3})", re.IGNORECASE)
# „Gibt es (auch/denn) X …?“, „Gibts X …?“: what is asked whether there is.
_THERE_IS_RE = re.compile(
    r"\b[Gg]ibt(?:\s+es|s|'s)\s+(?:(?:auch|denn|eigentlich|überhaupt|noch)\s+)*([A-ZÄÖÜ][\w-]*)"
)
# The evidence strength (`retrieval.refusal.evidence_strength`) from which the rule is not asked.
SUBJECT_CEILING = 0.6
# The shortest head of a compound read with a typo (and the shortest term it may stand for:
# „rsprache“ in „Programmiersprache“ is no typo of „Sprache“).
_MIN_HEAD = 8
# Nouns that name the shape of the answer, not a thing the sources must name.
_SHAPE_NOUNS = frozenset(
    analyze(
        "Rolle Art Arten Sorte Form Typ Kategorie Aufgabe Möglichkeit Jahr Zeitraum Zeitpunkt "
        "Ministerium Institution Organisation Einrichtung Stelle Quelle Zahl Zahlen Punkt Bereich "
        "Beispiel Weg Schritt Maßnahme Faktor Grund Ursache Sache Ding Thema Teil Seite Stufe "
        "Ebene Bedeutung Anteil Prozent Variante Option Kriterium Kriterien Unterschied Ergebnis "
        "Aussage Information Infos Angabe Gruppe Fall Ziel Effekt Auswirkung Folge Empfehlung "
        "Tipp Frage Erfahrung Hinweis Aspekt Merkmal Eigenschaft Funktion Leistung Nutzen Wirkung"
    )
)


def asked_noun(question: str) -> str | None:
    """The noun after „welche“ in the question's asking sentence („Branchen“), if any.

    „welche“ without a noun („Gibt es Förderprogramme? Welche werden genannt?“) points back to
    what an earlier asking sentence asks whether there is.
    """
    asking = asking_sentences(question)
    match = _WHICH_RE.search(asking[0])
    if match is None:
        return None
    words = match.group(1).split()
    noun = next((w for w in words if w[:1].isupper()), None)
    if noun is None:
        earlier = (_THERE_IS_RE.search(s) for s in asking[1:])
        noun = next((m.group(1) for m in earlier if m), None)
    return noun.strip("?!.,;:–") if noun else None


def unnamed_subject(
    question: str, known: Callable[[str], bool], corrections: Callable[[Iterable[str]], dict]
) -> str | None:
    """The noun a „Welche …?“ question asks for, when no passage names such a thing; else None.

    `known`: whether a passage of the store holds an analysed term; `corrections`: the store's
    terms one letter off the given ones (`LexicalIndex.corrections`).
    """
    noun = asked_noun(question)
    if noun is None:
        return None
    terms = [t for t in analyze(noun) if t != "ki"]
    if not terms or any(t in _SHAPE_NOUNS for t in terms):
        return None
    bridged = analyze(" ".join(default_thesaurus().added(noun)))
    if any(known(t) for t in [*terms, *bridged]) or corrections(terms):
        return None
    # A compound with a misspelt head („Grundvorraussetzungen“): the head, one letter off.
    heads = [noun[i:] for i in range(1, len(noun) - _MIN_HEAD + 1)]
    if any(
        len(known_term) >= _MIN_HEAD
        for head in heads
        for known_term in corrections(analyze(head)).values()
    ):
        return None
    return noun
