"""The copied quote line, a citation's place and its source's age."""

from __future__ import annotations

import pytest

from retrieval.citation_text import citation_text, place, source_age
from tests.retrieval.answer_factory import make_citation, make_passage


def test_citation_text_has_quote_title_page_and_url() -> None:
    passage = make_passage("Vorher. KMU sind beim Einsatz von KI\n noch zurückhaltend. Danach.")
    citation = make_citation(passage, "KMU sind beim Einsatz von KI\n noch zurückhaltend.")
    assert citation_text(citation) == (
        "„KMU sind beim Einsatz von KI noch zurückhaltend.“ "
        "(KI im Mittelstand, S. 3, https://example.org/bericht.pdf#page=3)"
    )


def test_text_document_cites_its_section_and_leaves_out_a_missing_url() -> None:
    passage = make_passage(
        "Fehlender Innovationsdruck.", page=None, section="Herausforderungen", url=None
    )
    citation = make_citation(passage, "Fehlender Innovationsdruck.")
    assert citation_text(citation) == (
        "„Fehlender Innovationsdruck.“ (KI im Mittelstand, Abschnitt Herausforderungen)"
    )


def test_printed_page_label_is_named_beside_the_physical_page() -> None:
    assert place(make_passage("x", page=7, page_label="v")) == "S. 7 (gedruckt: v)"


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        pytest.param(2021, "2021 (vor 4 Jahren)", id="years"),
        pytest.param(2024, "2024 (vor 1 Jahr)", id="one-year"),
        pytest.param(2025, "2025 (aktuell)", id="this-year"),
        pytest.param(None, "Jahr unbekannt", id="unknown"),
    ],
)
def test_source_age(year: int | None, expected: str) -> None:
    assert source_age(year, 2025) == expected
