"""The literature manifest: its checks, the shipped one, and citation metadata through ingestion."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from ingest.corpus import CorpusError, load_literature, load_metadata
from ingest.run import EXIT_OK, EXIT_STORE_FAILED
from quellenchat.settings import Settings
from quellenchat.storage import CHUNKS, get_collection, open_client, read_sources
from quellenchat.types import letters_key
from tests.fakes import ingest_fake
from tests.helpers import FACT_SHEET, PROJECT_ROOT, ingest_corpus, run_retrieval, write_pdf

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


# A column of bare URLs (no indent) lists the links of the text before it; inline ones are indented.
_URL_LINE = re.compile(r"^https?://\S+$", re.MULTILINE)
# The sheet cites these only in running text ("(Eurostat 2021: 9% …)"); their URLs stand in the
# column after it, in the order of the citations. Read off the sheet once, here.
IN_TEXT_CITATIONS = {
    "https://ec.europa.eu/eurostat/cache/metadata/en/isoc_e_esms.htm": "Eurostat 2021",
    "https://gemeinsam-digital.de/app/uploads/2020/07/ki-umfrage_bvwm_gd.pdf": (
        "BVMW/Gemeinsam digital 2020"
    ),
    "https://www.bvdw.org/fileadmin/bvdw/upload/publikationen/KI/KI-Monitor_2021.pdf": (
        "BVDW/IW 2021 - KI-Monitor 2021"
    ),
}


def _compact(text: str) -> str:
    """Text without whitespace: a URL broken across lines becomes whole again."""
    return re.sub(r"\s+", "", text)


def _sheet_bullets(sheet: str) -> list[str]:
    """The sheet's bullet items, without the URL columns."""
    return _URL_LINE.sub("", sheet).split("•")


def citing_texts(sheet: str) -> dict[str, str]:
    """For each URL, the sheet's text that cites it: its bullet, or its literature list entry."""
    bullets = _sheet_bullets(sheet)
    urls = _URL_LINE.findall(sheet)
    citing: dict[str, str] = {}
    for url in dict.fromkeys(urls):
        holding = [b for b in bullets if url in _compact(b)]
        if holding:
            citing[url] = holding[0]
    # "Weiterführende Literatur" names titles without links; its links are, in the same order,
    # the last column's URLs that no bullet holds.
    start = next(i for i, b in enumerate(bullets) if "Weiterführende Literatur" in b) + 1
    listed = []
    for bullet in bullets[start:]:
        if "http" in bullet:
            break
        listed.append(bullet)
    last_column = re.findall(r"(?:^https?://\S+\n?)+\Z", sheet.rstrip() + "\n", re.MULTILINE)
    unlinked = [u for u in last_column[0].split() if u not in citing]
    citing.update(zip(unlinked, listed, strict=True))
    for url, phrase in IN_TEXT_CITATIONS.items():
        assert letters_key(phrase) in letters_key(sheet), phrase
        citing.setdefault(url, phrase)
    return citing


def _states(text: str, value: str) -> bool:
    return letters_key(value) in letters_key(text)


def test_the_sheets_literature_list_pairs_with_its_url_column() -> None:
    sheet = FACT_SHEET.read_text(encoding="utf-8")
    citing = citing_texts(sheet)
    kfw = next(u for u in citing if "Fokus-Nr.-318" in u)
    saarland = next(u for u in citing if "uni-saarland" in u)
    assert _states(citing[kfw], "KfW Research Nr. 318 (2021)")
    assert _states(citing[saarland], "Universität des Saarlands (2019)")
    assert "Video-Reihe" in citing["https://www.plattform-lernende-systeme.de/video-tutorials.html"]


