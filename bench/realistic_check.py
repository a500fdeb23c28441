"""Check the realistic question sets: fields, values and gold phrases; print counts.

`eval/realistic-faktenblatt.jsonl`: every gold, golds and points phrase must occur in the fact
sheet (`corpus/ki-faktenblatt.txt`); points must occur in the paragraphs that hold the golds.
`eval/realistic-faktenblatt-fresh.jsonl` and `-fresh2.jsonl` … `-fresh10.jsonl` (the fresh
held-out splits) follow the same rules.
`eval/realistic-lilypond.jsonl`: every gold phrase must occur on its page of the cleaned manual
text and on no other page (`bench/lilypond.py`'s rules), and its points on that page.
Comparison is after `letters_key` (NFKC, lower case, letters and digits only).

    python bench/realistic_check.py [--lilypond-dir DIR]

Exit status 1 when any rule fails (the problems are listed in German).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lilypond import MANUALS, PageKey, cleaned_pages, problems  # noqa: E402
from quellenchat.types import letters_key  # noqa: E402
from retrieval.evaluation import SPLITS, EvalItem  # noqa: E402

FACT_SET = ROOT / "eval" / "realistic-faktenblatt.jsonl"
# Each fresh held-out split: its file, its split name and its id prefix.
FRESH_SETS = (
    (ROOT / "eval" / "realistic-faktenblatt-fresh.jsonl", "fresh", "fr-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh2.jsonl", "fresh2", "f2-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh3.jsonl", "fresh3", "f3-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh4.jsonl", "fresh4", "f4-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh5.jsonl", "fresh5", "f5-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh6.jsonl", "fresh6", "f6-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh7.jsonl", "fresh7", "f7-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh8.jsonl", "fresh8", "f8-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh9.jsonl", "fresh9", "f9-"),
    (ROOT / "eval" / "realistic-faktenblatt-fresh10.jsonl", "fresh10", "f10-"),
)
LILY_SET = ROOT / "eval" / "realistic-lilypond.jsonl"
SHEET = ROOT / "corpus" / "ki-faktenblatt.txt"
LILY_DIR = Path("/work/lilypond")
KINDS = {"fact", "list", "number", "yesno", "howto"}
MIN_ANSWERABLE, MIN_NEAR_MISSES, MIN_LILYPOND = 80, 25, 40


def read(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def field_problems(rows: list[dict[str, Any]], prefixes: tuple[str, ...]) -> list[str]:
    """Missing or wrong fields, unknown kinds and splits, duplicate ids and questions."""
    found = []
    ids = Counter(row.get("id") for row in rows)
    questions = Counter(row.get("question") for row in rows)
    for row in rows:
        name = row.get("id", "?")
        if not isinstance(name, str) or not name.startswith(prefixes) or ids[name] > 1:
            found.append(f"{name}: id fehlt, ist doppelt oder hat kein Präfix {prefixes}")
        if not isinstance(row.get("question"), str) or questions[row.get("question")] > 1:
            found.append(f"{name}: question fehlt oder ist doppelt")
        if not isinstance(row.get("answerable"), bool):
            found.append(f"{name}: answerable muss true oder false sein")
        if row.get("kind") not in KINDS:
            found.append(f"{name}: kind {row.get('kind')!r} nicht in {sorted(KINDS)}")
        if row.get("split") not in SPLITS:
            found.append(f"{name}: split {row.get('split')!r} nicht in {sorted(SPLITS)}")
        golds, points = row.get("golds"), row.get("points")
        if not isinstance(golds, list) or not isinstance(points, list):
            found.append(f"{name}: golds und points müssen Listen sein")
            continue
        if row.get("answerable"):
            if not row.get("gold") or not golds or not points:
                found.append(f"{name}: beantwortbar, aber gold, golds oder points leer")
            elif letters_key(row["gold"]) not in {letters_key(g) for g in golds}:
                found.append(f"{name}: gold steht nicht in golds")
        elif row.get("gold") is not None or golds or points:
            found.append(f"{name}: unbeantwortbar, aber gold/golds/points gesetzt")
    return found


def occurs(point: str, text: str) -> bool:
    """Whether one of the alternatives `a|b` of a point occurs in a letters_key text."""
    return any(letters_key(alt) and letters_key(alt) in text for alt in point.split("|"))


def sheet_problems(rows: list[dict[str, Any]], sheet: str) -> list[str]:
    """Gold phrases not in the sheet; points not in the paragraphs holding the golds."""
    paragraphs = [letters_key(block) for block in re.split(r"\n\s*\n", sheet)]
    found = []
    for row in rows:
        if not row.get("answerable"):
            continue
        held = set()
        for phrase in row["golds"]:
            where = {n for n, text in enumerate(paragraphs) if letters_key(phrase) in text}
            if not where:
                found.append(f"{row['id']}: „{phrase}“ steht nicht im Faktenblatt")
            held |= where
        text = " ".join(paragraphs[n] for n in sorted(held))
        found += [
            f"{row['id']}: Punkt „{point}“ steht nicht in den Gold-Absätzen"
            for point in row["points"]
            if not occurs(point, text)
        ]
    return found


def manual_paths(folder: Path) -> list[Path]:
    """The two manuals: under `folder` if there, else fetched via bench.run."""
    found = {p.name: p for p in folder.rglob("*.de.pdf")} if folder.is_dir() else {}
    if not all(name in found for name in MANUALS):
        from bench.run import lilypond_pdfs

        found = {p.name: p for p in lilypond_pdfs()}
    return [found[name] for name in MANUALS if name in found]


def lilypond_problems(rows: list[dict[str, Any]], pages: dict[PageKey, str]) -> list[str]:
    """bench/lilypond.py's page rules for gold and golds, points on the page, source and page."""
    found = []
    items = []
    for row in rows:
        if row.get("source") not in MANUALS or not isinstance(row.get("page"), int):
            found.append(f"{row['id']}: source muss {MANUALS} sein und page eine Zahl")
            continue
        for phrase in row["golds"]:
            items.append(
                (row["id"], EvalItem(row["question"], phrase, True, row["source"], row["page"]))
            )
        words = len(str(row["gold"]).split())
        if not 4 <= words <= 10:
            found.append(f"{row['id']}: gold hat {words} Wörter (4–10)")
        text = letters_key(pages.get((row["source"], row["page"]), ""))
        found += [
            f"{row['id']}: Punkt „{point}“ steht nicht auf S. {row['page']}"
            for point in row["points"]
            if not occurs(point, text)
        ]
    for line in problems([item for _, item in items], pages):
        number, _, rest = line.partition(":")
        found.append(f"{items[int(number) - 1][0]}:{rest}")
    return found


