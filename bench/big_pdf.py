"""Memory stays flat on long PDFs: ingest a 1,000-page German PDF beside a 100-page one.

Both are written here (fpdf2, German XQuAD-de text, a header and page numbers on every page),
cached in the bench cache, and ingested by whole CLI processes into fresh stores; the ratio of
their peak RSS is the figure that says whether memory grows with the page count.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.run import CACHE, XQUAD, Row, run_cli

WORDS_PER_PAGE = 120
SIZES = (100, 1000)


def generated_pdf(pages: int) -> Path:
    """A German PDF of `pages` pages, written once into the bench cache."""
    from fpdf import FPDF

    path = CACHE / "generated" / f"deutsch-{pages}-seiten.pdf"
    if path.exists():
        return path
    texts = page_texts(pages)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for number, text in enumerate(texts, start=1):
        pdf.add_page()
        pdf.cell(0, 8, "Handbuch Digitalisierung im Mittelstand", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 5, text.encode("latin-1", "replace").decode("latin-1"))
        pdf.set_y(-15)
        pdf.cell(0, 8, str(number), align="C")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pdf.output(str(tmp))
    tmp.rename(path)
    return path


def page_texts(pages: int) -> list[str]:
    """`pages` texts of WORDS_PER_PAGE words, cycling through the XQuAD-de paragraphs."""
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    words = " ".join(p["context"] for a in data["data"] for p in a["paragraphs"]).split()
    return [
        " ".join(words[(i * WORDS_PER_PAGE + j) % len(words)] for j in range(WORDS_PER_PAGE))
        for i in range(pages)
    ]


def big_pdf_rows(env: dict[str, str]) -> list[Row]:
    """Seconds and peak RSS of ingesting 100 and 1,000 pages; the RSS ratio is the check."""
    measured: dict[int, tuple[float, float, int]] = {}
    for pages in SIZES:
        pdf = generated_pdf(pages)
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            (corpus / pdf.name).symlink_to(pdf)
            seconds, rss, out = run_cli(
                ["--store", str(Path(tmp) / "store"), "--corpus", str(corpus), "--json"], env
            )
        measured[pages] = (seconds, rss, json.loads(out)["chunks_embedded"])
    small, large = (measured[n] for n in SIZES)
    rows: list[Row] = []
    for pages, (seconds, rss, chunks) in measured.items():
        rows.append(
            (
                f"Erzeugtes deutsches PDF, {pages:_} Seiten einlesen".replace("_", "."),
                f"{seconds:.0f} s",
                f"{chunks} Chunks, {chunks / seconds:.1f} Chunks/s",
                f"Spitzen-RSS {rss:.0f} MB",
            )
        )
    rows.append(
        (
            "Speicher bei 10× so vielen Seiten",
            f"×{large[1] / small[1]:.2f} Spitzen-RSS",
            f"100 Seiten: {small[1]:.0f} MB",
            "flach = ×1,0; Ziel ≤ 2048 MB",
        )
    )
    return rows
