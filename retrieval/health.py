"""What `/healthz` reports: the store reachable and filled, the answer backend ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quellenchat.storage import StoreError, describe, read_sources

if TYPE_CHECKING:
    from retrieval.answering import Answerer


@dataclass(frozen=True)
class Health:
    """One health check of an app replica."""

    store: str  # where the store is
    reachable: bool
    documents: int
    chunks: int
    backend: str
    backend_ready: bool
    problem: str | None = None  # German, when something is wrong
    writer: str | None = None  # who holds the server's writer lease right now

    @property
    def status(self) -> str:
        """`ok`; `degraded` (answers fall back to extractive); `unavailable` (no answers)."""
        if not self.reachable or self.documents == 0:
            return "unavailable"
        return "ok" if self.backend_ready else "degraded"

    @property
    def http_status(self) -> int:
        """200 while the replica can answer, else 503 (the proxy sends users elsewhere)."""
        return 503 if self.status == "unavailable" else 200

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "status": self.status,
            "store": {
                "location": self.store,
                "reachable": self.reachable,
                "documents": self.documents,
                "chunks": self.chunks,
                "writer": self.writer,
            },
            "backend": {"name": self.backend, "ready": self.backend_ready},
            "problem": self.problem,
        }


def check_health(answerer: Answerer) -> Health:
    """Ask the store for its manifest (a real round trip) and look at the answer backend."""
    client = answerer.searcher.client
    backend, ready = answerer.default_backend, backend_ready(answerer)
    where = describe(client)
    try:
        records = read_sources(client)
        writer = _writer(answerer)
    except StoreError as exc:
        return Health(where, False, 0, 0, backend, ready, str(exc))
    problem = None if records else "Der Index ist leer – zuerst einlesen (python -m ingest)."
    if problem is None and not ready:
        problem = f"Das Backend {backend} ist nicht bereit; Antworten kommen extraktiv."
    chunks = sum(r.chunks for r in records)
    return Health(where, True, len(records), chunks, backend, ready, problem, writer)


def backend_ready(answerer: Answerer) -> bool:
    """Whether the default backend can answer: extractive always; an LLM when installed/set up."""
    settings = answerer.settings
    match answerer.default_backend:
        case "local":
            from quellenchat.llm_model import local_model_installed

            return local_model_installed(settings)
        case "openai":
            return bool(settings.openai_base_url and settings.openai_model)
    return True


def _writer(answerer: Answerer) -> str | None:
    if not answerer.settings.chroma_url:
        return None
    from quellenchat.lease import current_lease

    lease = current_lease(answerer.searcher.client)
    return None if lease is None else f"{lease.holder} (Lease bis {lease.until()})"