def counts(rows: list[dict[str, Any]]) -> str:
    """A small table: kind by split, answerable and near-misses apart."""
    table = Counter((row["answerable"], row["kind"], row["split"]) for row in rows)
    lines = []
    for answerable in (True, False):
        label = "beantwortbar" if answerable else "near-miss"
        total = sum(n for (a, _, _), n in table.items() if a == answerable)
        if not total:
            continue
        lines.append(f"  {label}: {total}")
        splits = [s for s in SPLITS if any(k[2] == s for k in table)]
        for kind in sorted(KINDS):
            found = [(split, table[(answerable, kind, split)]) for split in splits]
            if any(n for _, n in found):
                lines.append(f"    {kind:<7} " + "  ".join(f"{s} {n:>3}" for s, n in found))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lilypond-dir", type=Path, default=LILY_DIR)
    args = parser.parse_args(argv)

    found: list[str] = []
    facts = read(FACT_SET)
    found += field_problems(facts, ("fb-", "nm-"))
    found += sheet_problems(facts, SHEET.read_text(encoding="utf-8"))
    answerable = sum(1 for row in facts if row.get("answerable"))
    if answerable < MIN_ANSWERABLE or len(facts) - answerable < MIN_NEAR_MISSES:
        found.append(
            f"Faktenblatt: {answerable} beantwortbar (≥{MIN_ANSWERABLE}), "
            f"{len(facts) - answerable} near-miss (≥{MIN_NEAR_MISSES})"
        )
    print(f"{FACT_SET.name}: {len(facts)} Fragen\n{counts(facts)}")

    for path, split, prefix in FRESH_SETS:
        fresh = read(path)
        found += field_problems(fresh, (prefix,))
        found += sheet_problems(fresh, SHEET.read_text(encoding="utf-8"))
        found += [
            f"{row.get('id')}: split {row.get('split')!r} statt {split!r}"
            for row in fresh
            if row.get("split") != split
        ]
        print(f"{path.name}: {len(fresh)} Fragen\n{counts(fresh)}")

    lily = read(LILY_SET)
    found += field_problems(lily, ("ly-",))
    paths = manual_paths(args.lilypond_dir)
    if len(paths) != len(MANUALS):
        found.append(f"LilyPond-Handbücher nicht gefunden ({MANUALS})")
    else:
        pages = {(p.name, n): text for p in paths for n, text in cleaned_pages(p).items()}
        found += lilypond_problems(lily, pages)
    if len(lily) < MIN_LILYPOND:
        found.append(f"LilyPond: {len(lily)} Fragen (≥{MIN_LILYPOND})")
    by_source = Counter(row.get("source") for row in lily)
    print(f"{LILY_SET.name}: {len(lily)} Fragen {dict(by_source)}\n{counts(lily)}")

    for line in found:
        print(f"PROBLEM {line}", file=sys.stderr)
    print("ok" if not found else f"{len(found)} Probleme")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
