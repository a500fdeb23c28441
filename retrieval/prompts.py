"""Prompt templates from `prompts/`, checked for exactly their expected placeholders."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"

# Each template and the placeholders the code fills in.
EXPECTED: dict[str, frozenset[str]] = {
    "system.de.md": frozenset({"refusal"}),
    "answer.de.md": frozenset({"passages", "question", "language"}),
    "condense.de.md": frozenset({"history", "question"}),
    "translate.de.md": frozenset({"question"}),
}


class PromptError(ValueError):
    """A template is missing or its placeholders are not the expected set."""


@dataclass(frozen=True)
class Prompt:
    """One checked template."""

    name: str
    template: str
    fields: frozenset[str]

    def format(self, **values: str) -> str:
        """The template filled in; every placeholder must be given."""
        if set(values) != self.fields:
            raise PromptError(
                f"{self.name}: erwartet {sorted(self.fields)}, bekam {sorted(values)}"
            )
        return self.template.format(**values).strip()


def placeholders(template: str) -> frozenset[str]:
    """The `{name}` fields of a format string."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(template) if field)


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """Read and check one template; errors name the file and the difference."""
    path = directory / name
    try:
        template = path.read_text(encoding="utf-8")
        found = placeholders(template)
    except OSError as exc:
        raise PromptError(f"Prompt-Vorlage {path} nicht lesbar: {exc}") from exc
    except ValueError as exc:
        raise PromptError(f"Prompt-Vorlage {path}: ungültige Platzhalter ({exc})") from exc
    expected = EXPECTED[name]
    if found != expected:
        missing = ", ".join(sorted(expected - found)) or "–"
        unknown = ", ".join(sorted(found - expected)) or "–"
        raise PromptError(
            f"Prompt-Vorlage {path}: Platzhalter stimmen nicht "
            f"(fehlend: {missing}; unbekannt: {unknown})"
        )
    return Prompt(name, template, expected)


@dataclass(frozen=True)
class Prompts:
    """All templates of the answer step."""

    system: Prompt
    answer: Prompt
    condense: Prompt
    translate: Prompt

    @classmethod
    def load(cls, directory: Path = PROMPTS_DIR) -> Prompts:
        """Load and check every template."""
        return cls(
            load_prompt("system.de.md", directory),
            load_prompt("answer.de.md", directory),
            load_prompt("condense.de.md", directory),
            load_prompt("translate.de.md", directory),
        )
