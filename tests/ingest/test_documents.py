"""PDF chunks get the sections in force where they start (pure logic over cleaned pages)."""

from __future__ import annotations

from ingest.chunking import ChunkSizes, chunk_units
from ingest.documents import _with_pdf_sections
from quellenchat.types import Page

SENTENCES = " ".join(f"Satz {i} steht hier." for i in range(8))


def test_pdf_sections_nest_and_carry_across_pages() -> None:
    pages = [
        Page(0, f"3.1 Rhythmen\n\n{SENTENCES}\n\nAuftakt\n\n{SENTENCES}", number=1),
        Page(1, SENTENCES, number=2),
        Page(2, f"3.2 Mehrere Noten\n\n{SENTENCES}", number=3),
    ]
    chunks = _with_pdf_sections(chunk_units(pages, "sha", ChunkSizes(), by_block=False), pages)
    assert [(c.page, c.section) for c in chunks] == [
        (1, "Rhythmen"),
        (1, "Rhythmen › Auftakt"),
        (2, "Rhythmen › Auftakt"),  # carried over the page break
        (3, "Mehrere Noten"),  # a numbered heading ends the subsection
    ]
