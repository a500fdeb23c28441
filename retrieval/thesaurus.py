"""Query expansion from everyday words to the sources' terms (`thesaurus.de.toml`).

Users ask „Welche Hemmnisse …?“ where the fact sheet says „Herausforderungen“. The thesaurus
maps everyday words to the sources' terms; a key matches when all its analysed terms (German
analysis: folded, stemmed, compounds split) occur among the question's. The expansion feeds
the lexical search, and the choice of key sentence at half weight (`highlight.RELATED_WEIGHT`):
the question itself and its embedding stay as asked.

Verbs are matched in the forms a question conjugates them, not only as the infinitive key the
stemmer reduces („bringen“ → „bring“): „bringt“, „bringst“ (the ending dropped), „einzusetzen“
(the „zu“ inside a separable verb dropped), „hält … ab“ (a separable verb's particle joined to
the other words: „abhalt“, as „abhalten“ is stemmed). Nouns are matched in their plural and
case forms too (`noun_forms`): the stemmer reduces „Problem“ and „Probleme“ to different stems.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.highlight import asks_for_quantity
from retrieval.lexical import MIN_TYPO_LENGTH, analyze, one_edit
from retrieval.question_kind import question_kind

THESAURUS_FILE = Path(__file__).with_name("thesaurus.de.toml")
# The shortest term read as a key term with a doubled letter typed once.
MIN_UNDOUBLED = 5


@dataclass(frozen=True)
class Thesaurus:
    """Everyday keys (as analysed term sets) and the source terms each adds to a query."""

    entries: tuple[tuple[frozenset[str], tuple[str, ...]], ...]
    # Keys that hold only in a question asking for a number („Wie viele Betriebe mit 20
    # Mitarbeitern …?“ → the size classes' „MA“); „Wie mache ich meine Mitarbeiter fit?“ is no
    # question about size classes.
    counting: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = ()

    @classmethod
    def from_mapping(
        cls, terms: Mapping[str, Sequence[str]], counting: Mapping[str, Sequence[str]] | None = None
    ) -> Thesaurus:
        """Build from {everyday word or phrase: [source terms]}; keys without terms are dropped.

        `counting`: the same, for keys that hold only where the question asks for a number.
        """
        return cls(_entries(terms), _entries(counting or {}))

    def _entries_for(
        self, question: str, counting: bool | None
    ) -> tuple[tuple[frozenset[str], tuple[str, ...]], ...]:
        if counting is None:
            counting = bool(self.counting) and _asks_for_a_number(question)
        return self.entries + self.counting if counting else self.entries

    def expand(self, question: str, *, counting: bool | None = None) -> str:
        """The question followed by the source terms of every key it contains (each once).

        `counting`: whether the `counting` keys hold (by default: whether the question asks
        for a number; a noun taken from a number question holds them too).
        """
        added = self.added(question, counting=counting)
        return " ".join([question, *added]) if added else question

    def added(
        self, question: str, without: Iterable[str] = (), *, counting: bool | None = None
    ) -> list[str]:
        """The source terms of every key the question contains, each once, in file order.

        `without`: keys (as written in the file) left out; `counting` as for `expand`.
        """
        asked = verb_forms(question)
        corrected = self.misspelled(asked).keys()
        asked |= corrected
        skipped = {frozenset(analyze(k)) for key in without for k in noun_forms(key)}
        return list(
            dict.fromkeys(
                target
                for key, targets in self._entries_for(question, counting)
                if _holds(asked, key, corrected) and key not in skipped
                for target in targets
            )
        )

    def related(self, question: str) -> dict[str, frozenset[str]]:
        """Per analysed term of the question, the analysed source terms its matched keys add.

        „Welche Hemmnisse …?“ gives {"hemmnis": {"herausforder"}}: a passage that says
        „Herausforderungen“ speaks of what the question calls „Hemmnisse“.
        """
        terms = set(analyze(question))
        asked = verb_forms(question)
        typos = self.misspelled(asked)
        asked |= typos.keys()
        found: dict[str, set[str]] = {}
        for key, targets in self._entries_for(question, None):
            if _holds(asked, key, typos.keys()):
                added = set(analyze(" ".join(targets)))
                for term in key & (terms | typos.keys()):
                    found.setdefault(typos.get(term, term), set()).update(added)
        return {term: frozenset(added) for term, added in found.items()}

    @functools.cached_property
    def _key_terms(self) -> frozenset[str]:
        keys = (key for key, _ in (*self.entries, *self.counting))
        return frozenset(t for key in keys for t in key if len(t) >= MIN_TYPO_LENGTH)

    def misspelled(self, asked: set[str]) -> dict[str, str]:
        """{key term: the question's term} for long terms one letter off a key's („Maschienen“).

        Users type fast: „Qualitätskontrole“ is „Qualitätskontrolle“. A term of at least
        `MIN_TYPO_LENGTH` letters that is no key term itself matches a key term one letter
        changed, added, dropped or swapped away; a shorter one (from `MIN_UNDOUBLED` letters)
        only a key term with a doubled letter typed once („Hemnisse“ for „Hemmnisse“), the
        commonest slip and one that rarely makes another word.
        """
        found: dict[str, str] = {}
        for term in asked:
            if len(term) < MIN_UNDOUBLED or term in self._key_terms:
                continue
            for key_term in self._key_terms:
                if key_term in asked:
                    continue
                if (
                    one_edit(term, key_term)
                    if len(term) >= MIN_TYPO_LENGTH
                    else undoubled(term, key_term)
                ):
                    found.setdefault(key_term, term)
        return found


def _holds(asked: set[str], key: frozenset[str], corrected: Iterable[str]) -> bool:
    """Whether the question's terms hold every term of the key.

    A key term read in place of a misspelt word holds its compound parts too: „Qualitätskontrole“
    stands for „Qualitätskontrolle“, analysed as the compound, „Qualität“ and „Kontrolle“.
    """
    if key <= asked:
        return True
    wholes = [whole for whole in corrected if whole in key]
    return bool(wholes) and all(
        term in asked or any(term in whole for whole in wholes) for term in key
    )


def undoubled(term: str, key_term: str) -> bool:
    """Whether `term` is `key_term` with one of its doubled letters typed once („hemnis“)."""
    return len(key_term) == len(term) + 1 and any(
        key_term[i] == key_term[i + 1] and key_term[:i] + key_term[i + 1 :] == term
        for i in range(len(key_term) - 1)
    )


def _entries(
    terms: Mapping[str, Sequence[str]],
) -> tuple[tuple[frozenset[str], tuple[str, ...]], ...]:
    """(analysed key form, source terms) for every form of every key with terms."""
    entries = []
    for key, targets in terms.items():
        if not targets:
            continue
        for form in dict.fromkeys(frozenset(analyze(k)) for k in noun_forms(key)):
            if form:
                entries.append((form, tuple(targets)))
    return tuple(entries)


def _asks_for_a_number(question: str) -> bool:
    return asks_for_quantity(question) or question_kind(question) == "number"


# Plural and case endings of a noun key's last word. The stemmer does not always reduce them to
# the key's stem („Problem“ → „probl“, „Probleme“ → „problem“), so each form is a key of its own.
_NOUN_ENDINGS = ("e", "en", "n", "s", "er", "se")


def noun_forms(key: str) -> list[str]:
    """The key, and when its last word is a noun (capitalised) that word's inflected forms."""
    head, _, last = key.rpartition(" ")
    if not last[:1].isupper():
        return [key]
    prefix = f"{head} " if head else ""
    return [key, *(f"{prefix}{last}{ending}" for ending in _NOUN_ENDINGS)]


# Separable verb particles („hält … ab“, „einzusetzen“).
_PARTICLES = ("ab", "an", "auf", "aus", "ein", "los", "mit", "nach", "vor", "weg", "zu", "zurück")
_PARTICLE_RE = re.compile(r"\b(" + "|".join(_PARTICLES) + r")\s*[?.!,]*\s*$", re.IGNORECASE)
# Endings of a conjugated verb that the stemmer keeps („bringt“, „bringst“).
_ENDINGS = ("est", "et", "st", "t")
_MIN_ROOT = 3


def verb_forms(question: str) -> set[str]:
    """The question's analysed terms, with the infinitive stems its verb forms stand for."""
    forms = _with_roots(analyze(question))
    forms |= _infinitives(question)
    for term in list(forms):
        for particle in _PARTICLES:
            infix = particle + "zu"
            if term.startswith(infix) and len(term) - len(infix) >= _MIN_ROOT:
                forms.add(particle + term[len(infix) :])
    # A clause ending in a particle („Was hält kleine Firmen davon ab?“): the particle joins
    # each term of the clause, so „abhalten“ matches. Clauses end at a comma, and also at „und“
    # or „oder“ („Wie fangen wir an und was …?“), unless that splits the verb from its particle
    # („Wie bereite ich Daten und Systeme vor?“): both readings count.
    clauses = {*re.split(r"[,;]", question), *re.split(r"[,;]|\s(?:und|oder|aber)\s", question)}
    for clause in clauses:
        ending = _PARTICLE_RE.search(clause)
        if ending is not None:
            joined = _with_roots(analyze(clause[: ending.start()]))
            forms |= {ending.group(1).lower() + term for term in joined}
    return forms


def _infinitives(question: str) -> set[str]:
    """The stems of the infinitives that the question's conjugated words may stand for.

    The stemmer treats „bremst“ and „bremsen“, „hindert“ and „hindern“ differently (brem/brems,
    hindert/hind); the infinitive rebuilt from the word („brems“ + „en“) is stemmed like the key.
    """
    found: set[str] = set()
    for word in re.findall(r"[^\W\d_]+", question.lower()):
        for ending in _ENDINGS:
            root = word[: -len(ending)]
            if word.endswith(ending) and len(root) >= _MIN_ROOT:
                found.update(analyze(root + "en"), analyze(root + "n"))
    return found


def _with_roots(terms: Iterable[str]) -> set[str]:
    """The terms, and each without the first conjugation ending it has („bringt“ → „bring“)."""
    forms = set(terms)
    for term in list(forms):
        for ending in _ENDINGS:
            if term.endswith(ending) and len(term) - len(ending) >= _MIN_ROOT:
                forms.add(term[: -len(ending)])
                break
    return forms


@functools.cache
def default_thesaurus() -> Thesaurus:
    """The shipped thesaurus, read once; a broken file fails with a message naming it."""
    try:
        data = tomllib.loads(THESAURUS_FILE.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuntimeError(f"{THESAURUS_FILE}: nicht lesbar ({exc})") from exc
    # [terms] must be there; [counting] may be left out.
    tables = {"terms": data.get("terms"), "counting": data.get("counting", {})}
    for name, table in tables.items():
        if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in table.values()
        ):
            raise RuntimeError(f"{THESAURUS_FILE}: [{name}] muss Wörter auf Textlisten abbilden")
    return Thesaurus.from_mapping(tables["terms"], tables["counting"])
