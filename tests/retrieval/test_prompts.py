"""Prompt templates: shipped ones load; wrong placeholders stop start-up with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.prompts import PROMPTS_DIR, PromptError, Prompts, load_prompt


def test_shipped_prompts_load_and_fill() -> None:
    prompts = Prompts.load()
    text = prompts.answer.format(passages='<quelle nr="1">x</quelle>', question="F?", language="")
    assert "F?" in text
    assert "<quelle" in text
    assert "{refusal}" not in prompts.system.format(refusal="Dazu …")


def test_missing_or_unknown_placeholder_names_the_file(tmp_path: Path) -> None:
    for name in ("system.de.md", "condense.de.md", "translate.de.md"):
        (tmp_path / name).write_text((PROMPTS_DIR / name).read_text(encoding="utf-8"))
    (tmp_path / "answer.de.md").write_text("{passages}\n{frage}\n{language}", encoding="utf-8")
    with pytest.raises(PromptError, match=r"answer\.de\.md.*fehlend: question; unbekannt: frage"):
        Prompts.load(tmp_path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="nicht lesbar"):
        load_prompt("system.de.md", tmp_path)


def test_format_requires_exactly_the_placeholders() -> None:
    with pytest.raises(PromptError):
        Prompts.load().condense.format(question="x")
