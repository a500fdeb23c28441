"""Whether the sources hold the figure that a number question asks for.

A number question names what it counts or measures: „Wie viele Arbeitsplätze fallen weg?“,
„Wie hoch ist der Fördersatz?“, „Was kostet ein KI-Projekt?“. The sources answer it only where
one of their items (a bullet or a paragraph) holds a figure together with that thing. A figure
about something else („bis zu 15 %“ of the firms that use KI) is no answer, and shown under
such a question it would read as one. So the question is refused instead.

What the question names is read from its nouns (capitalised words after the first), less the
ones every figure in these sources is about („KI“, „Unternehmen“, „Anteil“ …). A noun is found
in an item by its stem, its compound head („Fördersatz“ → „Satz“) or a thesaurus synonym; one
found noun is enough; an item's section heading counts as its own words (a figure under
„Nachhaltigkeitsaspekte“ is one about sustainability). Nouns of idioms („nichts am Hut haben“)
and of comparisons („im Vergleich zu“) name nothing counted. A question about money („Was
kostet …“, „Wie viel verdient …“) also needs an amount of money, one about time („Wie lange …“)
a span of time. A question bounding the firms' size („weniger als 10 Mitarbeiter“, „ab 50
Beschäftigten“) is answered only by a size class that reaches into that bound („10-49 MA“ says
nothing about firms under 10). A figure counts what its clause says, with its polarity: „40 % …
setzen weder KI ein noch planen sie deren Einsatz“ counts the firms that do not plan, so it does
not answer „Wie viele Firmen planen KI?“. A term the question asks with (not negated) that the
figures' items hold only after a negation („weder“, „nicht“, „kein“) must stand in the answering
item outside a negation. A question about intentions („wollen … einführen“, „haben … vor“,
„demnächst“, „künftig“) asks with „planen“, the word the sources count intentions by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from retrieval.compose import QUANTITY_RE, items
from retrieval.lexical import MIN_TYPO_LENGTH, analyze, one_edit
from retrieval.names import MONEY_RE, SPAN_RE, asks_duration, asks_price
from retrieval.passages import Passage
from retrieval.question_kind import asking_sentences
from retrieval.thesaurus import default_thesaurus, verb_forms

Unit = Literal["money", "time"]

# Nouns that name what nearly every figure of the sources is about, or a figure itself.
_GENERIC_WORDS = (
    "KI Künstliche Intelligenz AI KMU Unternehmen Firma Firmen Betrieb Betriebe Mittelstand "
    "Mittelständler Mittelstaendler Deutschland Prozent Anteil Quote Zahl Zahlen Anzahl "
    "Prozentsatz Teil Jahr Jahre Schnitt Durchschnitt Euro EUR Vergleich Verhältnis Nutzer "
    "Anwender Nutzung Einsatz Verbreitung"
)
# Everyday idioms whose noun is not what a question counts („… haben mit KI nichts am Hut“).
_IDIOM_RE = re.compile(
    r"\b(?:am Hut|auf dem Schirm|im Blick|unterm Strich|unter dem Strich|im Griff|am Ende"
    r"|in (?:die|diese|der|dieser) Richtung)\b",
    re.IGNORECASE,
)
_NOUN_RE = re.compile(r"(?<![\w-])[A-ZÄÖÜ][\w-]*")
_HEADS = r"(?:MA|Mitarbeite\w*|Beschäftigte\w*|Angestellte\w*|Leute\w*|Personen|Köpfe\w*)\b"
# „weniger als 10 Mitarbeiter“, „unter 10 Beschäftigten“ (below); „ab 50“, „über 250“ (above).
_BOUND_RE = re.compile(
    r"\b(?P<op>weniger\s+als|unter|bis(?:\s+zu)?|höchstens|maximal|kleiner\s+als|mehr\s+als|über"
    r"|ab|mindestens|größer\s+als)\s+(?P<n>\d+|[a-zäöüß]+)\s+" + _HEADS,
    re.IGNORECASE,
)
_BELOW = ("weniger", "unter", "bis", "höchstens", "maximal", "kleiner")
# Headcounts written as words („weniger als zehn Beschäftigte“).
_NUMBER_WORDS = {
    "fünf": 5,
    "zehn": 10,
    "zwanzig": 20,
    "dreißig": 30,
    "fünfzig": 50,
    "hundert": 100,
    "einhundert": 100,
    "zweihundert": 200,
    "zweihundertfünfzig": 250,
    "tausend": 1000,
}
# The size classes of the EU's definition that a word names by itself: micro firms have fewer
# than 10 employees, large ones 250 or more („Kleinstbetrieb“, „Großunternehmen“). Not „große
# Unternehmen“: „Nutzen große Firmen KI öfter als kleine?“ compares within the SMEs.
_CLASS_WORD_RE = re.compile(
    r"\b(?:(?P<micro>kleinst\w*)|(?P<large>groß(?:unternehm|betrieb|konzern|firm)\w*|konzern\w*))",
    re.IGNORECASE,
)
# A size class in employees: „(10-49 MA)“, „10 bis 49 Beschäftigte“.
_CLASS_RE = re.compile(r"(\d+)\s*(?:-|–|bis)\s*(\d+)\s*" + _HEADS, re.IGNORECASE)
# A negation's scope runs from it to the end of its sentence or clause.
_NEGATION_RE = re.compile(r"\b(?:weder|nicht|kein\w*|nie|niemals|nichts|nix|ohne)\b", re.IGNORECASE)
_CLAUSE_END_RE = re.compile(r"[.;!?]\s")
_MIN_POLAR_TERM = 4
# Everyday words for an intention: the question asks about planning, in the sources' word.
_PLANNING_RE = re.compile(
    r"\b(?:will|willst|wollen|wollt|vorhaben|vorhab\w*|vor(?=\s*[,?.!]|\s*$)|vornehm\w*"
    r"|vorgenommen|beabsichtig\w*|demnächst|künftig|zukünftig|in\s+zukunft|bald|geplant\w*"
    r"|pläne|planung\w*)\b",
    re.IGNORECASE,
)
_PLANNING_TERMS = frozenset(analyze("planen"))


_GENERIC = frozenset(analyze(_GENERIC_WORDS))


def asked_unit(question: str) -> Unit | None:
    """Money or time, when the question asks for an amount of it (as `retrieval.names` reads it)."""
    if asks_price(question):
        return "money"
    if asks_duration(question):
        return "time"
    return None


def asked_nouns(question: str) -> list[str]:
    """The nouns of the asking sentence that name what is counted or measured.

    A generic noun misspelt by one letter („künstliche Inteligenz“) is still generic.
    """
    sentence = _IDIOM_RE.sub(" ", asking_sentences(question)[0])
    words = [m.group() for m in _NOUN_RE.finditer(sentence) if m.start() > 0]
    return [w for w in words if {t for t in _terms(w) - _GENERIC if not _misspelt_generic(t)}]


def _misspelt_generic(term: str) -> bool:
    return len(term) >= MIN_TYPO_LENGTH and any(one_edit(term, g) for g in _GENERIC)


def _terms(word: str) -> set[str]:
    """The stem of `word` and its compound head: „Arbeitsplätze“ → arbeitsplatz, platz.

    A hyphenated word is named by its last part („KI-Projekt“ → projekt).
    """
    terms = analyze(word.rsplit("-", 1)[-1]) or analyze(word)
    return {terms[0], terms[-1]} if terms else set()


def _noun_terms(noun: str) -> set[str]:
    """The noun's own terms and those of its thesaurus synonyms, without the generic ones."""
    expanded = default_thesaurus().expand(noun, counting=True).split()
    found: set[str] = set()
    for word in expanded:
        found |= _terms(word)
    return found - _GENERIC


