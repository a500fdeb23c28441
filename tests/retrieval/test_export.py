"""The Markdown export of a conversation with its sources."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from retrieval.export import ExportFolder, conversation_markdown, export_file_name
from tests.retrieval.answer_factory import make_answer, make_citation, make_passage


def test_export_lists_every_turn_with_its_checked_sources() -> None:
    first = make_passage(
        "KMU sind beim Einsatz von KI noch zurückhaltend.", publisher="KfW Research"
    )
    second = make_passage("Größere Firmen <b>nutzen</b> KI häufiger.", id="p2", page=5)
    turns = [
        make_answer("Wie viele KMU nutzen KI?", (make_citation(first, first.text),)),
        make_answer(
            "Und bei den größeren Firmen?",
            (make_citation(second, second.text, n=1, verified=False),),
            notice="Hinweis des Backends",
        ),
    ]
    markdown = conversation_markdown(turns, datetime(2025, 11, 25, 14, 5))
    assert "25.11.2025 um 14:05" in markdown
    assert (
        markdown.index("## Frage 1")
        < markdown.index("Wie viele KMU")
        < markdown.index("## Frage 2")
    )
    # The line the app copies, Markdown-escaped: `\#page=3` renders as `#page=3`.
    assert (
        "„KMU sind beim Einsatz von KI noch zurückhaltend.“ "
        "(KI im Mittelstand, KfW Research 2021, S. 3, https://example.org/bericht.pdf\\#page=3)"
    ) in markdown
    assert "– geprüft" in markdown
    assert "– nicht geprüft" in markdown
    assert "S. 5" in markdown
    assert "Hinweis des Backends" in markdown
    assert "<b>" not in markdown


def test_export_file_name_is_dated() -> None:
    assert (
        export_file_name(datetime(2025, 1, 2, 3, 4))
        == "quellenchat-unterhaltung-2025-01-02-0304.md"
    )


def test_exports_are_deleted_after_their_time_and_at_shutdown(tmp_path: Path) -> None:
    now = [1_000_000.0]
    turns = [make_answer("Wie viele KMU nutzen KI?", ())]
    folder = ExportFolder(tmp_path / "exports", keep_seconds=600, clock=lambda: now[0])
    first = folder.write(turns, datetime(2025, 11, 25, 14, 5))
    assert first.parent.parent == tmp_path / "exports"
    assert "Wie viele KMU nutzen KI?" in first.read_text(encoding="utf-8")
    now[0] += 599
    assert folder.prune() == 0
    assert first.exists()
    now[0] += 2
    second = folder.write(turns, datetime(2025, 11, 25, 14, 15))  # prunes on the way
    assert not first.parent.exists()
    other_app = tmp_path / "exports" / f"{int(now[0])}-fremd"
    other_app.mkdir()
    folder.clear()
    assert not second.parent.exists()
    assert other_app.exists()  # another app's fresh export is not this app's to delete
