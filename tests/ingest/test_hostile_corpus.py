"""Hostile corpus folders: undecodable file names and links out of the corpus (issue #17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ingest.corpus import discover
from ingest.run import EXIT_SKIPPED
from quellenchat.settings import Settings
from quellenchat.storage import open_client, read_sources
from tests.fakes import ingest_fake
from tests.helpers import MODELS_DIR, PROJECT_ROOT, write_pdf

BAKERY = ["Die Bäckerei Müller nutzt eine Absatzprognose für Brötchen und senkt so die Retouren."]
FACTORY = ["Ein Maschinenbauer setzt Bilderkennung in der Qualitätsprüfung von Zahnrädern ein."]
ROBOTS = ["Kollaborative Roboter entlasten Beschäftigte in der Montage kleiner Betriebe."]
LATIN1_NAME = b"F\xf6rderung.pdf"


def test_a_file_name_that_is_no_utf8_is_skipped_by_name_and_the_rest_goes_on(
    tmp_path: Path, corpus_dir: Path
) -> None:
    store = tmp_path / "store"
    write_pdf(corpus_dir / "literature" / "a-bestand.pdf", BAKERY)
    cli = _run_cli(corpus_dir, store)
    assert cli.returncode == 0, cli.stderr

    bad = write_pdf(tmp_path / "foerderung.pdf", FACTORY)
    os.rename(bad, os.fsencode(corpus_dir / "literature") + b"/" + LATIN1_NAME)
    write_pdf(corpus_dir / "literature" / "z-danach.pdf", ROBOTS)  # sorted after the bad one
    cli = _run_cli(corpus_dir, store)
    assert cli.returncode == EXIT_SKIPPED, cli.stderr
    summary = json.loads(cli.stdout)
    [skipped] = summary["skipped"]
    assert skipped["source"] == "literature/F\\xf6rderung.pdf"
    assert "kein gültiges UTF-8" in skipped["reason"]
    assert "F\\xf6rderung.pdf" in cli.stderr
    assert summary["new"] == ["literature/z-danach.pdf"]
    assert summary["documents_total"] == 2
    assert summary["error"] is None


def _run_cli(corpus: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", "--corpus", str(corpus), "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
        env={**os.environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR)},
        check=False,
    )


def test_links_out_of_the_corpus_are_skipped_unless_allowed(
    make_settings: Callable[..., Settings], tmp_path: Path, corpus_dir: Path
) -> None:
    outside = tmp_path / "privat"
    secret = write_pdf(outside / "geheim.pdf", FACTORY)
    write_pdf(outside / "ordner" / "auch-geheim.pdf", ROBOTS)
    write_pdf(corpus_dir / "echt.pdf", BAKERY)
    (corpus_dir / "link-datei.pdf").symlink_to(secret)
    (corpus_dir / "link-ordner").symlink_to(outside / "ordner")
    (corpus_dir / "innen.pdf").symlink_to(corpus_dir / "echt.pdf")  # stays inside: as before
    (corpus_dir / "kaputt.pdf").symlink_to(tmp_path / "gibt-es-nicht.pdf")

    settings = make_settings()
    report = ingest_fake(settings)
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert "aus dem Korpus-Ordner hinaus" in reasons["link-datei.pdf"]
    assert "QUELLENCHAT_FOLLOW_OUTSIDE_LINKS" in reasons["link-datei.pdf"]
    assert "aus dem Korpus-Ordner hinaus" in reasons["link-ordner"]
    assert "ins Leere" in reasons["kaputt.pdf"]
    assert "inhaltsgleich mit echt.pdf" in reasons["innen.pdf"]
    assert report.new == ["echt.pdf"]

    allowed = make_settings(follow_outside_links=True)
    found, _ = discover(allowed.corpus, follow_outside_links=True)
    assert [f.source for f in found] == [
        "echt.pdf",
        "link-datei.pdf",
        "link-ordner/auch-geheim.pdf",
    ]
    report = ingest_fake(allowed)
    assert sorted(report.new) == ["link-datei.pdf", "link-ordner/auch-geheim.pdf"]
    stored = {r.source for r in read_sources(open_client(allowed))}
    assert stored == {"echt.pdf", "link-datei.pdf", "link-ordner/auch-geheim.pdf"}


def test_a_link_loop_out_of_the_corpus_ends(tmp_path: Path, corpus_dir: Path) -> None:
    outside = tmp_path / "schleife"
    write_pdf(outside / "doc.pdf", BAKERY)
    (outside / "zurueck").symlink_to(outside)
    (corpus_dir / "raus").symlink_to(outside)
    found, _ = discover([corpus_dir], follow_outside_links=True)
    assert [f.source for f in found] == ["raus/doc.pdf"]
