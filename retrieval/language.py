"""Which language a question is in, and the German terms a translated question must use.

The sources are German: an English question is answered in English but searched in German,
and its words cannot count as coverage of the German passages.
"""

from __future__ import annotations

import re

# English abbreviations a translation keeps, and the German ones the sources use.
_GERMAN_TERMS = ((re.compile(r"\bSMEs?\b"), "KMU"), (re.compile(r"\bAIs?\b"), "KI"))
_ENGLISH = frozenset(
    [
        "the",
        "what",
        "how",
        "which",
        "who",
        "why",
        "when",
        "where",
        "is",
        "are",
        "does",
        "do",
        "can",
        "could",
        "should",
        "of",
        "for",
        "in",
        "on",
        "with",
        "and",
        "to",
        "a",
        "an",
        "my",
        "our",
        "companies",
        "company",
        "use",
        "about",
    ]
)
_GERMAN = frozenset(
    [
        "der",
        "die",
        "das",
        "was",
        "wie",
        "welche",
        "wer",
        "warum",
        "wann",
        "wo",
        "ist",
        "sind",
        "gibt",
        "kann",
        "können",
        "für",
        "in",
        "mit",
        "und",
        "zu",
        "ein",
        "eine",
        "mein",
        "unser",
        "unternehmen",
        "nutzen",
        "über",
        "bei",
        "von",
        "im",
    ]
)


def is_english(question: str) -> bool:
    """Whether the question is (most likely) English rather than German."""
    words = re.findall(r"[a-zäöüß]+", question.lower())
    english = sum(w in _ENGLISH for w in words)
    german = sum(w in _GERMAN for w in words) + 2 * bool(re.search(r"[äöüß]", question.lower()))
    return english > german


def german_terms(question: str) -> str:
    """A translated question with the German abbreviations the sources use (SMEs → KMU, AI → KI).

    A small model keeps English abbreviations when it translates; the sources know only the
    German ones, so the search found nothing and the question was refused.
    """
    for pattern, german in _GERMAN_TERMS:
        question = pattern.sub(german, question)
    return question


def language_instruction(english: bool) -> str:
    """The line that asks the model for its answer, in the answer's language."""
    if english:
        return "Answer (in English, each sentence followed by the [number] of its source):"
    return "Antwort (auf Deutsch, jeder Satz mit [Nummer] seiner Quelle):"
