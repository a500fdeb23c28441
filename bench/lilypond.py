"""The LilyPond dev set: German manuals from Debian's lilypond-doc-pdf-de, gold at page level.

`eval/dev-lilypond.jsonl` holds questions about two of the manuals (`MANUALS`); each names the
manual (`source`, as ingested) and the 1-based physical page whose cleaned text contains its
`gold` phrase. `python bench/lilypond.py` checks the set against our own loader and cleaning:
every gold phrase must occur on its page and on no other page of the manuals.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from quellenchat.types import letters_key  # noqa: E402
from retrieval.evaluation import EvalItem, read_items  # noqa: E402

DEV_SET = ROOT / "eval" / "dev-lilypond.jsonl"
MANUALS = ("learning.de.pdf", "usage.de.pdf")
PageKey = tuple[str, int]  # (source, 1-based physical page)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI


def manual_paths() -> list[Path]:
    """The manuals of the dev set, fetched once into the bench cache; [] if unavailable."""
    from bench.run import lilypond_pdfs

    found = {p.name: p for p in lilypond_pdfs()}
    return [found[name] for name in MANUALS] if all(n in found for n in MANUALS) else []


def cleaned_pages(pdf: Path) -> dict[int, str]:
    """The cleaned text of every page, as ingest stores it (loader, then cleaning)."""
    from ingest.cleaning import clean_pdf_pages
    from ingest.loaders import iter_pdf_pages

    raw = list(iter_pdf_pages(pdf))
    cleaned = clean_pdf_pages([page.text for page in raw])
    return {page.number: text for page, text in zip(raw, cleaned, strict=True)}


def problems(items: Sequence[EvalItem], pages: Mapping[PageKey, str]) -> list[str]:
    """Why items fail the dev-set rules (German), one line each; [] when all are fine.

    Rules: source and page given; the gold phrase occurs (normalised) on that page of the
    cleaned text, and on no other page, so that a hit on the page is a hit on the answer.
    """
    keys = {key: letters_key(text) for key, text in pages.items()}
    found = []
    for n, item in enumerate(items, start=1):
        if item.source is None or item.page is None or not item.gold:
            found.append(f"{n}: source, page und gold sind Pflicht")
            continue
        gold = letters_key(item.gold)
        where = sorted(key for key, text in keys.items() if gold in text)
        if (item.source, item.page) not in where:
            found.append(f"{n}: „{item.gold}“ steht nicht auf {item.source} S. {item.page}")
        elif len(where) > 1:
            found.append(f"{n}: „{item.gold}“ steht auf {len(where)} Seiten: {where[:5]}")
    return found


def stored_pages(client: ClientAPI) -> dict[PageKey, str]:
    """The cleaned page texts a store holds, by (source, page): what hits are checked against."""
    from quellenchat.storage import PAGES, get_collection, read_sources

    collection = get_collection(client, PAGES)
    pages: dict[PageKey, str] = {}
    for record in read_sources(client):
        if collection is None:
            break
        found = collection.get(
            where={"doc_sha": record.doc_sha}, include=["documents", "metadatas"]
        )
        for text, meta in zip(found["documents"] or [], found["metadatas"] or [], strict=True):
            if meta.get("page") is not None:
                pages[(record.source, int(meta["page"]))] = text  # type: ignore[arg-type]
    return pages


def corpus(folder: Path) -> Path | None:
    """A corpus folder holding just the manuals of the dev set; None if they are unavailable."""
    paths = manual_paths()
    if not paths:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = folder / path.name
        if not target.exists() or target.stat().st_size != path.stat().st_size:
            shutil.copy(path, target)
    return folder


def extraction_rows(paths: Sequence[Path]) -> list[tuple[str, str, str, str]]:
    """Plain versus layout extraction on real PDFs: glued words and what the loader picks.

    Layout text is extracted (and its glued words counted) only on pages whose plain text has
    glued words, as the loader does.
    """
    import time

    from pypdf import PdfReader

    from ingest.loaders import extract_page_text, glued_words, normalize_layout_text

    rows = []
    for path in paths:
        pages = PdfReader(path).pages
        plain_glued = layout_glued = glued_pages = chosen = 0
        started = time.perf_counter()
        for page in pages:
            plain = page.extract_text() or ""
            found = len(glued_words(plain))
            plain_glued += found
            if not found:
                continue
            glued_pages += 1
            layout = normalize_layout_text(page.extract_text(extraction_mode="layout") or "")
            layout_glued += len(glued_words(layout))
            chosen += extract_page_text(page) != plain
        seconds = time.perf_counter() - started
        rows.append(
            (
                f"Geklebte Wörter in {path.name} ({len(pages)} Seiten): einfach / Layout",
                f"{plain_glued} / {layout_glued} (auf {glued_pages} Seiten mit geklebten Wörtern)",
                f"Layout gewählt auf {chosen} Seiten",
                f"{seconds:.1f} s für beide Modi",
            )
        )
    return rows


def main() -> int:
    """Check the dev set; exit code 1 if any item breaks a rule."""
    items = read_items(DEV_SET)
    paths = manual_paths()
    if not paths:
        print("Handbücher nicht verfügbar (apt-get download lilypond-doc-pdf-de)", file=sys.stderr)
        return 2
    pages = {(p.name, n): text for p in paths for n, text in cleaned_pages(p).items()}
    found = problems(items, pages)
    for line in found:
        print(line)
    by_source = {s: sum(1 for i in items if i.source == s) for s in MANUALS}
    print(
        json.dumps({"items": len(items), "by_source": by_source, "problems": len(found)}),
        file=sys.stderr,
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
