"""The one place that builds the app's parts from its settings.

Settings go in; the embedder, the store client, the searcher, the answerer and the ingest runner
come out, each built once. The searcher, the answerer and the ingest runs share the one embedder
(one model per process) and the one store client. Nothing here loads a model: the embedder loads
on its first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.maintenance import StoreGuard
from quellenchat.embedding import make_embedder
from quellenchat.settings import Settings
from quellenchat.storage import open_client
from retrieval.answering import Answerer
from retrieval.search import Searcher

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from quellenchat.embedding import Embedder


@dataclass(frozen=True)
class Components:
    """The app's parts, wired to each other; each wraps one external part."""

    settings: Settings
    embedder: Embedder  # the sentence-transformers model, loaded on first use
    client: ClientAPI  # the Chroma store
    searcher: Searcher
    answerer: Answerer  # the answer backends (extractive, local LLM, OpenAI-compatible)
    ingest: StoreGuard  # runs ingests with `embedder`, under the store's writer lock


def wire(
    settings: Settings, *, embedder: Embedder | None = None, answerer: Answerer | None = None
) -> Components:
    """Build the parts for `settings`.

    A given `embedder` is used instead of a new one (e.g. the one the start-up ingest used); a
    given `answerer` brings its own searcher, store client and embedder.

    Raises:
        StoreError: the store cannot be opened (a Chroma server that does not answer).
    """
    if answerer is None:
        embedder = embedder or make_embedder(settings)
        client = open_client(settings)
        searcher = Searcher(settings, embedder=embedder, client=client)
        answerer = Answerer(settings, searcher=searcher)
    searcher = answerer.searcher
    return Components(
        settings=settings,
        embedder=searcher.embedder,
        client=searcher.client,
        searcher=searcher,
        answerer=answerer,
        ingest=StoreGuard(settings, embedder=searcher.embedder),
    )