def test_shipped_manifest_covers_the_fact_sheet_links_and_invents_nothing() -> None:
    literature = load_literature(SHIPPED)
    assert literature.folder == "literature"
    sheet = FACT_SHEET.read_text(encoding="utf-8")
    urls = {d.url for d in literature.documents}
    # Every link of the sheet has an entry (a link broken across lines is a prefix of one) …
    for link in re.findall(r"https?://\S+", sheet):
        assert any(u.startswith(link) for u in urls), link
    # … and each entry's title, publisher, year and first citation stand in the text that cites
    # that entry's URL (or in the URL itself), so no value can sit in another document's entry.
    citing = citing_texts(sheet)
    for entry in literature.documents:
        assert entry.url in sheet, entry.url
        text = citing.get(entry.url)
        if text is None:  # cited only by a link: nothing may be claimed about it
            assert (entry.title, entry.publisher, entry.year, entry.cited_as) == (
                None,
                None,
                None,
                (),
            ), entry.label
            continue
        own = text + " " + unquote(entry.url)
        for value in (entry.title, entry.publisher, *entry.cited_as[:1]):
            if value is not None:
                assert _states(own, value), (entry.label, value)
        if entry.year is not None:
            assert str(entry.year) in own, entry.label
        for value in entry.cited_as:
            assert _states(sheet, value), value
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


def test_shipped_metadata_claims_nothing_the_fact_sheet_does_not_state() -> None:
    [info] = load_metadata(PROJECT_ROOT / "corpus").values()
    sheet = FACT_SHEET.read_text(encoding="utf-8")
    assert _states(sheet, info.title)
    # The sheet names no publisher, year or address of its own.
    assert (info.publisher, info.year, info.url) == (None, None, None)


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
    first = ingest_corpus(settings)
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
    assert ingest_corpus(settings, dry_run=True).plan == (
        "0 neu, 0 geändert, 0 entfernt, 2 unverändert (davon 1 mit neuen Angaben)"
    )
    second = ingest_corpus(settings)
    assert second.exit_code == EXIT_OK, second.to_json()
    assert second.metadata_updated == ["literature/booklet.pdf"]
    assert second.chunks_embedded == 0  # metadata lives in the record: nothing re-embedded
    assert stored_chunk_ids(settings) == chunk_ids
    [after] = searcher.search("Förderprogramme für den Mittelstand", k=1)
    assert after.id == before.id
    assert after.title == "KI im Mittelstand (Booklet)"
    assert after.url == "https://example.net/booklet.pdf#page=2"

    third = ingest_corpus(settings)
    assert third.metadata_updated == []
    assert third.plan == "0 neu, 0 geändert, 0 entfernt, 2 unverändert"


def test_cli_shows_the_manifests_publisher_and_year(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    write_pdf(corpus_dir / "literature" / "booklet.pdf", BOOKLET)
    (corpus_dir / "literature.toml").write_text(
        '[[document]]\nkind = "pdf"\nfile = "booklet.pdf"\ntitle = "KI im Mittelstand"\n'
        'publisher = "Lernende Systeme"\nyear = 2021\nurl = "https://example.org/booklet.pdf"\n',
        encoding="utf-8",
    )
    settings = make_settings()
    assert ingest_corpus(settings).exit_code == EXIT_OK
    question = "Welche Förderprogramme gibt es für den Mittelstand?"
    store = ["--store", str(settings.store)]
    found = retrieval_cli("search", question, "--k", "1", *store, "--json")
    [passage] = json.loads(found.stdout)["passages"]
    assert (passage["title"], passage["publisher"], passage["year"]) == (
        "KI im Mittelstand",
        "Lernende Systeme",
        2021,
    )
    listing = retrieval_cli("search", question, "--k", "1", *store).stdout
    assert "[1] KI im Mittelstand (Lernende Systeme 2021) – S. 2, literature/booklet.pdf" in listing
    answer = retrieval_cli("ask", question, "--backend", "extractive", *store).stdout
    assert "[1] KI im Mittelstand (Lernende Systeme 2021) – S. 2" in answer


def retrieval_cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = run_retrieval(*args)
    assert done.returncode == 0, done.stderr
    return done


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
    assert ingest_fake(settings).exit_code == EXIT_OK
    [record] = read_sources(open_client(settings))
    assert record.info.title == "Von Hand beschrieben"

    (corpus_dir / "literature.toml").write_text("[[document]]\nkind = 'pdf'\n", encoding="utf-8")
    broken = ingest_fake(settings)
    assert broken.exit_code == EXIT_STORE_FAILED
    assert "literature.toml" in (broken.error or "")
    assert [r.info.title for r in read_sources(open_client(settings))] == ["Von Hand beschrieben"]
