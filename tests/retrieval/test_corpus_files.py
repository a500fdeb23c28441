"""Only ingested PDFs inside a corpus folder, unchanged since ingest, are served."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from quellenchat.storage import SourceRecord
from quellenchat.types import DocumentInfo
from retrieval.corpus_files import CorpusFiles, pdf_href
from tests.helpers import write_pdf
from tests.retrieval.answer_factory import make_passage


def _record(corpus: Path, source: str, data: bytes) -> SourceRecord:
    return SourceRecord(
        source=source,
        doc_sha=hashlib.sha256(data).hexdigest(),
        info=DocumentInfo(title=source),
        size=len(data),
        pages=1,
        chunks=1,
        ingested_at="2025-11-25T10:00:00+00:00",
        corpus=corpus.as_posix(),
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    write_pdf(folder / "literature" / "bericht.pdf", ["Seite eins", "Seite zwei"])
    (folder / "notizen.txt").write_text("geheim", encoding="utf-8")
    return folder


def test_ingested_pdf_is_found_by_its_checksum(corpus: Path) -> None:
    data = (corpus / "literature" / "bericht.pdf").read_bytes()
    record = _record(corpus, "literature/bericht.pdf", data)
    found = CorpusFiles([corpus]).pdf_path([record], record.doc_sha)
    assert found == (corpus / "literature" / "bericht.pdf").resolve()


def test_text_documents_unknown_checksums_and_malformed_ids_are_not_served(corpus: Path) -> None:
    text = _record(corpus, "notizen.txt", b"geheim")
    files = CorpusFiles([corpus])
    assert files.pdf_path([text], text.doc_sha) is None
    assert files.pdf_path([text], "b" * 64) is None
    assert files.pdf_path([text], "../../etc/passwd") is None


def test_a_record_pointing_outside_its_corpus_is_not_served(corpus: Path, tmp_path: Path) -> None:
    outside = write_pdf(tmp_path / "privat.pdf", ["privat"])
    record = _record(corpus, "../privat.pdf", outside.read_bytes())
    assert CorpusFiles([corpus]).pdf_path([record], record.doc_sha) is None


def test_a_folder_that_is_no_configured_corpus_is_not_served(corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "anderswo"
    pdf = write_pdf(other / "x.pdf", ["x"])
    record = _record(other, "x.pdf", pdf.read_bytes())
    assert CorpusFiles([corpus]).pdf_path([record], record.doc_sha) is None


def test_a_pdf_changed_since_ingest_is_not_served(corpus: Path) -> None:
    path = corpus / "literature" / "bericht.pdf"
    record = _record(corpus, "literature/bericht.pdf", path.read_bytes())
    files = CorpusFiles([corpus])
    assert files.pdf_path([record], record.doc_sha) is not None
    write_pdf(path, ["eine neue Fassung"])
    assert files.pdf_path([record], record.doc_sha) is None


def test_pdf_href_opens_the_page_and_is_only_given_for_pdfs() -> None:
    assert pdf_href(make_passage("x", page=4)) == f"quellen/{'a' * 64}.pdf#page=4"
    assert pdf_href(make_passage("x", source="faktenblatt.txt", page=None)) is None
