"""The app's parts are built once and share one embedder; the layers import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

from quellenchat.settings import Settings
from quellenchat_app.wiring import wire
from tests.helpers import PROJECT_ROOT


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        store=tmp_path / "store", corpus=[tmp_path / "corpus"], llm_backend="extractive"
    )


def test_one_embedder_and_one_store_client_for_every_part(tmp_path: Path) -> None:
    parts = wire(_settings(tmp_path))
    assert parts.searcher.embedder is parts.embedder
    assert parts.ingest.embedder is parts.embedder  # the admin ingest loads no second model
    assert parts.answerer.searcher is parts.searcher
    assert parts.searcher.client is parts.client


def test_a_given_embedder_is_the_one_used(tmp_path: Path) -> None:
    first = wire(_settings(tmp_path))
    second = wire(_settings(tmp_path), embedder=first.embedder)
    assert second.embedder is first.embedder
    assert second.ingest.embedder is first.embedder


def _imported(package: str) -> set[str]:
    names: set[str] = set()
    for path in (PROJECT_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_layers_import_only_downwards() -> None:
    assert not _imported("quellenchat") & {"ingest", "retrieval", "quellenchat_app", "chat_app"}
    assert not _imported("ingest") & {"retrieval", "quellenchat_app", "chat_app"}
    assert not _imported("retrieval") & {"quellenchat_app", "chat_app"}
    assert "chat_app" not in _imported("quellenchat_app")