def asked_size(question: str) -> tuple[int, int] | None:
    """The firm sizes (employees, inclusive bounds) a question bounds itself to, if it does."""
    match = _BOUND_RE.search(question)
    count = None if match is None else _count(match["n"])
    if match is None or count is None:
        named = _CLASS_WORD_RE.search(question)
        if named is None:
            return None
        return (0, 9) if named["micro"] else (250, 10**9)
    n = count
    op = match["op"].lower()
    if op.startswith(_BELOW):
        return (0, n if op.startswith(("bis", "höchstens", "maximal")) else n - 1)
    return (n if op in ("ab", "mindestens") else n + 1, 10**9)


def _count(word: str) -> int | None:
    return int(word) if word.isdigit() else _NUMBER_WORDS.get(word.lower())


def figure_missing(question: str, passages: Sequence[Passage]) -> bool:
    """Whether no item of the passages holds a figure of what the number question asks for."""
    unit = asked_unit(question)
    wanted = [_noun_terms(n) for n in asked_nouns(question)]
    wanted = [w for w in wanted if w]
    size = asked_size(question)
    found = list(_items(passages))
    polar = _negated_only(question, [item for _, item in found if QUANTITY_RE.search(item)])
    return not any(
        _answers(item, heading, unit, wanted)
        and _fits(item, size)
        and (not polar or polar <= _polarity(item)[0])
        for heading, item in found
    )


def _polarity(text: str) -> tuple[set[str], set[str]]:
    """The text's terms outside any negation, and those after one (in its sentence)."""
    plain: set[str] = set()
    negated: set[str] = set()
    for clause in _CLAUSE_END_RE.split(text):
        match = _NEGATION_RE.search(clause)
        cut = len(clause) if match is None else match.start()
        plain |= verb_forms(clause[:cut])
        negated |= verb_forms(clause[cut:])
    return plain, negated


def _negated_only(question: str, items: Sequence[str]) -> set[str]:
    """The question's terms that the items hold only after a negation (none if it negates)."""
    sentence = asking_sentences(question)[0]
    if _NEGATION_RE.search(sentence):
        return set()
    asked = {t for t in verb_forms(sentence) if len(t) >= _MIN_POLAR_TERM} - _GENERIC
    if _PLANNING_RE.search(sentence):
        asked |= _PLANNING_TERMS
    plain: set[str] = set()
    negated: set[str] = set()
    for item in items:
        yes, no = _polarity(item)
        plain |= yes
        negated |= no
    return (asked & negated) - plain


def _fits(item: str, size: tuple[int, int] | None) -> bool:
    """Whether the item's size classes (if it gives any) reach into the asked sizes."""
    classes = [(int(a), int(b)) for a, b in _CLASS_RE.findall(item)]
    if size is None or not classes:
        return True
    low, high = size
    return any(a <= high and b >= low for a, b in classes)


def _items(passages: Iterable[Passage]) -> Iterable[tuple[str, str]]:
    """Each item of the passages, with its section heading (which names what it is about)."""
    for passage in passages:
        for a, b in items(passage.text, passage.section):
            yield passage.section or "", passage.text[a:b]


def _answers(item: str, heading: str, unit: Unit | None, wanted: Sequence[set[str]]) -> bool:
    if not QUANTITY_RE.search(item):
        return False
    if unit == "money" and not MONEY_RE.search(item):
        return False
    if unit == "time" and not SPAN_RE.search(item):
        return False
    if not wanted:
        return True
    terms = set(analyze(item)) | set(analyze(heading))
    return any(noun & terms for noun in wanted)
