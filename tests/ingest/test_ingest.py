"""End to end: real files, the real cleaning, the bundled embedder and a real Chroma in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.run import EXIT_OK, EXIT_SKIPPED
from quellenchat.settings import Settings
from quellenchat.storage import CHUNKS, PAGES, get_collection, open_client, read_sources
from quellenchat.types import Chunk
from tests.fakes import ingest_fake
from tests.helpers import MODELS_DIR, PROJECT_ROOT, write_pdf

BAKERY = [
    "Die Bäckerei Müller nutzt seit 2021 eine Absatzprognose für Brötchen. "
    "Das System schätzt den Bedarf für jeden Wochentag und senkt so die Retouren deutlich.",
    "Für die Einführung brauchte der Betrieb saubere Verkaufsdaten aus den Kassen. "
    "Die Mitarbeiterinnen wurden in zwei Workshops geschult.",
]
FACTORY = [
    "Ein Maschinenbauer aus Schwaben setzt Bilderkennung in der Qualitätsprüfung ein. "
    "Fehlerhafte Zahnräder werden automatisch aussortiert.",
    "Die vorausschauende Wartung meldet Verschleiß an Spindeln, bevor die Maschine ausfällt.",
]


def store_chunks(settings: Settings) -> list[tuple[str, Chunk]]:
    collection = get_collection(open_client(settings), CHUNKS)
    assert collection is not None
    result = collection.get(include=["documents", "metadatas"])
    return [
        (cid, Chunk.from_metadata(doc, meta))
        for cid, doc, meta in zip(
            result["ids"], result["documents"], result["metadatas"], strict=True
        )
    ]


def page_texts(settings: Settings) -> dict[str, str]:
    collection = get_collection(open_client(settings), PAGES)
    assert collection is not None
    result = collection.get(include=["documents"])
    return dict(zip(result["ids"], result["documents"], strict=True))


def assert_consistent(settings: Settings) -> None:
    """Every manifest record has exactly its chunks, each an exact substring of a stored page."""
    records = read_sources(open_client(settings))
    chunks = store_chunks(settings)
    pages = page_texts(settings)
    live = {r.doc_sha for r in records}
    for record in records:
        mine = [c for _, c in chunks if c.doc_sha == record.doc_sha]
        assert len(mine) == record.chunks, record.source
    for cid, chunk in chunks:
        if chunk.doc_sha in live:
            assert cid == chunk.id
            page = pages[f"{chunk.doc_sha}:{chunk.unit}"]
            assert page[chunk.start : chunk.end] == chunk.text


def test_fact_sheet_sections_clean_words_and_no_change_rerun(
    make_settings: Callable[..., Settings], fact_sheet_corpus: Path
) -> None:
    settings = make_settings()
    report = ingest_fake(settings)
    assert report.exit_code == EXIT_OK, report.to_json()
    assert report.new == ["ki-faktenblatt.txt"]
    [record] = read_sources(open_client(settings))
    assert record.info.title == "Digitalisierungstechnologien – Künstliche Intelligenz (KI)"
    assert record.info.kind == "Faktenblatt"
    chunks = [c for _, c in store_chunks(settings)]
    assert len(chunks) == record.chunks == report.chunks_embedded
    text = " ".join(c.text for c in chunks)
    for word in ("Kenntnissen", "Produkten", "Anwendungsfälle", "KI-Technologien"):
        assert word in text
    sections = {c.section for c in chunks}
    for name in (
        "Herausforderungen",
        "Nachhaltigkeitsaspekte",
        "Anwendungsbereiche/-beispiele",
        "Nützliche Links",
        "Weiterführende Literatur",
    ):
        assert any(s and name in s for s in sections), (name, sections)
    assert all(c.page is None for c in chunks)  # plain text: the section stands in for the page
    know_how = next(c for c in chunks if "Mangelndes Know-how" in c.text)
    assert "Herausforderungen" in (know_how.section or "")
    assert_consistent(settings)

    again = ingest_fake(settings)
    assert again.chunks_embedded == 0
    assert again.unchanged == ["ki-faktenblatt.txt"]
    assert again.plan == "0 neu, 0 geändert, 0 entfernt, 1 unverändert"


def test_incremental_change_remove_rename(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    settings = make_settings()
    write_pdf(corpus_dir / "literature" / "baeckerei.pdf", BAKERY)
    write_pdf(corpus_dir / "literature" / "fabrik.pdf", FACTORY)
    (corpus_dir / "notiz.txt").write_text("Eine kurze Notiz über Datenschutz im Betrieb. " * 5)
    first = ingest_fake(settings)
    assert first.exit_code == EXIT_OK, first.to_json()
    assert sorted(first.new) == ["literature/baeckerei.pdf", "literature/fabrik.pdf", "notiz.txt"]
    before = {cid for cid, _ in store_chunks(settings)}

    write_pdf(
        corpus_dir / "literature" / "fabrik.pdf",
        [*FACTORY, "Neue Seite über Robotik in der Montage."],
    )
    (corpus_dir / "notiz.txt").unlink()
    (corpus_dir / "literature" / "baeckerei.pdf").rename(
        corpus_dir / "literature" / "backstube.pdf"
    )
    assert (
        ingest_fake(settings, dry_run=True).plan
        == "0 neu, 1 geändert, 1 umbenannt, 1 entfernt, 0 unverändert"
    )
    assert {cid for cid, _ in store_chunks(settings)} == before  # the dry run changed nothing

    second = ingest_fake(settings)
    assert second.changed == ["literature/fabrik.pdf"]
    assert second.removed == ["notiz.txt"]
    assert second.renamed == [
        {"from": "literature/baeckerei.pdf", "to": "literature/backstube.pdf"}
    ]
    records = {r.source: r for r in read_sources(open_client(settings))}
    assert set(records) == {"literature/backstube.pdf", "literature/fabrik.pdf"}
    assert second.chunks_embedded == records["literature/fabrik.pdf"].chunks  # only the change
    assert records["literature/fabrik.pdf"].pages == 3
    chunks = store_chunks(settings)
    assert not any("Notiz" in c.text for _, c in chunks)
    assert sum(r.chunks for r in records.values()) == len(chunks)  # old versions are gone
    bakery = [c for _, c in chunks if c.doc_sha == records["literature/backstube.pdf"].doc_sha]
    assert bakery
    assert all(c.page in (1, 2) for c in bakery)
    assert_consistent(settings)


def test_bad_input_is_skipped_with_reasons_and_stored_versions_survive(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    settings = make_settings()
    good = write_pdf(corpus_dir / "gut.pdf", BAKERY)
    write_pdf(corpus_dir / "wird-kaputt.pdf", FACTORY)
    assert ingest_fake(settings).exit_code == EXIT_OK

    (corpus_dir / "wird-kaputt.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(2000))
    (corpus_dir / "leer.txt").write_bytes(b"")
    (corpus_dir / "kaputt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    (corpus_dir / "tabelle.xlsx").write_bytes(b"PK\x03\x04 not really")
    shutil.copy(good, corpus_dir / "kopie.pdf")
    (corpus_dir / "alt.txt").write_bytes(
        "Grüße aus Köln: Straße, Maß und Größe. ".encode("cp1252") * 5
    )
    (corpus_dir / "README.md").write_text("Steuerdatei, kein Dokument")

    report = ingest_fake(settings)
    assert report.exit_code == EXIT_SKIPPED
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {
        "wird-kaputt.pdf",
        "leer.txt",
        "kaputt.pdf",
        "tabelle.xlsx",
        "kopie.pdf",
    }
    assert "0 Byte" in reasons["leer.txt"]
    assert ".xlsx" in reasons["tabelle.xlsx"]
    assert "gut.pdf" in reasons["kopie.pdf"]
    assert "bisherige Fassung" in reasons["wird-kaputt.pdf"]
    assert report.new == ["alt.txt"]
    records = {r.source: r for r in read_sources(open_client(settings))}
    assert set(records) == {"gut.pdf", "wird-kaputt.pdf", "alt.txt"}
    assert records["alt.txt"].encoding == "cp1252"
    assert any("Größe" in c.text for _, c in store_chunks(settings))
    assert_consistent(settings)


def test_embedder_change_rebuilds_the_whole_index(
    make_settings: Callable[..., Settings], fact_sheet_corpus: Path
) -> None:
    settings = make_settings()
    first = ingest_fake(settings)
    assert first.rebuild_reason is None
    converted = MODELS_DIR / "multilingual-e5-small"
    other = make_settings(
        embedder=str(converted)
    )  # same weights, another name: a different embedder
    report = ingest_fake(other)
    assert report.rebuild_reason is not None
    assert "Einbettungsmodell" in report.rebuild_reason
    assert report.chunks_embedded == first.chunks_embedded
    collection = get_collection(open_client(other), CHUNKS)
    assert collection is not None
    assert collection.metadata["embedder"] == str(converted)
    assert collection.count() == first.chunks_embedded


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
        env={**os.environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR), **(env or {})},
    )


def test_cli_json_contract_dry_run_and_status(tmp_path: Path, fact_sheet_corpus: Path) -> None:
    store = tmp_path / "cli-store"
    dry = run_cli("--corpus", str(fact_sheet_corpus), "--store", str(store), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["new"] == ["ki-faktenblatt.txt"]
    assert planned["documents_total"] == 0

    done = run_cli("--corpus", str(fact_sheet_corpus), "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # stdout carries only the JSON object
    assert set(summary) >= {
        "plan",
        "new",
        "changed",
        "removed",
        "renamed",
        "unchanged",
        "skipped",
        "chunks_embedded",
        "documents_total",
        "chunks_total",
        "seconds",
        "exit_code",
    }
    assert summary["chunks_embedded"] == summary["chunks_total"] > 10
    assert "Plan: 1 neu" in done.stderr

    status = subprocess.run(
        [sys.executable, "-m", "ingest", "status", "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=True,
    )
    [doc] = json.loads(status.stdout)["documents"]
    assert doc["title"].startswith("Digitalisierungstechnologien")
    assert doc["chunks"] == summary["chunks_total"]


def test_cli_refuses_second_writer_and_missing_corpus(
    tmp_path: Path, fact_sheet_corpus: Path
) -> None:
    import fcntl

    store = tmp_path / "locked"
    store.mkdir()
    with (store / "ingest.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        busy = run_cli("--corpus", str(fact_sheet_corpus), "--store", str(store))
    assert busy.returncode == 2
    assert "anderen Prozess" in busy.stderr
    missing = run_cli("--corpus", str(tmp_path / "gibt-es-nicht"), "--store", str(store))
    assert missing.returncode == 2
    assert "gibt-es-nicht" in missing.stderr


@pytest.mark.parametrize("name", ["literature.toml", "literature.lock", "README.txt", ".DS_Store"])
def test_control_files_are_ignored_silently(
    make_settings: Callable[..., Settings], corpus_dir: Path, name: str
) -> None:
    # Valid as a literature manifest too: an invalid one is an error, like a broken metadata.toml.
    (corpus_dir / name).write_text("[[document]]\nkind = 'web'\nurl = 'https://example.org/'\n")
    (corpus_dir / "doc.txt").write_text(
        "Ein Dokument über künstliche Intelligenz im Handwerk. " * 4
    )
    report = ingest_fake(make_settings(), dry_run=True)
    assert report.new == ["doc.txt"]
    assert report.skipped == []
