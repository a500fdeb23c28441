"""The extractive composer: the answer made of verbatim pieces of the evidence, and refusals.

It is the instant backend and the fallback of every LLM backend; `compose` chooses the pieces,
this module turns them into an `Answer` whose citations quote exactly what is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retrieval.answers import REFUSAL, REFUSAL_EN, Answer, Citation
from retrieval.citations import quote_occurs
from retrieval.compose import Matcher, Piece, compose, lead, render
from retrieval.evidence import Prepared
from retrieval.question_kind import asks_why

PageText = Callable[[str, int], str | None]


def refusal(prepared: Prepared, backend: str, notice: str | None = None) -> Answer:
    """The refusal, with the nearest passages shown as related (never as support)."""
    return Answer(
        question=prepared.question,
        answer=REFUSAL_EN if prepared.english else REFUSAL,
        refused=True,
        citations=(),
        passages=prepared.passages,
        backend=backend,
        standalone_question=prepared.standalone,
        notice=notice,
        related=prepared.passages[:3],
    )


def extractive_answer(
    prepared: Prepared,
    matcher: Matcher,
    page_text: PageText,
    backend: str,
    notice: str | None = None,
) -> Answer:
    """Verbatim pieces of the evidence, shaped by the question's kind, each with its [n]."""
    pieces = extractive_pieces(prepared, matcher)
    opening = ""
    if prepared.kind == "yesno":
        opening = lead(prepared.standalone, pieces, english=prepared.english)
    return Answer(
        question=prepared.question,
        answer=render(pieces, prepared.kind, opening),
        refused=False,
        citations=piece_citations(pieces, page_text),
        passages=prepared.passages,
        backend=backend,
        standalone_question=prepared.standalone,
        notice=notice,
    )


def extractive_pieces(prepared: Prepared, matcher: Matcher) -> list[Piece]:
    """The pieces the extractive answer shows, in order (`retrieval.compose.compose`)."""
    return compose(
        prepared.kind,
        prepared.quotes,
        matcher,
        votes=prepared.section_votes,
        why=asks_why(prepared.standalone),
    )


def piece_citations(pieces: Sequence[Piece], page_text: PageText) -> tuple[Citation, ...]:
    """One citation per cited passage, quoting what its pieces show.

    The evidence's own quote where it holds the pieces, else the stretch they cover
    (verbatim, verified against the page).
    """
    spans: dict[int, tuple[Citation, int, int]] = {}
    for piece in pieces:
        n = piece.citation.n
        a, b = piece.span
        if n in spans:
            _, a0, b0 = spans[n]
            a, b = min(a, a0), max(b, b0)
        spans[n] = (piece.citation, a, b)
    return tuple(covering(citation, a, b, page_text) for citation, a, b in spans.values())


def covering(citation: Citation, a: int, b: int, page_text: PageText) -> Citation:
    """`citation` quoting at least `passage.text[a:b]`, verified against its page.

    The evidence's own quote where it holds that stretch, else exactly the stretch.
    """
    held = citation.quote_span
    if held is not None and held[0] <= a and b <= held[1]:
        return citation
    passage = citation.passage
    quote = passage.text[a:b]
    verified = quote_occurs(quote, page_text(passage.doc_sha, passage.unit))
    return Citation(citation.n, passage, quote, verified, (a, b))
