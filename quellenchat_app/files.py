"""Gradio file hooks: inputs take only this server's uploads; exports are served in place."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path, PurePath
from typing import Any

import gradio as gr

from retrieval.render import escape_markdown


def accept_only_uploads(component: gr.File, uploads: Callable[[], Collection[str]]) -> gr.File:
    """Make a file input take only files this server received by upload; returns it.

    Gradio copies whatever server path a request names into its cache before the event runs; its
    own check of such paths runs only after `launch()`, which a mounted app never calls. The
    input's copy step now refuses every other path (a forged server path, a URL) before anything
    is copied.

    Args:
        component: The file input.
        uploads: Gives the paths of the files this server's upload route has written.
    """

    def check(path: str | Path | None) -> None:
        _check_uploaded(path, uploads())

    _before_moves(component, check)
    return component


def serve_in_place(component: gr.DownloadButton, root: Path) -> gr.DownloadButton:
    """Serve the files below `root` from where they are, not from a copy in Gradio's cache.

    Gradio copies every file an event returns into its temporary folder and never deletes the
    copy; the app's exports must live (and be deleted) in the app's own folder only. `root`
    must be among the `allowed_paths` of the mounted app.
    """

    def keep(path: str | Path | None) -> str | None:
        if path is not None and Path(path).resolve().is_relative_to(root.resolve()):
            return str(Path(path).resolve())
        return None

    _before_moves(component, keep)
    return component


def _before_moves(component: Any, before: Callable[[str | Path | None], str | None]) -> None:
    """Run `before` ahead of the component's copy into Gradio's cache; a path it returns is kept.

    Instance methods, not a subclass: Gradio writes a `.pyi` file beside every module that
    subclasses a component.
    """
    move = component.move_resource_to_block_cache
    move_async = component.async_move_resource_to_block_cache

    def checked(path: str | Path | None) -> str | None:
        kept = before(path)
        return kept if kept is not None else move(path)

    async def checked_async(path: str | Path | None) -> str | None:
        kept = before(path)
        return kept if kept is not None else await move_async(path)

    component.move_resource_to_block_cache = checked
    component.async_move_resource_to_block_cache = checked_async


def _check_uploaded(path: str | Path | None, uploads: Collection[str]) -> None:
    """Raise a German `gr.Error` unless `path` is one of the uploaded files (None passes)."""
    if path is None:
        return
    uploaded = {str(Path(p).resolve()) for p in uploads}
    if "://" in str(path) or str(Path(path).resolve()) not in uploaded:
        name = escape_markdown(PurePath(str(path)).name)
        raise gr.Error(
            f"Abgelehnt: „{name}“ wurde nicht über diese App hochgeladen. Bitte die PDF-Datei "
            "im Reiter „Quellen“ auswählen."
        )
