"""Stand-ins for tests where a real model (or real time) is not what is checked.

The fake embedder is deterministic and instant: the same text always gets the same unit vector,
of the bundled model's length and under its name, so stores, plans and manifests look exactly as
with the real model. Only what the vectors mean is missing: tests that search use the real one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from quellenchat.embedding import BUNDLED_DIM

if TYPE_CHECKING:
    from ingest.run import Report
    from quellenchat.settings import Settings


class FakeEmbedder:
    """Hash-seeded unit vectors: same text, same vector; counts what it embedded."""

    def __init__(self, name: str, dim: int = BUNDLED_DIM) -> None:
        self._name = name
        self._dim = dim
        self.passages = 0  # how many passages it embedded, for tests that count re-embedding

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passages += len(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
        return vector / np.linalg.norm(vector)


def ingest_fake(settings: Settings, **options: Any) -> Report:
    """`run_ingest` with a fake embedder named like the settings' real one: no model is loaded."""
    from ingest.run import run_ingest

    return run_ingest(settings, embedder=FakeEmbedder(settings.embedder), **options)


class FakeClock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
