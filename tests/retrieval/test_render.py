"""Answers and citation cards render document text as text, never as markup."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from retrieval.citation_text import citation_text
from retrieval.corpus_files import pdf_href
from retrieval.feedback import QUOTE_NOTE
from retrieval.render import answer_markdown, citation_card, escape_markdown, sources_html
from tests.retrieval.answer_factory import make_answer, make_citation, make_passage

HOSTILE = "Vorsicht <img src=x onerror=alert(1)> und [Klick](javascript:alert(2)) **fett**"


class _Collect(HTMLParser):
    """Parses rendered HTML the way a browser would: tags, attributes, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: dict[str, list[str]] = {}
        self.text = ""
        self.marked = ""
        self._in_mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_mark = self._in_mark or tag == "mark"
        for name, value in attrs:
            self.attrs.setdefault(name, []).append(value or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._in_mark:
            self.marked += data


def _parse(markup: str) -> _Collect:
    parser = _Collect()
    parser.feed(markup)
    return parser


@pytest.mark.parametrize(
    ("text", "forbidden"),
    [
        pytest.param("<img src=x onerror=alert(1)>", "<img", id="html"),
        pytest.param("[Klick](https://evil.example)", "[Klick]", id="link"),
        pytest.param("![Bild](https://evil.example/x.png)", "![", id="image"),
        pytest.param("Satz\n- Punkt", "\n- ", id="list"),
    ],
)
def test_escape_markdown_neutralises_markup(text: str, forbidden: str) -> None:
    escaped = escape_markdown(text)
    assert forbidden not in escaped
    # What a reader sees once escapes and entities are resolved is the original text.
    shown = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert shown.replace("\\", "") == text.replace("\\", "")


def test_card_shows_hostile_passage_as_text_with_the_quote_marked() -> None:
    passage = make_passage(f"Einleitung. {HOSTILE}. Schluss.")
    citation = make_citation(passage, HOSTILE)
    parsed = _parse(citation_card(citation, pdf_href, 2025))
    assert "img" not in parsed.tags
    assert "onerror" not in parsed.attrs
    assert HOSTILE in parsed.text
    assert parsed.marked == HOSTILE


def test_card_carries_number_publisher_age_place_check_and_links() -> None:
    passage = make_passage(
        "KMU sind beim Einsatz von KI noch zurückhaltend.", publisher="Lernende Systeme"
    )
    citation = make_citation(passage, passage.text, n=2)
    parsed = _parse(citation_card(citation, pdf_href, 2025))
    assert "[2]" in parsed.text
    assert "KI im Mittelstand" in parsed.text
    assert "Lernende Systeme · 2021 (vor 4 Jahren) · S. 3 · ✓ geprüft" in parsed.text
    assert "✓ geprüft" in parsed.text
    assert f"quellen/{'a' * 64}.pdf#page=3" in parsed.attrs["href"]
    assert "https://example.org/bericht.pdf#page=3" in parsed.attrs["href"]
    # The copy button carries exactly the citation line (entities decoded by the parser).
    assert parsed.attrs["data-copy"] == [citation_text(citation)]
    assert parsed.attrs["data-n"] == ["2"]


def test_unverified_quote_is_marked_and_text_documents_get_no_pdf_link() -> None:
    passage = make_passage("Ein Satz.", source="faktenblatt.txt", page=None, url=None)
    parsed = _parse(
        citation_card(make_citation(passage, "Ein Satz.", verified=False), pdf_href, 2025)
    )
    assert "nicht geprüft" in parsed.text
    assert "href" not in parsed.attrs


def test_javascript_url_in_metadata_is_not_linked() -> None:
    passage = make_passage("Text.", url="javascript:alert(1)")
    parsed = _parse(citation_card(make_citation(passage, "Text."), pdf_href, 2025))
    assert all(not h.startswith("javascript") for h in parsed.attrs["href"])


def test_answer_markdown_escapes_answer_and_lists_unsupported_sentences() -> None:
    passage = make_passage(HOSTILE)
    answer = make_answer(
        "Frage?",
        (make_citation(passage, HOSTILE),),
        unsupported=("Erfundener Satz [ohne Beleg]",),
        notice="LLM nicht erreichbar",
    )
    markdown = answer_markdown(answer)
    assert "<img" not in markdown
    assert "](" not in markdown.replace("\\](", "")
    assert "Ohne Beleg" in markdown
    assert "LLM nicht erreichbar" in markdown


def test_source_without_stated_year_or_publisher_says_so() -> None:
    passage = make_passage(
        "Fehlender Innovationsdruck.", page=None, section="Herausforderungen", year=None
    )
    parsed = _parse(citation_card(make_citation(passage, passage.text), pdf_href, 2025))
    assert "ohne Jahresangabe · Abschnitt Herausforderungen · ✓ geprüft" in parsed.text
    assert "unbekannt" not in parsed.text


def test_panel_with_citations_says_what_zitat_falsch_stores() -> None:
    passage = make_passage("Ein Satz.")
    parsed = _parse(sources_html((make_citation(passage, "Ein Satz."),), pdf_href, 2025))
    assert QUOTE_NOTE in parsed.text
    assert "keine IP-Adresse" in QUOTE_NOTE
    assert QUOTE_NOTE not in _parse(sources_html((), pdf_href, 2025)).text


def test_refusal_shows_related_passages_as_no_support() -> None:
    related = make_passage("Die Bäckerei backt Brot.", id="p9", publisher="Bäckerinnung")
    markup = sources_html((), pdf_href, 2025, related=(related,))
    parsed = _parse(markup)
    assert "Möglicherweise verwandt (kein Beleg)" in parsed.text
    assert "Die Bäckerei backt Brot." in parsed.text
    assert "Bäckerinnung · 2021 (vor 4 Jahren) · S. 3" in parsed.text
    assert "Zitat kopieren" not in parsed.text
