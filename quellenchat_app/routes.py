"""HTTP: `/healthz`, the corpus PDF route, the upload refusal, and Gradio mounted at `/`."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import gradio as gr

from ingest.upload import limit_bytes
from quellenchat.storage import StoreError
from quellenchat_app.page import CSS, TITLE, theme
from quellenchat_app.service import ChatService
from retrieval.corpus_files import PDF_ROUTE

UPLOAD_ROUTE = "/gradio_api/upload"
NO_UPLOADS = (
    "Hochladen ist abgeschaltet: Der Reiter „Quellen“ ist gesperrt (App aus dem Netz erreichbar, "
    "kein Passwort gesetzt)."
)
SIGN_IN_FIRST = "Hochladen erst nach der Anmeldung im Reiter „Quellen“."


def asgi(
    service: ChatService,
    demo: gr.Blocks,
    *,
    upload_refusal: Callable[[str], str | None],
    upload_max_mb: int,
    exports: Path,
) -> Any:
    """The FastAPI app: `/healthz`, the corpus PDF route, and the Gradio interface at `/`.

    Args:
        service: Answers the health check and finds the PDFs.
        demo: The Gradio interface.
        upload_refusal: Why a client (by address) may not send files, None if it may: Gradio's
            upload route answers 403 with that reason.
        upload_max_mb: The largest upload Gradio accepts (`save_upload` checks, too).
        exports: The folder of conversation exports, served in place.
    """
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, JSONResponse

    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def refuse_uploads(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        from fastapi.responses import PlainTextResponse

        path = posixpath.normpath(re.sub("/+", "/", request.url.path)).rstrip("/")
        client = request.client.host if request.client else "?"
        if path == UPLOAD_ROUTE and (reason := upload_refusal(client)):
            return PlainTextResponse(reason, status_code=403)
        return await call_next(request)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        health = service.health()
        return JSONResponse(health.to_json(), status_code=health.http_status)

    @app.get(f"/{PDF_ROUTE}/{{name}}")
    def corpus_pdf(name: str) -> FileResponse:
        sha = name.removesuffix(".pdf")
        try:
            path = service.pdf_path(sha)  # asks the store even for other names (503 when down)
        except StoreError as exc:
            raise HTTPException(503, str(exc)) from exc
        if path is None or not name.endswith(".pdf"):
            raise HTTPException(404, "Dokument nicht gefunden.")
        return FileResponse(
            path,
            media_type="application/pdf",
            filename=path.name,
            content_disposition_type="inline",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return gr.mount_gradio_app(
        app,
        demo.queue(default_concurrency_limit=1),
        path="",
        theme=theme(),
        css=CSS,
        max_file_size=limit_bytes(upload_max_mb),  # save_upload checks, too
        show_error=True,
        footer_links=[],
        allowed_paths=[str(exports)],  # the exports, served in place
        # FastAPI's generated schema of Gradio's routes: nothing needs it, so not public.
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
    )
