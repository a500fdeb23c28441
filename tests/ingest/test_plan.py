from __future__ import annotations

from pathlib import Path

from ingest.corpus import SourceFile
from ingest.plan import make_plan
from quellenchat.storage import SourceRecord
from quellenchat.types import DocumentInfo


def file(source: str, sha: str) -> SourceFile:
    return SourceFile(
        Path("corpus"), Path("corpus") / source, source, 10, sha, DocumentInfo(source)
    )


def record(source: str, sha: str) -> SourceRecord:
    return SourceRecord(
        source, sha, DocumentInfo(source), 10, 1, 1, "2026-01-01T00:00:00+00:00", "corpus"
    )


def test_plan_classifies_every_source() -> None:
    files = [
        file("neu.pdf", "n"),
        file("anders.pdf", "a2"),
        file("gleich.pdf", "g"),
        file("neuer-name.pdf", "r"),
    ]
    records = [
        record("anders.pdf", "a1"),
        record("gleich.pdf", "g"),
        record("alter-name.pdf", "r"),
        record("weg.pdf", "w"),
    ]
    plan = make_plan(files, records)
    assert [f.source for f in plan.new] == ["neu.pdf"]
    assert [(f.source, r.doc_sha) for f, r in plan.changed] == [("anders.pdf", "a1")]
    assert [(f.source, r.source) for f, r in plan.renamed] == [("neuer-name.pdf", "alter-name.pdf")]
    assert [r.source for r in plan.removed] == ["weg.pdf"]
    assert [f.source for f, _ in plan.unchanged] == ["gleich.pdf"]
    assert [f.source for f in plan.to_embed] == ["neu.pdf", "anders.pdf"]
    assert plan.summary() == "1 neu, 1 geändert, 1 umbenannt, 1 entfernt, 1 unverändert"


def test_no_change_plan_has_no_work() -> None:
    plan = make_plan([file("a.pdf", "x")], [record("a.pdf", "x")])
    assert not plan.has_work
    assert plan.summary() == "0 neu, 0 geändert, 0 entfernt, 1 unverändert"


def test_changed_metadata_is_work_without_embedding() -> None:
    changed = SourceFile(
        Path("corpus"), Path("corpus/a.pdf"), "a.pdf", 10, "x", DocumentInfo("Neuer Titel")
    )
    plan = make_plan([changed], [record("a.pdf", "x")])
    assert plan.has_work
    assert not plan.to_embed
