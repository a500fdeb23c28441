"""Rebuilds and corpus folders, end to end: real PDFs, the bundled embedder, a real Chroma."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.run import EXIT_OK, EXIT_STORE_FAILED
from quellenchat.settings import Settings
from quellenchat.storage import CHUNKS, get_collection, open_client, read_sources
from tests.fakes import ingest_fake
from tests.helpers import write_pdf
from tests.ingest.test_ingest import run_cli

LONG_PAGE = " ".join(
    f"Satz {n} über die vorausschauende Wartung von Maschinen im Betrieb." for n in range(60)
)


def chunk_ids(settings: Settings) -> set[str]:
    collection = get_collection(open_client(settings), CHUNKS)
    assert collection is not None
    return set(collection.get(include=[])["ids"])


def test_schema_upgrade_rebuilds_the_store_with_a_message(
    make_settings: Callable[..., Settings], corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    write_pdf(corpus_dir / "wartung.pdf", [LONG_PAGE])
    first = ingest_fake(settings)
    assert first.exit_code == EXIT_OK, first.to_json()
    import ingest.index
    import quellenchat.storage

    newer = quellenchat.storage.SCHEMA_VERSION + 1
    monkeypatch.setattr(quellenchat.storage, "SCHEMA_VERSION", newer)
    monkeypatch.setattr(ingest.index, "SCHEMA_VERSION", newer)
    messages: list[str] = []
    report = ingest_fake(settings, log=messages.append)
    assert report.rebuild_reason is not None
    assert "Speicherformat" in report.rebuild_reason
    assert any("komplett neu" in m for m in messages)
    assert report.chunks_embedded == first.chunks_embedded  # everything again, nothing mixed
    collection = get_collection(open_client(settings), CHUNKS)
    assert collection is not None
    assert collection.metadata["schema_version"] == newer
    assert collection.count() == first.chunks_embedded
    assert ingest_fake(settings).rebuild_reason is None  # and then it fits


def test_chunk_setting_change_rebuilds_with_the_new_sizes(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    write_pdf(corpus_dir / "wartung.pdf", [LONG_PAGE])
    wide = make_settings()
    assert ingest_fake(wide).exit_code == EXIT_OK
    before = chunk_ids(wide)

    narrow = make_settings(chunk_words=40, chunk_max_words=60, chunk_overlap_words=10)
    report = ingest_fake(narrow)
    assert report.rebuild_reason is not None
    assert "Chunk-Einstellungen" in report.rebuild_reason
    after = chunk_ids(narrow)
    assert len(after) > len(before)
    assert not after & before  # none of the old chunks is left beside the new ones
    [record] = read_sources(open_client(narrow))
    assert record.chunks == len(after)


def test_cli_rebuild_re_embeds_everything(tmp_path: Path, corpus_dir: Path) -> None:
    write_pdf(corpus_dir / "wartung.pdf", [LONG_PAGE])
    store = tmp_path / "store"
    first = json.loads(run_cli("--corpus", str(corpus_dir), "--store", str(store), "--json").stdout)
    again = run_cli("--corpus", str(corpus_dir), "--store", str(store), "--rebuild", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["rebuilt"] is True
    assert "--rebuild" in summary["rebuild_reason"]
    assert summary["chunks_embedded"] == first["chunks_embedded"] == summary["chunks_total"]
    assert summary["new"] == ["wartung.pdf"]


def test_cli_takes_several_corpus_folders_with_sources_relative_to_each(
    tmp_path: Path,
) -> None:
    shop, office = tmp_path / "werkstatt", tmp_path / "buero"
    write_pdf(shop / "handbuch" / "wartung.pdf", [LONG_PAGE])
    (office).mkdir()
    (office / "notiz.txt").write_text(
        "Im Büro sortiert ein Sprachmodell eingehende Rechnungen und E-Mails. " * 4,
        encoding="utf-8",
    )
    store = tmp_path / "store"
    done = run_cli("--corpus", str(shop), "--corpus", str(office), "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["new"]) == ["handbuch/wartung.pdf", "notiz.txt"]
    records = {
        r.source: r for r in read_sources(open_client(Settings(store=store, chroma_url=None)))
    }
    assert set(records) == {"handbuch/wartung.pdf", "notiz.txt"}
    assert Path(records["handbuch/wartung.pdf"].corpus) == shop
    assert Path(records["notiz.txt"].corpus) == office

    # Given only one of the folders, the other folder's documents leave the index.
    only_shop = run_cli("--corpus", str(shop), "--store", str(store), "--json")
    assert json.loads(only_shop.stdout)["removed"] == ["notiz.txt"]


def test_a_store_that_cannot_be_opened_exits_2_and_says_why(
    tmp_path: Path, corpus_dir: Path
) -> None:
    write_pdf(corpus_dir / "wartung.pdf", [LONG_PAGE])
    not_a_folder = tmp_path / "store"
    not_a_folder.write_text("kein Ordner")
    failed = run_cli("--corpus", str(corpus_dir), "--store", str(not_a_folder), "--json")
    assert failed.returncode == EXIT_STORE_FAILED
    summary = json.loads(failed.stdout)
    assert summary["exit_code"] == EXIT_STORE_FAILED
    assert str(not_a_folder) in summary["error"]
    assert "FEHLER" in failed.stderr
    assert not_a_folder.read_text() == "kein Ordner"  # nothing was overwritten
