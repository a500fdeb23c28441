"""The `ask` API endpoint: one question (and the conversation so far) in, the answer as JSON.

The same JSON object as `python -m retrieval ask --json`; wrong arguments get German errors that
name the field.
"""

# No `from __future__ import annotations`: Gradio reads the `ask` endpoint's type hints.

from typing import Any

import gradio as gr

from quellenchat.storage import StoreError
from quellenchat_app.chat_tab import ANSWER_CONCURRENCY
from quellenchat_app.service import ChatService
from retrieval.answering import QuestionError


class AskApi:
    """The endpoint's handler over the service."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    def register(self) -> None:
        """Add the `ask` endpoint to the `gr.Blocks` being built."""
        gr.api(
            self.ask,
            api_name="ask",
            concurrency_limit=ANSWER_CONCURRENCY,
            concurrency_id="answer",
        )

    def ask(self, question: str, history: list[list[str]] | None = None) -> dict[str, Any]:
        """Answer a question with verified citations (history: earlier [question, answer] pairs).

        Returns the same JSON object as `python -m retrieval ask --json`.
        """
        try:
            pairs = api_history(history)
            return self.service.ask(api_question(question), pairs).to_json()
        except (QuestionError, StoreError) as exc:
            raise gr.Error(str(exc)) from exc


HISTORY_SHAPE = 'eine Liste von [Frage, Antwort]-Paaren, z. B. [["Wie viele KMU …?", "…"]]'


def api_question(question: object) -> str:
    """The `question` of the `ask` API, checked; a German `QuestionError` names the field."""
    if not isinstance(question, str):
        raise QuestionError(
            f"Feld „question“ muss Text sein (die Frage), nicht {_shape(question)}."
        )
    return question


def api_history(history: object) -> list[tuple[str, str]]:
    """The `history` of the `ask` API as (question, answer) pairs; empty when none is given.

    Raises:
        QuestionError: the history has another shape (German, naming the field and the shape).
    """
    if history is None:
        return []
    if not isinstance(history, list | tuple):
        raise QuestionError(f"Feld „history“ muss {HISTORY_SHAPE} sein, nicht {_shape(history)}.")
    pairs: list[tuple[str, str]] = []
    for number, pair in enumerate(history, start=1):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(text, str | int | float) for text in pair)
        ):
            raise QuestionError(
                f"Feld „history“, Eintrag {number}: erwartet ein Paar [Frage, Antwort] aus zwei "
                f"Texten, nicht {_shape(pair)}. Der Verlauf ist {HISTORY_SHAPE}."
            )
        pairs.append((str(pair[0]), str(pair[1])))  # as before: numbers become text
    return pairs


def _shape(value: object) -> str:
    kinds = {str: "Text", int: "eine Zahl", float: "eine Zahl", bool: "ein Wahrheitswert"}
    kinds |= {list: "eine Liste", tuple: "eine Liste", dict: "ein Objekt"}
    if value is None:
        return "leer (null)"
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + " …"
    return f"{kind} ({shown})"
