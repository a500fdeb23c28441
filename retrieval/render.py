"""What the app shows: answers as escaped Markdown, citations as escaped HTML cards.

Document text is data: every piece of it goes through `html.escape` (HTML) or `escape_markdown`
(Markdown) here, so a PDF containing `<img src=x onerror=…>` or `[Link](…)` shows as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from retrieval.answers import Answer, Citation, Evidence
from retrieval.citation_text import citation_text, flat, place, source_age
from retrieval.feedback import QUOTE_NOTE
from retrieval.passages import Passage

# Markdown punctuation that could start a link, an image, emphasis, code, a table or a heading.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")
# A list marker at the start of a line.
_LIST_MARKER = re.compile(r"^(\s*)([-+])", re.MULTILINE)
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}

PdfLink = Callable[[Passage], str | None]


def escape_markdown(text: str) -> str:
    """Text that a Markdown renderer shows verbatim: no links, no HTML, no formatting."""
    escaped = _LIST_MARKER.sub(r"\1\\\2", _MARKDOWN_SPECIAL.sub(r"\\\1", text))
    return "".join(_HTML_SPECIAL.get(ch, ch) for ch in escaped)


def answer_markdown(answer: Answer) -> str:
    """The chat message of a final answer, with its notes; all of its text escaped."""
    parts = [escape_markdown(answer.answer)]
    if answer.unsupported:
        listed = "\n".join(f"- {escape_markdown(s)}" for s in answer.unsupported)
        parts.append(f"**Ohne Beleg (nicht durch die Quellen gestützt):**\n{listed}")
    if answer.refused and answer.related:
        parts.append("Möglicherweise verwandte Stellen stehen rechts – sie belegen nichts.")
    if answer.notice:
        parts.append(f"*Hinweis: {escape_markdown(answer.notice)}*")
    return "\n\n".join(parts)


def streaming_markdown(text: str) -> str:
    """A partial answer while tokens arrive."""
    return escape_markdown(text) + " …"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def highlighted_passage(passage: Passage, span: tuple[int, int] | None) -> str:
    """The passage as escaped HTML with the quote inside it marked."""
    text = passage.text
    if span is None or not 0 <= span[0] < span[1] <= len(text):
        return _e(text)
    start, end = span
    return f"{_e(text[:start])}<mark>{_e(text[start:end])}</mark>{_e(text[end:])}"


def _links(passage: Passage, pdf_link: PdfLink) -> str:
    links = []
    where = f" ({place(passage)})" if passage.page is not None else ""
    if local := pdf_link(passage):
        links.append(
            f'<a href="{_e(local)}" target="_blank" rel="noopener" class="qc-pdf">'
            f"PDF öffnen{_e(where)}</a>"
        )
    if passage.url and passage.url.startswith(("https://", "http://")):
        links.append(
            f'<a href="{_e(passage.url)}" target="_blank" rel="noopener noreferrer" '
            f'class="qc-online">Online-Quelle{_e(where)}</a>'
        )
    return " · ".join(links)


def _meta(passage: Passage, this_year: int) -> list[str]:
    """Publisher, year with the source's age, page and section, as far as they are known."""
    meta = [flat(passage.publisher or ""), source_age(passage.year, this_year), place(passage)]
    if passage.section and passage.page is not None:
        meta.append(f"Abschnitt {flat(passage.section)}")
    return [m for m in meta if m]


def citation_card(citation: Citation, pdf_link: PdfLink, this_year: int) -> str:
    """One citation card: number, title, publisher, age, place, check mark, quote, links."""
    p = citation.passage
    n = citation.n
    check = (
        '<span class="qc-ok">✓ geprüft</span>'
        if citation.verified
        else '<span class="qc-unverified">✗ nicht geprüft</span>'
    )
    meta = _meta(p, this_year)
    links = _links(p, pdf_link)
    return (
        f'<article class="qc-card" id="quelle-{n}" aria-labelledby="quelle-{n}-titel">'
        f'<h3 id="quelle-{n}-titel"><span class="qc-n">[{n}]</span> {_e(flat(p.title))}</h3>'
        f'<p class="qc-meta">{_e(" · ".join(meta))} · {check}</p>'
        f'<blockquote class="qc-passage">{highlighted_passage(p, citation.quote_span)}</blockquote>'
        + (f'<p class="qc-links">{links}</p>' if links else "")
        + '<p class="qc-actions">'
        f'<button type="button" class="qc-copy" data-copy="{_e(citation_text(citation))}" '
        f'aria-label="Zitat {n} kopieren">Zitat kopieren</button> '
        f'<button type="button" class="qc-wrong" data-n="{n}" '
        f'aria-label="Zitat {n} als falsch melden">Zitat falsch</button>'
        "</p></article>"
    )


def related_card(passage: Passage, pdf_link: PdfLink, this_year: int) -> str:
    """A passage shown after a refusal: nearby, but explicitly no support for anything."""
    meta = _meta(passage, this_year)
    links = _links(passage, pdf_link)
    return (
        '<article class="qc-card qc-related">'
        f"<h3>{_e(flat(passage.title))}</h3>"
        f'<p class="qc-meta">{_e(" · ".join(meta))}</p>'
        f'<blockquote class="qc-passage">{_e(passage.text)}</blockquote>'
        + (f'<p class="qc-links">{links}</p>' if links else "")
        + "</article>"
    )


def sources_html(
    citations: Sequence[Citation],
    pdf_link: PdfLink,
    this_year: int,
    *,
    related: Sequence[Passage] = (),
    pending: bool = False,
) -> str:
    """The whole sources panel for one answer (or its evidence while the answer is pending)."""
    if not citations and not related:
        return '<p class="qc-empty">Hier erscheinen die Quellen zur Antwort.</p>'
    head = (
        '<p class="qc-status" role="status">Belege gefunden – die Antwort wird formuliert …</p>'
        if pending
        else ""
    )
    cards = "".join(citation_card(c, pdf_link, this_year) for c in citations)
    if citations:
        cards += f'<p class="qc-note">{_e(QUOTE_NOTE)}</p>'
    if related:
        cards += '<h3 class="qc-related-head">Möglicherweise verwandt (kein Beleg)</h3>' + "".join(
            related_card(p, pdf_link, this_year) for p in related
        )
    return f'<section class="qc-sources" aria-label="Quellen">{head}{cards}</section>'


def answer_sources_html(answer: Answer, pdf_link: PdfLink, this_year: int) -> str:
    """The sources panel of a final answer."""
    return sources_html(answer.citations, pdf_link, this_year, related=answer.related)


def evidence_sources_html(evidence: Evidence, pdf_link: PdfLink, this_year: int) -> str:
    """The sources panel while the answer is still being generated."""
    if evidence.refused:
        return sources_html((), pdf_link, this_year, related=evidence.passages)
    return sources_html(evidence.quotes, pdf_link, this_year, pending=True)
