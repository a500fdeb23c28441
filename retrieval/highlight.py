"""Key sentences: the sentence(s) of a passage that best answer the question.

Sentence spans are computed at ingest (`Chunk.sentences`) and their analysed terms once per
store snapshot; per query they are only scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from retrieval.lexical import one_edit

Span = tuple[int, int]
MAX_KEY_SENTENCES = 2
# A second sentence is highlighted only when it scores at least this share of the best one.
SECOND_SHARE = 0.6
NUMBER_BONUS = 1.0
# A source term the thesaurus gives for a word of the question („Abläufe“ → „Prozesse“) weighs
# this share of a word the question uses itself.
RELATED_WEIGHT = 0.5
# Negations, as analysed („weder“ → „wed“). A negated sentence's figure counts those who do
# not („40% … setzen weder KI ein noch planen sie …“): it answers „Wie viele … setzen KI ein?“
# only when the question is negated too.
# „nix“: spoken German for „nichts“ („haben mit KI nix am Hut“).
NEGATIONS = frozenset({"nicht", "kein", "wed", "nie", "niemal", "nix"})
_QUANTITY_RE = re.compile(
    r"\b(wie viele|wie viel|wieviele|wie hoch|wie groß|welche[nr]? anteil|anteil|prozent|quote"
    r"|was kostet|was kosten|wie teuer|wie lange"
    # „Nutzen große Firmen KI häufiger als kleine?“ compares how many: the shares answer it.
    r"|(?:häufiger|haeufiger|öfter|oefter|seltener)\b[^?.]*\bals"
    r"|how many|how much|percentage|share|how long)\b",
    re.IGNORECASE,
)


_AFTER_WIE_RE = re.compile(r"\bwie\s+(\w+)", re.IGNORECASE)


def asks_for_quantity(question: str) -> bool:
    """Whether the question asks for a number ("Wie viele …?", "Welchen Anteil …?").

    A typed „Wie veile …“ or „Wie vile …“ (one letter off „viele“/„viel“, or two swapped) asks
    as much as „Wie viele …“ does.
    """
    if _QUANTITY_RE.search(question):
        return True
    return any(
        one_edit(word.lower(), target)
        for word in _AFTER_WIE_RE.findall(question)
        for target in ("viele", "viel")
    )


def has_figure(terms: frozenset[str]) -> bool:
    """Whether a sentence's analysed terms hold a number („15%“, „2021“)."""
    return any(t[:1].isdigit() for t in terms)


def key_sentences(
    query_terms: set[str],
    sentences: Sequence[Span],
    sentence_terms: Sequence[frozenset[str]],
    idf: Callable[[str], float],
    *,
    quantity: bool = False,
    related: frozenset[str] = frozenset(),
) -> tuple[Span, ...]:
    """The best-matching sentence spans, best first; the first sentence when nothing matches.

    A question asking for a quantity favours sentences with numbers in them by
    `NUMBER_BONUS` times the weight of its rarest term, unless the sentence is negated and the
    question is not (see `NEGATIONS`). The sources' terms for the question's everyday words
    (`related`, from the thesaurus) count `RELATED_WEIGHT` of their weight.
    """
    if not sentences:
        return ()
    bonus = NUMBER_BONUS * max((idf(t) for t in query_terms), default=0.0) if quantity else 0.0
    negated_question = bool(query_terms & NEGATIONS)

    def score(terms: frozenset[str]) -> float:
        counts = negated_question or not terms & NEGATIONS
        numeric = bonus if counts and has_figure(terms) else 0.0
        own = sum(idf(t) for t in query_terms & terms)
        return own + RELATED_WEIGHT * sum(idf(t) for t in (related - query_terms) & terms) + numeric

    scored = sorted(
        (-score(terms), index, span)
        for index, (span, terms) in enumerate(zip(sentences, sentence_terms, strict=True))
    )
    best = -scored[0][0]
    if best <= 0:
        return (sentences[0],)
    return tuple(span for neg, _, span in scored[:MAX_KEY_SENTENCES] if -neg >= best * SECOND_SHARE)
