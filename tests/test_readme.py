"""The README stays true: quick start and every setting documented."""

from __future__ import annotations

from quellenchat.settings import Settings
from tests.helpers import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_variable() -> None:
    missing = [
        f"QUELLENCHAT_{name.upper()}"
        for name in Settings.model_fields
        if f"`QUELLENCHAT_{name.upper()}`" not in README
    ]
    assert missing == []


def test_quick_start_is_the_two_commands() -> None:
    quick_start = README.split("## Schnellstart", 1)[1].split("##", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in quick_start.splitlines() if line.startswith("make ")
    ]
    assert commands == ["make run", "make test"]
