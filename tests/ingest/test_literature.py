"""The literature manifest: its checks, the shipped one, and citation metadata through ingestion."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from ingest.corpus import CorpusError, load_literature
from ingest.run import EXIT_OK, EXIT_STORE_FAILED, run_ingest
from quellenchat.settings import Settings
from quellenchat.storage import CHUNKS, get_collection, open_client, read_sources
from quellenchat.types import letters_key
from tests.helpers import FACT_SHEET, PROJECT_ROOT, write_pdf

SHIPPED = PROJECT_ROOT / "corpus" / "literature.toml"
PDF = 'kind = "pdf"\nurl = "https://example.org/a.pdf"\n'


def manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "literature.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[[document]]\n" + PDF, "Feld „file“ fehlt", id="pdf-without-file"),
        pytest.param(
            '[[document]]\nkind = "web"\nurl = "https://example.org/"\nfile = "a.pdf"\n',
            "„file“ gibt es nur bei kind = „pdf“",
            id="web-with-file",
        ),
        pytest.param(
            '[[document]]\nfile = "sub/a.pdf"\n' + PDF, "einfacher Dateiname", id="file-in-folder"
        ),
        pytest.param('[[document]]\nfile = "a.txt"\n' + PDF, "auf .pdf", id="not-a-pdf-name"),
        pytest.param(
            '[[document]]\nfile = "README.pdf"\n' + PDF, "einfacher Dateiname", id="control-name"
        ),
        pytest.param(
            '[[document]]\nkind = "buch"\nurl = "https://example.org/"\n',
            "„kind“ muss „pdf“ oder „web“",
            id="kind",
        ),
        pytest.param(
            '[[document]]\nkind = "web"\nurl = "ftp://example.org/a"\n', "http(s)", id="url-scheme"
        ),
        pytest.param(
            '[[document]]\nfile = "a.pdf"\nyear = "2021"\n' + PDF, "Jahreszahl", id="year"
        ),
        pytest.param(
            '[[document]]\nfile = "a.pdf"\ntitel = "Studie"\n' + PDF,
            "unbekanntes Feld „titel“",
            id="typo",
        ),
        pytest.param(
            '[[document]]\nfile = "a.pdf"\ncited_as = "KfW 2021"\n' + PDF, "Liste", id="cited-as"
        ),
        pytest.param(
            '[[document]]\nfile = "a.pdf"\n' + PDF + '[[document]]\nfile = "a.pdf"\n'
            'kind = "pdf"\nurl = "https://example.org/b.pdf"\n',
            "„file“ = „a.pdf“ steht in zwei Einträgen",
            id="duplicate-file",
        ),
        pytest.param(
            '[[document]]\nfile = "a.pdf"\n' + PDF + '[[document]]\nfile = "b.pdf"\n' + PDF,
            "„url“ = „https://example.org/a.pdf“ steht in zwei Einträgen",
            id="duplicate-url",
        ),
        pytest.param('folder = "../außerhalb"\n', "relativ zur Manifest-Datei", id="folder-up"),
        pytest.param("[quelle]\ntitle = 'x'\n", "unbekannte Angabe „quelle“", id="top-level"),
        pytest.param("folder = \n", "keine gültige TOML-Datei", id="toml"),
    ],
)
def test_manifest_errors_name_entry_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CorpusError, match=re.escape(message)) as caught:
        load_literature(manifest(tmp_path, text))
    assert str(tmp_path / "literature.toml") in str(caught.value)


def test_manifest_defaults_and_infos(tmp_path: Path) -> None:
    literature = load_literature(
        manifest(
            tmp_path,
            '[[document]]\nfile = "a.pdf"\ntitle = "Studie"\npublisher = "WIK Consult"\n'
            'year = 2021\ncited_as = ["WIK Consult (2021)"]\n' + PDF + "[[document]]\n"
            'kind = "web"\nurl = "https://example.org/seite"\n'
            '[[document]]\nkind = "pdf"\nfile = "ohne-titel.pdf"\nurl = "https://example.org/c.pdf"\n',
        )
    )
    assert literature.dest == tmp_path / "literature"
    assert [d.file for d in literature.pdfs] == ["a.pdf", "ohne-titel.pdf"]
    infos = literature.infos()
    assert set(infos) == {"literature/a.pdf", "literature/ohne-titel.pdf"}
    study = infos["literature/a.pdf"]
    assert (study.title, study.publisher, study.year, study.kind, study.url) == (
        "Studie",
        "WIK Consult",
        2021,
        "Literatur",
        "https://example.org/a.pdf",
    )
    assert infos["literature/ohne-titel.pdf"].title == "ohne-titel.pdf"
    assert literature.pdfs[0].cited_as == ("WIK Consult (2021)",)


def _fact_sheet_facts() -> str:
    """The fact sheet with its URLs decoded, as a letters-only key (line-break hyphens vanish)."""
    text = FACT_SHEET.read_text(encoding="utf-8")
    urls = re.findall(r"https?://\S+", text)
    return letters_key(text + " ".join(unquote(u) for u in urls))


def test_shipped_manifest_covers_the_fact_sheet_links_and_invents_nothing() -> None:
    literature = load_literature(SHIPPED)
    assert literature.folder == "literature"
    sheet = FACT_SHEET.read_text(encoding="utf-8")
    urls = {d.url for d in literature.documents}
    # Every link of the sheet has an entry (a link broken across lines is a prefix of one) …
    for link in re.findall(r"https?://\S+", sheet):
        assert any(u.startswith(link) for u in urls), link
    # … and every entry's URL, title, publisher, year and citation stand in the sheet or its URLs.
    facts = _fact_sheet_facts()
    for entry in literature.documents:
        assert entry.url in sheet, entry.url
        for value in (entry.title, entry.publisher, *entry.cited_as):
            if value is not None:
                assert letters_key(value) in facts, value
        if entry.year is not None:
            assert str(entry.year) in sheet, entry.label
    named = {letters_key(d.publisher or "") for d in literature.pdfs}
    assert named >= {
        letters_key(p)
        for p in [
            "KfW Research",
            "BVMW/Gemeinsam digital",
            "BVDW/IW",
            "BMWK",
            "Lernende Systeme",
            "WIK Consult",
            "Universität des Saarlandes",
        ]
    }
    assert len(literature.pdfs) == 8
    assert all(d.url.split("?")[0].endswith(".pdf") for d in literature.pdfs)
    assert all(
        not d.url.split("?")[0].endswith(".pdf") for d in literature.documents if d.kind == "web"
    )


def stored_chunk_ids(settings: Settings) -> set[str]:
    chunks = get_collection(open_client(settings), CHUNKS)
    assert chunks is not None
    return set(chunks.get(include=[])["ids"])


BOOKLET = [
    "Das Booklet zeigt, wie kleine Unternehmen künstliche Intelligenz einführen können.",
    "Auf der zweiten Seite stehen Förderprogramme für den Mittelstand und Ansprechpartner.",
]


def test_ingest_takes_citation_metadata_from_the_manifest(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    from retrieval.search import Searcher

    write_pdf(corpus_dir / "literature" / "booklet.pdf", BOOKLET)
    write_pdf(corpus_dir / "literature" / "eigene-notiz.pdf", ["Eine eigene Notiz zu Robotern."])
    entry = (
        '[[document]]\nkind = "pdf"\nfile = "booklet.pdf"\ntitle = "KI im Mittelstand"\n'
        'publisher = "Lernende Systeme"\nyear = 2021\n'
        'url = "https://example.org/booklet.pdf"\n'
    )
    (corpus_dir / "literature.toml").write_text(entry, encoding="utf-8")
    settings = make_settings()
    first = run_ingest(settings)
    assert first.exit_code == EXIT_OK, first.to_json()
    assert first.new == ["literature/booklet.pdf", "literature/eigene-notiz.pdf"]
    records = {r.source: r for r in read_sources(open_client(settings))}
    assert records["literature/booklet.pdf"].info.title == "KI im Mittelstand"
    assert records["literature/eigene-notiz.pdf"].info.title == "eigene-notiz.pdf"
    searcher = Searcher(settings)  # long-lived, like the app: must notice the new metadata
    [before] = searcher.search("Förderprogramme für den Mittelstand", k=1)
    assert (before.title, before.publisher, before.year) == (
        "KI im Mittelstand",
        "Lernende Systeme",
        2021,
    )
    assert before.url == "https://example.org/booklet.pdf#page=2"
    chunk_ids = stored_chunk_ids(settings)

    (corpus_dir / "literature.toml").write_text(
        entry.replace("KI im Mittelstand", "KI im Mittelstand (Booklet)").replace(
            "example.org", "example.net"
        ),
        encoding="utf-8",
    )
    assert run_ingest(settings, dry_run=True).plan == (
        "0 neu, 0 geändert, 0 entfernt, 2 unverändert (davon 1 mit neuen Angaben)"
    )
    second = run_ingest(settings)
    assert second.exit_code == EXIT_OK, second.to_json()
    assert second.metadata_updated == ["literature/booklet.pdf"]
    assert second.chunks_embedded == 0  # metadata lives in the record: nothing re-embedded
    assert stored_chunk_ids(settings) == chunk_ids
    [after] = searcher.search("Förderprogramme für den Mittelstand", k=1)
    assert after.id == before.id
    assert after.title == "KI im Mittelstand (Booklet)"
    assert after.url == "https://example.net/booklet.pdf#page=2"

    third = run_ingest(settings)
    assert third.metadata_updated == []
    assert third.plan == "0 neu, 0 geändert, 0 entfernt, 2 unverändert"


def test_metadata_toml_wins_over_the_manifest_and_a_broken_manifest_stops_the_run(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    write_pdf(corpus_dir / "literature" / "a.pdf", BOOKLET)
    (corpus_dir / "literature.toml").write_text(
        '[[document]]\nkind = "pdf"\nfile = "a.pdf"\ntitle = "Aus der Literaturliste"\n'
        'url = "https://example.org/a.pdf"\n',
        encoding="utf-8",
    )
    (corpus_dir / "metadata.toml").write_text(
        '["literature/a.pdf"]\ntitle = "Von Hand beschrieben"\n', encoding="utf-8"
    )
    settings = make_settings()
    assert run_ingest(settings).exit_code == EXIT_OK
    [record] = read_sources(open_client(settings))
    assert record.info.title == "Von Hand beschrieben"

    (corpus_dir / "literature.toml").write_text("[[document]]\nkind = 'pdf'\n", encoding="utf-8")
    broken = run_ingest(settings)
    assert broken.exit_code == EXIT_STORE_FAILED
    assert "literature.toml" in (broken.error or "")
    assert [r.info.title for r in read_sources(open_client(settings))] == ["Von Hand beschrieben"]
