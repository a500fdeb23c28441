"""A conversation with its sources as a Markdown document, for the app's download."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from retrieval.answers import Answer
from retrieval.citation_text import citation_text, flat
from retrieval.render import escape_markdown


def conversation_markdown(turns: Sequence[Answer], exported_at: datetime) -> str:
    """Every question and answer in order, each followed by its numbered, checked sources."""
    lines = [
        "# Quellenchat – Unterhaltung",
        "",
        f"Exportiert am {exported_at:%d.%m.%Y um %H:%M} Uhr. Jede Quelle ist als Zitat mit "
        "Dokument, Herausgeber und Jahr (soweit angegeben), Seite und Link angegeben; "
        "„geprüft“ heißt: das Zitat steht wörtlich im gespeicherten Text der Quelle.",
    ]
    for number, turn in enumerate(turns, start=1):
        lines += ["", f"## Frage {number}", "", escape_markdown(flat(turn.question)), ""]
        lines += ["### Antwort", "", escape_markdown(turn.answer)]
        if turn.unsupported:
            lines += ["", "Ohne Beleg (nicht durch die Quellen gestützt):", ""]
            lines += [f"- {escape_markdown(flat(s))}" for s in turn.unsupported]
        if turn.notice:
            lines += ["", f"Hinweis: {escape_markdown(turn.notice)}"]
        if turn.citations:
            lines += ["", "### Quellen", ""]
            for citation in turn.citations:
                check = "geprüft" if citation.verified else "nicht geprüft"
                quote = escape_markdown(citation_text(citation))
                lines.append(f"- \\[{citation.n}\\] {quote} – {check}")
    return "\n".join(lines) + "\n"


def export_file_name(exported_at: datetime) -> str:
    """The download's file name."""
    return f"quellenchat-unterhaltung-{exported_at:%Y-%m-%d-%H%M}.md"
