"""Whether the sources explain what a question asks to have explained, or only name it.

„Was sind Assistenzsysteme?“ asks what a thing is. The fact sheet names „intelligente
Assistenzsysteme“ only as one entry of an enumeration („… umfassen u.a. intelligente
Assistenzsysteme, Sensorik, Robotik, …“), and „Rechnerkapazitäten“ only as an example
(„Technische Infrastruktur wie Rechnerkapazitäten.“). Quoted under the question, such a list
reads as an answer that it is not. So a question asking what a thing is, what is meant by it or
what it is about is refused where the passages mention the thing, but every mention is a bare
entry of an enumeration or an example („wie …“, „z. B. …“, „u.a. …“) and none says more.

The same holds for a question asking what a thing other than KI does or brings („Wie kann ein
Assistenzsystem die Beschäftigten unterstützen?“, „Was leistet Sensorik?“, „Können
Assistenzsysteme Mitarbeitende unterstützen?“): an entry of a list of fields says that the
field exists, not what it does. A question asking what KI does for a
field („Wie hilft KI bei der Wartung?“) is not decided here: an example („in der Produktion
(z. B. vorausschauende Wartung …)“) does answer that KI is used there.

A thing counts as mentioned by a word that is its word, a compound ending in it, or its word
misspelt by one letter („Rechenkapazität“ – „Rechnerkapazitäten“). A thing that no passage
mentions is not decided here (the refusal threshold and `retrieval.names` see to it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from quellenchat.types import strip_urls
from retrieval.compose import items
from retrieval.figures import asked_nouns
from retrieval.lexical import analyze, one_edit
from retrieval.passages import Passage
from retrieval.question_kind import asking_sentences

# „Was ist/sind …“, „Was bedeutet …“, „Was versteht man unter …“, „Was hat es mit … auf sich“,
# „Was ist mit … gemeint“, „Erklär mir …“.
_DEFINITION_RE = re.compile(
    r"^\W*(?:und\s+)?(?:was\s+(?:genau\s+|eigentlich\s+|denn\s+|überhaupt\s+)*"
    r"(?:ist|sind|bedeutet|bedeuten|heißt|heisst|meint)\b"
    r"|was\s+versteht\s+man\s+unter\b|was\s+hat\s+es\s+mit\b|erklär\w*\b)",
    re.IGNORECASE,
)
# „Wie kann/hilft …“, „Was bringt/bietet/macht …“, „Wobei/Wofür/Womit kann …“: what a thing does.
_DOES_RE = re.compile(
    r"^\W*(?:und\s+)?(?:(?:wie|wobei|wofür|womit|inwiefern|was)\s+(?:genau\s+|eigentlich\s+|konkret\s+)*"
    r"(?:kann|können|könnte|könnten|hilft|helfen|unterstützt|unterstützen|bringt|bringen|bietet"
    r"|bieten|macht|machen|leistet|leisten|tut|tun)"
    r"|(?:kann|können|koennen|könnte|könnten|hilft|helfen|unterstützt|unterstützen|bringt|bringen)"
    r"(?=\s[^?]*\b(?:unterstütz\w*|unterstuetz\w*|helfen|leisten|übernehmen|entlasten|erledigen)\b))\b",
    re.IGNORECASE,
)
# The subject after the verb: an optional article, then the noun („… ein Assistenzsystem …“).
_SUBJECT_RE = re.compile(
    r"\s+(?:(?:ein|eine|einem|einen|einer|der|die|das|den|dem|so|solch\w*|dies\w*)\s+)*"
    r"(?:[a-zäöüß]+e[rmns]?\s+)?[A-ZÄÖÜ][\w-]*"
)
# Where an enumeration's entries or an example begin within a clause.
_LEAD_RE = re.compile(r"\(|\bz\.\s*B\.|\bwie\s|\bu\.\s*a\.|\bdarunter\b|\bumfass\w*\b|:")
_WORD_RE = re.compile(r"[\wÄÖÜäöüß][\w\-ÄÖÜäöüß]*")
# An entry of an enumeration or an example has at most this many words.
_ENTRY_WORDS = 4
_MIN_TERM = 5


def asks_what(question: str) -> bool:
    """Whether the question asks what a thing is (or what is meant by it)."""
    return bool(_DEFINITION_RE.search(asking_sentences(question)[0]))


def asks_what_it_does(question: str) -> bool:
    """Whether the question asks what a thing other than KI does, brings or offers."""
    match = _DOES_RE.search(asking_sentences(question)[0])
    if match is None:
        return False
    subject = _SUBJECT_RE.match(match.string, match.end())
    return subject is not None and bool(asked_nouns("Frage " + subject.group()))


def only_named(question: str, passages: Sequence[Passage]) -> bool:
    """Whether the passages mention what the question asks about only as a bare entry.

    False unless the question asks what a thing is (or does) and at least one of its nouns is
    mentioned.
    """
    terms = [t for t in map(_parts, asked_nouns(question)) if t and len(t[0]) >= _MIN_TERM]
    if not asks_what(question):
        if not asks_what_it_does(question):
            return False
        terms = terms[:1]  # the thing it asks about; the rest is what it should do
    found = False
    for term in terms:
        mentions = list(_mentions(term, _texts(passages)))
        if any(not bare for bare in mentions):
            return False
        found = found or bool(mentions)
    return found


def _parts(word: str) -> list[str]:
    """The word's term, then its compound parts' („KI-Projekte“: its last part's)."""
    return analyze(word.rsplit("-", 1)[-1])


def _texts(passages: Iterable[Passage]) -> Iterable[str]:
    for passage in passages:
        yield passage.section or ""
        for a, b in items(passage.text, passage.section):
            # A link names nothing: „…/KI-Trainer/ki-trainer.html“ is no mention of it.
            yield strip_urls(passage.text[a:b])


def _mentions(term: list[str], texts: Iterable[str]) -> Iterable[bool]:
    """For each mention of `term`, whether it is a bare entry of an enumeration or example."""
    for text in texts:
        clauses = re.split(r"[,;]|\s(?:sowie|oder)\s|\.\s", text)
        for index, clause in enumerate(clauses):
            words = _WORD_RE.findall(clause)
            if not any(_same(term, w) for w in words):
                continue
            yield _bare(clause, term, listed=len(clauses) >= 3 and index > 0)


def _bare(clause: str, term: list[str], *, listed: bool) -> bool:
    """Whether the mention in `clause` is an entry: a short clause of a list, or an example."""
    leads = list(_LEAD_RE.finditer(clause))
    lead = leads[-1] if leads else None
    tail = clause[lead.end() :] if lead else clause
    if lead and any(_same(term, w) for w in _WORD_RE.findall(tail)):
        return len(_WORD_RE.findall(tail)) <= _ENTRY_WORDS
    return listed and len(_WORD_RE.findall(clause)) <= _ENTRY_WORDS


def _same(term: list[str], word: str) -> bool:
    """Whether `word` is the term's word, a compound ending in it, or it misspelt.

    A compound is misspelt in its first part too: „Rechen-“ for „Rechnerkapazität“.
    """
    own = _parts(word)
    if not own:
        return False
    if own[0] == term[0] or own[0].endswith(term[0]) or one_edit(own[0], term[0]):
        return True
    return len(own) == len(term) == 3 and own[2] == term[2] and one_edit(own[1], term[1])
