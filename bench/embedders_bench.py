"""Compare the bundled embedders on this machine: e5-small and EmbeddingGemma, int8 and fp32.

Each configuration runs in a child process of its own (honest RSS, no shared torch state). The
models are loaded one after another; then each child in turn (order rotated every time) embeds
the fact sheet's chunks and the dev questions (`--rounds` times, the best round counts), and ~300
chunks of a German PDF in slices of 50 (once: Gemma needs minutes for them), so the shared
machine's noise falls on all of them alike. Throughput and query times are counted in the
child's CPU seconds (one torch thread by default, `--threads`): on a shared 2-core machine at load
5-6, wall times of two-thread runs swung ×3 between rounds and ranked e5 fp32 above e5 int8;
wall times are reported beside them. Ratios are to e5-small int8 from the same run.
Writes bench/results/embedders.md (German).

    python bench/embedders_bench.py [--rounds 3] [--pdf-chunks 300]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from quellenchat.settings import BUNDLED_EMBEDDER, GEMMA_EMBEDDER  # noqa: E402

RESULT = ROOT / "bench" / "results" / "embedders.md"
DEV_SET = ROOT / "eval" / "dev-faktenblatt.jsonl"
COSINE_PASSAGES = 50
PDF_SLICE = 50
CONFIGS = (
    ("e5-small int8", BUNDLED_EMBEDDER, True),
    ("e5-small fp32", BUNDLED_EMBEDDER, False),
    ("Gemma int8", GEMMA_EMBEDDER, True),
    ("Gemma fp32", GEMMA_EMBEDDER, False),
)


# ---------------------------------------------------------------------------------------------
# The child: one embedder, commands as JSON lines on stdin, answers on stdout


def rss_mb(key: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(run: Any) -> dict[str, float]:
    """Wall and CPU seconds (this process, all threads) of `run()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def worker(embedder_name: str, quantize: bool, threads: int, texts_file: Path) -> None:
    import torch  # imported before the clock starts: every configuration pays it alike

    from quellenchat.embedding import make_embedder
    from quellenchat.settings import Settings

    texts: dict[str, list[str]] = json.loads(texts_file.read_text(encoding="utf-8"))
    settings = Settings(embedder=embedder_name, embed_quantize=quantize, embed_threads=threads)
    embedder = make_embedder(settings)
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the libraries print stays out of the answers
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        answer: dict[str, Any]
        if op == "load":
            answer = timed(
                lambda: (embedder.embed_passages(["Warmlaufen."]), embedder.embed_query("?"))
            )
            answer |= {"rss": rss_mb(), "threads": torch.get_num_threads()}
        elif op == "passages":
            answer = timed(functools.partial(embedder.embed_passages, texts[command["set"]]))
        elif op == "queries":
            answer = {
                "times": [timed(lambda q=q: embedder.embed_query(q)) for q in texts["questions"]]
            }
        elif op == "vectors":
            passages = embedder.embed_passages(texts["pdf"][:COSINE_PASSAGES])
            queries = np.stack([embedder.embed_query(q) for q in texts["questions"]])
            np.savez(command["path"], passages=passages, queries=queries)
            answer = {"peak_rss": rss_mb("VmHWM"), "rss": rss_mb()}
        else:
            raise ValueError(op)
        out.write(json.dumps(answer) + "\n")
        out.flush()


# ---------------------------------------------------------------------------------------------
# The parent


@dataclass
class Child:
    label: str
    process: subprocess.Popen[str]
    load: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    query_times: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label}: Kindprozess beendet")
        return dict(json.loads(line))


def start_child(label: str, name: str, quantize: bool, threads: int, texts_file: Path) -> Child:
    worker_args = [name, str(int(quantize)), str(threads), str(texts_file)]
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", *worker_args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return Child(label, process)


def fact_sheet_texts() -> list[str]:
    """The shipped fact sheet's chunks as ingest embeds them."""
    from ingest.corpus import discover
    from ingest.documents import prepare
    from ingest.index import embedding_text
    from ingest.run import chunk_sizes
    from quellenchat.settings import Settings

    files, _ = discover([ROOT / "corpus"])
    sheet = next(f for f in files if f.source == "ki-faktenblatt.txt")
    chunks = prepare(sheet, chunk_sizes(Settings())).chunks
    return [embedding_text(chunk) for chunk in chunks]


def pdf_texts(limit: int) -> tuple[str, list[str]]:
    """The first `limit` chunks of the smallest 200+ page German LilyPond manual."""
    from bench.run import large_german_pdf
    from ingest.corpus import SourceFile, sha256_file
    from ingest.documents import prepare
    from ingest.index import embedding_text
    from ingest.run import chunk_sizes
    from quellenchat.settings import Settings
    from quellenchat.types import DocumentInfo

    pdf = large_german_pdf()
    if pdf is None:
        raise SystemExit("Kein deutsches PDF verfügbar (lilypond-doc-pdf-de).")
    file = SourceFile(
        corpus=pdf.parent,
        path=pdf,
        source=pdf.name,
        size=pdf.stat().st_size,
        sha256=sha256_file(pdf),
        info=DocumentInfo(title=pdf.stem),
    )
    chunks = prepare(file, chunk_sizes(Settings())).chunks[:limit]
    return pdf.name, [embedding_text(chunk) for chunk in chunks]


def dev_questions() -> list[str]:
    lines = DEV_SET.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Smallest and mean row-wise cosine of two L2-normalised matrices."""
    values = np.sum(a * b, axis=1)
    return float(values.min()), float(values.mean())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}".replace(",", "X").replace(".", ",").replace("X", ".")


def run(rounds: int, pdf_chunks: int, threads: int) -> str:
    from bench.run import machine

    texts = {"fact": fact_sheet_texts(), "questions": dev_questions()}
    pdf_name, texts["pdf"] = pdf_texts(pdf_chunks)
    for start in range(0, len(texts["pdf"]), PDF_SLICE):
        texts[f"pdf-{start // PDF_SLICE}"] = texts["pdf"][start : start + PDF_SLICE]
    words = {k: statistics.mean(len(t.split()) for t in v) for k, v in texts.items()}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        children = []
        try:
            for label, name, quantize in CONFIGS:  # loaded one after another, never together
                child = start_child(label, name, quantize, threads, texts_file)
                children.append(child)
                child.load = child.ask(op="load")
                print(f"{label}: geladen in {child.load['wall']:.1f} s", file=sys.stderr)
            slices = [key for key in texts if key.startswith("pdf-")]
            for turn in range(max(rounds, len(slices))):
                shift = turn % len(children)
                for child in children[shift:] + children[:shift]:
                    if turn < rounds:
                        seconds = child.ask(op="passages", set="fact")
                        child.seconds.setdefault("fact", []).append(seconds)
                        child.query_times += child.ask(op="queries")["times"]
                    if turn < len(slices):
                        seconds = child.ask(op="passages", set=slices[turn])
                        child.seconds.setdefault("pdf", []).append(seconds)
                    print(f"Durchgang {turn + 1}: {child.label} {seconds}", file=sys.stderr)
            vectors = {}
            for child in children:
                path = Path(tmp) / f"{len(vectors)}.npz"
                child.final = child.ask(op="vectors", path=str(path))
                with np.load(path) as data:
                    vectors[child.label] = {k: data[k] for k in data.files}
        finally:
            for child in children:
                if child.process.stdin is not None:
                    child.process.stdin.close()
                child.process.wait(60)
    load_avg = os.getloadavg()
    setup = f"{rounds} Runden, {threads} Torch-Thread(s) je Modell"
    return report(children, vectors, texts, words, pdf_name, setup, machine(), load_avg)


def report(
    children: list[Child],
    vectors: dict[str, dict[str, np.ndarray]],
    texts: dict[str, list[str]],
    words: dict[str, float],
    pdf_name: str,
    setup: str,
    machine_line: str,
    load_avg: tuple[float, float, float],
) -> str:
    base = children[0]
    rate = {
        (c.label, clock): {
            "fact": len(texts["fact"]) / min(t[clock] for t in c.seconds["fact"]),
            "pdf": len(texts["pdf"]) / sum(t[clock] for t in c.seconds["pdf"]),
        }
        for c in children
        for clock in ("cpu", "wall")
    }
    lines = [
        "# Einbettungsmodelle im Vergleich: multilingual-e5-small und EmbeddingGemma-300M",
        "",
        f"Gemessen am {time.strftime('%d.%m.%Y %H:%M')} mit `python bench/embedders_bench.py` "
        f"({setup}; jede Konfiguration in einem eigenen Prozess, abwechselnd gemessen).",
        f"Maschine: {machine_line}. Last danach (1/5/15 min): "
        + " / ".join(fmt(x, 2) for x in load_avg)
        + " – die Maschine teilen sich mehrere Arbeiten, absolute Zahlen schwanken; "
        "die Verhältnisse stammen aus demselben Lauf.",
        "",
        f"- Faktenblatt: {len(texts['fact'])} Abschnitte (Ø {fmt(words['fact'], 0)} Wörter), "
        "wie `ingest` sie einbettet.",
        f"- PDF: die ersten {len(texts['pdf'])} Abschnitte von `{pdf_name}` "
        f"(LilyPond-Handbuch, deutsch; Ø {fmt(words['pdf'], 0)} Wörter).",
        f"- Fragen: die {len(texts['questions'])} Dev-Fragen (`eval/dev-faktenblatt.jsonl`), "
        f"je einzeln eingebettet ({len(base.query_times)} Messungen je Modell).",
        "",
        "| Modell | Laden (Wand · CPU) | RSS nach dem Laden | Spitzen-RSS | Faktenblatt "
        "je CPU-s | PDF je CPU-s | Frage p50 · p95 (CPU) | PDF je s Wanduhr | Frage p50 · p95 "
        "(Wanduhr) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for child in children:
        cpu, wall = rate[child.label, "cpu"], rate[child.label, "wall"]
        ratio = {k: cpu[k] / rate[base.label, "cpu"][k] for k in ("fact", "pdf")}
        wall_ratio = wall["pdf"] / rate[base.label, "wall"]["pdf"]
        lines.append(
            f"| {child.label} | {fmt(child.load['wall'])} · {fmt(child.load['cpu'])} s | "
            f"{fmt(child.load['rss'], 0)} MB | {fmt(child.final['peak_rss'], 0)} MB | "
            f"{fmt(cpu['fact'])} (×{fmt(ratio['fact'], 2)}) | "
            f"{fmt(cpu['pdf'])} (×{fmt(ratio['pdf'], 2)}) | "
            f"{query_percentiles(child, 'cpu')} | "
            f"{fmt(wall['pdf'])} (×{fmt(wall_ratio, 2)}) | {query_percentiles(child, 'wall')} |"
        )
    lines += [
        "",
        "Laden: vom ersten Einbetten bis zum ersten Vektor (Modellordner schon vorhanden und "
        "geprüft; torch schon importiert). Durchsatz in Abschnitten je CPU-Sekunde des "
        "Modellprozesses; Faktenblatt: beste Runde; PDF: alle Abschnitte einmal, in Scheiben zu "
        f"{PDF_SLICE} abwechselnd mit den anderen Modellen. (×…) = Verhältnis zu e5-small int8. "
        "Spitzen-RSS: nach allem (Batches zu 16 Abschnitten).",
        "",
        "## int8 gegen fp32",
        "",
        "| Modell | Kosinus Passagen (min · Ø) | Kosinus Fragen (min · Ø) |",
        "| --- | --- | --- |",
    ]
    for model in ("e5-small", "Gemma"):
        int8, fp32 = vectors[f"{model} int8"], vectors[f"{model} fp32"]
        p_min, p_mean = cosines(int8["passages"], fp32["passages"])
        q_min, q_mean = cosines(int8["queries"], fp32["queries"])
        lines.append(
            f"| {model} | {fmt(p_min, 4)} · {fmt(p_mean, 4)} | {fmt(q_min, 4)} · {fmt(q_mean, 4)} |"
        )
    lines += [
        "",
        f"Passagen: die ersten {COSINE_PASSAGES} PDF-Abschnitte; Fragen: die Dev-Fragen.",
        "",
    ]
    return "\n".join(lines)


def query_percentiles(child: Child, clock: str) -> str:
    values = [t[clock] * 1000 for t in child.query_times]
    return f"{fmt(percentile(values, 50), 0)} · {fmt(percentile(values, 95), 0)} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pdf-chunks", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="Torch-Threads je Modell")
    args = parser.parse_args()
    if args.worker:
        name, quantize, threads, texts_file = args.worker
        worker(name, quantize == "1", int(threads), Path(texts_file))
        return
    text = run(args.rounds, args.pdf_chunks, args.threads)
    RESULT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
