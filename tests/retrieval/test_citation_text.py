"""The copied quote line, a citation's place and its source's age."""

from __future__ import annotations

import pytest

from retrieval.citation_text import citation_text, origin, place, source_age
from tests.retrieval.answer_factory import make_citation, make_passage


def test_citation_text_has_quote_title_publisher_year_page_and_url() -> None:
    passage = make_passage(
        "Vorher. KMU sind beim Einsatz von KI\n noch zurückhaltend. Danach.",
        publisher="KfW Research",
    )
    citation = make_citation(passage, "KMU sind beim Einsatz von KI\n noch zurückhaltend.")
    assert citation_text(citation) == (
        "„KMU sind beim Einsatz von KI noch zurückhaltend.“ "
        "(KI im Mittelstand, KfW Research 2021, S. 3, https://example.org/bericht.pdf#page=3)"
    )


@pytest.mark.parametrize(
    ("publisher", "year", "expected"),
    [
        pytest.param("WIK Consult", 2021, "WIK Consult 2021", id="both"),
        pytest.param("WIK\n Consult", None, "WIK Consult", id="publisher-only"),
        pytest.param(None, 2019, "2019", id="year-only"),
        pytest.param(None, None, "", id="neither"),
    ],
)
def test_origin_names_only_what_the_metadata_states(
    publisher: str | None, year: int | None, expected: str
) -> None:
    assert origin(make_passage("x", publisher=publisher, year=year)) == expected


def test_text_document_cites_its_section_and_leaves_out_what_is_not_stated() -> None:
    # Like the shipped fact sheet: no publisher, year or URL of its own.
    passage = make_passage(
        "Fehlender Innovationsdruck.", page=None, section="Herausforderungen", url=None, year=None
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
        pytest.param(None, "ohne Jahresangabe", id="not-stated"),
    ],
)
def test_source_age(year: int | None, expected: str) -> None:
    assert source_age(year, 2025) == expected
