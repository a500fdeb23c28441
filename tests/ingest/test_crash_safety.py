"""SIGKILL a real ingest subprocess at many moments; the store must stay usable and consistent."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from quellenchat.settings import Settings
from quellenchat.storage import CHUNKS, PAGES, SOURCES, get_collection, open_client, read_sources
from tests.helpers import MODELS_DIR, PROJECT_ROOT, ingest_corpus, write_pdf

TOPICS = [
    "Absatzprognosen in der Bäckerei",
    "Bilderkennung in der Qualitätsprüfung",
    "Chatbots im Kundenservice",
    "vorausschauende Wartung von Maschinen",
    "Dokumentenanalyse in der Buchhaltung",
    "Lagerhaltung mit autonomen Robotern",
]


def document(seed: int, pages: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for page in range(pages):
        sentences = [
            f"Abschnitt {page + 1} behandelt {rng.choice(TOPICS)} "
            f"im Betrieb Nummer {rng.randint(1, 999)}. "
            f"Die Fachkräfte berichten von {rng.randint(2, 40)} Prozent weniger Aufwand und "
            f"{rng.choice(['hohen', 'geringen', 'mittleren'])} Kosten für die Einführung."
            for _ in range(7)
        ]
        texts.append(" ".join(sentences))
    return texts


_order: dict[str, int] = {}  # doc_sha -> 0 for the old version, 1 for the new one


def clear_chroma_cache() -> None:
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def check_store(settings: Settings, versions: dict[str, set[str]]) -> tuple[int, bool]:
    """Each document is wholly one of its known versions; queries still work.

    Returns how many documents are at their newest version and whether a pending marker is left.
    """
    clear_chroma_cache()
    client = open_client(settings)
    records = read_sources(client)
    chunks = get_collection(client, CHUNKS)
    pages = get_collection(client, PAGES)
    for record in records:
        assert record.doc_sha in versions[record.source], record.source
        assert chunks is not None
        assert pages is not None
        ids = chunks.get(where={"doc_sha": record.doc_sha}, include=[])["ids"]
        assert len(ids) == len(set(ids)) == record.chunks, record.source  # no half document
        assert len(pages.get(where={"doc_sha": record.doc_sha}, include=[])["ids"]) == record.pages
    if records and chunks is not None:
        live = [r.doc_sha for r in records]
        found = chunks.query(
            query_embeddings=[np.ones(384, dtype=np.float32).tolist()],
            n_results=5,
            where={"doc_sha": {"$in": live}},
        )
        assert found["ids"][0], "the store no longer answers queries"
    sources = get_collection(client, SOURCES)
    pending = sources is not None and bool(sources.get(where={"pending": True}, include=[])["ids"])
    newest = sum(1 for r in records if r.doc_sha == max(versions[r.source], key=_order.get))
    clear_chroma_cache()
    return newest, pending


def start_ingest(corpus: Path, store: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "--corpus", str(corpus), "--store", str(store)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR),
            "QUELLENCHAT_EMBED_BATCH_SIZE": "4",
        },
    )


def kill_after(process: subprocess.Popen[str], marker: str | None, delay: float) -> None:
    """SIGKILL after the n-th stderr line containing `marker` (or at once) plus `delay`."""
    seen = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if marker is None or marker in line:
                seen.set()
        seen.set()  # the run ended before the marker: kill what is left (nothing)

    threading.Thread(target=watch, daemon=True).start()
    if marker is not None:
        seen.wait(timeout=120)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


KILL_POINTS = [
    pytest.param(None, 0.8, id="during-start-up"),
    pytest.param("Lade Einbettungsmodell", 0.0, id="before-first-write"),
    pytest.param("Lade Einbettungsmodell", 2.5, id="mid-embedding"),
    pytest.param("Chunks gespeichert", 0.0, id="mid-large-document"),
    pytest.param("eingelesen:", 0.0, id="right-after-a-commit"),
    pytest.param("eingelesen:", 0.7, id="mid-second-document"),
    pytest.param("umbenannt", 0.0, id="during-rename-and-removal"),
]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_old_or_new_versions(
    make_settings: Callable[..., Settings], corpus_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings()
    names = ["a.pdf", "b.pdf", "c.pdf", "weg.pdf", "alt-name.pdf"]
    for seed, name in enumerate(names):
        write_pdf(corpus_dir / name, document(seed, 6))
    assert ingest_corpus(settings).exit_code == 0
    versions = {r.source: {r.doc_sha} for r in read_sources(open_client(settings))}
    _order.update({sha: 0 for shas in versions.values() for sha in shas})
    clear_chroma_cache()
    snapshot = tmp_path / "store-version-a"
    shutil.copytree(settings.store, snapshot)

    # Changed: a.pdf grows large, so its chunks are embedded and written in several batches
    # while its pending marker stands (a kill there must not leave half a document visible).
    write_pdf(corpus_dir / "a.pdf", document(100, 60))
    write_pdf(corpus_dir / "b.pdf", document(101, 8))
    (corpus_dir / "weg.pdf").unlink()  # removed
    write_pdf(corpus_dir / "neu.pdf", document(200, 5))  # new
    (corpus_dir / "alt-name.pdf").rename(corpus_dir / "neuer-name.pdf")  # renamed
    from ingest.corpus import sha256_file

    for path in corpus_dir.glob("*.pdf"):
        versions.setdefault(path.name, set()).add(sha256_file(path))
        _order.setdefault(sha256_file(path), 1)
    versions["neuer-name.pdf"] = versions["alt-name.pdf"]

    observed = []
    for point in KILL_POINTS:  # each kill interrupts the same update of the same old store
        marker, delay = point.values
        shutil.rmtree(settings.store)
        shutil.copytree(snapshot, settings.store)
        kill_after(start_ingest(corpus_dir, settings.store), marker, delay)  # type: ignore[arg-type]
        observed.append(check_store(settings, versions))
    # The kills did land inside the write window: the one after a partial batch of the large
    # document left its pending marker, and the store was seen at different stages.
    mid_document = [p.id for p in KILL_POINTS].index("mid-large-document")
    assert observed[mid_document][1], observed
    assert len({newest for newest, _ in observed}) >= 2, observed
    # A second kill on top of the last one, then a run that must finish the work.
    kill_after(start_ingest(corpus_dir, settings.store), "Lade Einbettungsmodell", 1.5)
    check_store(settings, versions)

    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "--corpus",
            str(corpus_dir),
            "--store",
            str(settings.store),
            "--json",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QUELLENCHAT_MODELS_DIR": str(MODELS_DIR)},
    )
    assert final.returncode == 0, final.stderr
    check_store(settings, versions)
    records = {r.source: r.doc_sha for r in read_sources(open_client(settings))}
    current = {p.name: sha256_file(p) for p in corpus_dir.glob("*.pdf")}
    assert records == current  # the next run completed the work

    # Same chunks as a clean ingest of the final corpus: nothing left over, nothing missing.
    fresh = make_settings(store=tmp_path / "fresh")
    ingest_corpus(fresh)
    clear_chroma_cache()

    def chunk_ids(s: Settings) -> set[str]:
        collection = get_collection(open_client(s), CHUNKS)
        assert collection is not None
        return set(collection.get(include=[])["ids"])

    assert chunk_ids(settings) == chunk_ids(fresh)
