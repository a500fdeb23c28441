"""A rich German PDF (ligatures, hyphens, header, footer, bullets) through to the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quellenchat.settings import Settings
from quellenchat.storage import open_client, read_page_text, read_sources
from tests.fakes import ingest_fake
from tests.ingest.test_ingest import assert_consistent, store_chunks
from tests.ingest.test_loaders import CLEANED, HEADER, PAGES, font, write_pdf

__all__ = ["font"]  # the session fixture that builds the test font


def test_cleaned_pages_and_their_chunks_are_what_the_store_holds(
    make_settings: Callable[..., Settings], corpus_dir: Path, font: Path
) -> None:
    (corpus_dir / "literature").mkdir()
    write_pdf(corpus_dir / "literature" / "faktenblatt.pdf", font, PAGES)
    settings = make_settings()
    report = ingest_fake(settings)
    assert report.exit_code == 0, report.to_json()

    client = open_client(settings)
    [record] = read_sources(client)
    assert record.source == "literature/faktenblatt.pdf"
    assert record.pages == 3
    stored = [read_page_text(client, record.doc_sha, unit) for unit in range(3)]
    assert stored == CLEANED  # joined hyphens, plain letters for ligatures, no header or footer

    chunks = [c for _, c in store_chunks(settings)]
    assert {c.page for c in chunks} == {1, 2, 3}
    text = " ".join(c.text for c in chunks)
    for word in ("Kenntnissen", "KI-Technologien", "finanziellen", "Einfluss"):
        assert word in text
    assert HEADER not in text
    assert "Seite 1 von 3" not in text
    for chunk in chunks:
        page_text = stored[chunk.unit]
        assert page_text is not None
        assert page_text[chunk.start : chunk.end] == chunk.text
    assert_consistent(settings)
