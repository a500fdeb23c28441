"""A real corpus and store for the app tests, built once per session and copied per app."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from gradio_client import Client

from chat_app import ChatApp, Running, serve
from quellenchat.ports import free_port
from quellenchat.settings import Settings
from tests.helpers import FACT_SHEET, MODELS_DIR, ingest_corpus, write_pdf

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_LINK = "[Klick hier](javascript:alert(2))"
# A PDF whose text tries markup: the app must show it as text. Page 2 holds the question's answer.
HOSTILE_PDF_PAGES = [
    "Sicherheit von KI-Anwendungen im Mittelstand. Dieses Dokument beschreibt Risiken.",
    "Beim Thema Prompt-Injektion zeigt der Testfall "
    f"{HOSTILE} und {HOSTILE_LINK}, wie fremder Dokumenttext in einer Anwendung aussehen kann. "
    "Solcher Text muss immer als Text erscheinen.",
]
HOSTILE_QUESTION = "Was zeigt der Testfall zur Prompt-Injektion?"
METADATA = """
["ki-faktenblatt.txt"]
title = "Digitalisierungstechnologien – Künstliche Intelligenz (KI)"
kind = "Faktenblatt"

["literature/ki-sicherheit.pdf"]
title = "KI-Sicherheit im Mittelstand"
kind = "Studie"
year = 2021
url = "https://example.org/ki-sicherheit.pdf"
"""


@dataclass(frozen=True)
class BuiltStore:
    """A corpus folder and the store ingested from it."""

    corpus: Path
    store: Path


_BUILT: dict[Path, BuiltStore] = {}


def built_store(factory: pytest.TempPathFactory) -> BuiltStore:
    """The fact sheet plus a hostile PDF, ingested once per test session."""
    base = factory.getbasetemp()
    if base not in _BUILT:
        root = factory.mktemp("app-store")
        corpus = root / "corpus"
        corpus.mkdir()
        shutil.copy(FACT_SHEET, corpus / FACT_SHEET.name)
        (corpus / "metadata.toml").write_text(METADATA, encoding="utf-8")
        write_pdf(corpus / "literature" / "ki-sicherheit.pdf", HOSTILE_PDF_PAGES)
        settings = Settings(corpus=[corpus], store=root / "store", models_dir=MODELS_DIR)
        report = ingest_corpus(settings)
        assert report.exit_code == 0, report.to_json()
        _BUILT[base] = BuiltStore(corpus, root / "store")
    return _BUILT[base]


def app_settings(factory: pytest.TempPathFactory, name: str, **overrides: object) -> Settings:
    """Settings on a private copy of the built corpus and store (each app is its store's writer)."""
    built = built_store(factory)
    root = factory.mktemp(name)
    shutil.copytree(built.corpus, root / "corpus")
    shutil.copytree(built.store, root / "store", ignore=shutil.ignore_patterns("ingest.lock"))
    values: dict[str, object] = {
        "corpus": [root / "corpus"],
        "store": root / "store",
        "models_dir": MODELS_DIR,
        "llm_backend": "extractive",
        "feedback_file": root / "feedback.jsonl",
    }
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    # The copy's manifest still names the original corpus folder: a metadata-only update.
    report = ingest_corpus(settings)
    assert report.exit_code == 0, report.to_json()
    assert report.chunks_embedded == 0, report.to_json()
    return settings


def start_app(settings: Settings) -> Running:
    """The chat app on a free loopback port, serving until `stop()`."""
    return serve(ChatApp(settings), "127.0.0.1", free_port())


def app_client(running: Running, downloads: Path) -> Client:
    """A gradio_client for a running app that saves downloaded files below `downloads`."""
    return Client(
        running.url, verbose=False, download_files=str(downloads), analytics_enabled=False
    )
