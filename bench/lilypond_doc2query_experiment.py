"""Experiment (issue #14): questions written by the local model per chunk, on the LilyPond manuals.

The doc2query lever of `bench/doc2query_experiment.py`, measured on the set farthest from its
target: the bundled LLM writes three questions a musician would ask about a section of the two
German manuals, in everyday words rather than the section's technical terms. At search time each
passage of the hybrid search's top 10 gets a bonus of `weight` × the best cosine between the
user's question and that chunk's written questions (both embedded as queries), and the ten are
re-sorted (`reranked` of the fact-sheet experiment).

Since the bonus only touches the top 10, questions are written lazily, only for the chunks that
appear in the hybrid top 10 of some question of `eval/realistic-lilypond.jsonl` (all splits);
for this design that equals writing them for every chunk. They are cached per chunk id and prompt
in `data/bench-cache/lily-doc2query/`, so a second run generates nothing. The prompt names only
the titles of the manuals, as the app could; no LilyPond knowledge of our own. The weight is
chosen on the tune split only; heldout is reported beside it.

`python bench/lilypond_doc2query_experiment.py` writes `bench/results/lilypond-doc2query.md`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.doc2query_experiment import WEIGHTS, reranked  # noqa: E402
from bench.lilypond_rewrite_experiment import SPLITS, TITLES, gemma_manuals  # noqa: E402
from bench.realistic_bench import CACHE, LILYPOND_SET  # noqa: E402
from quellenchat.settings import Settings  # noqa: E402
from retrieval.evaluation import EvalItem, evaluate, read_items, split_items  # noqa: E402
from retrieval.passages import Passage  # noqa: E402

PROMPT = (
    "Hier ist ein Abschnitt aus den deutschen Handbüchern {titles}.\n\nAbschnitt:\n{text}\n\n"
    "Schreibe drei kurze Fragen, die dieser Abschnitt beantwortet, so wie ein Musiker sie in "
    "eigenen Worten stellen würde – mit Alltagswörtern statt der Fachbegriffe des Abschnitts. "
    "Eine Frage je Zeile, ohne Nummern, ohne weitere Erklärung."
)
PROMPT_KEY = hashlib.sha1(PROMPT.encode()).hexdigest()[:12]
MAX_TOKENS = 120


def lily_questions(
    settings: Settings, chunks: dict[str, str]
) -> tuple[dict[str, list[str]], dict[str, float], int]:
    """Three questions per chunk, cached per chunk id and prompt with the seconds generation took
    (kept, so a rerun from the cache still reports the cost); how many were generated now."""
    from langchain_core.messages import HumanMessage

    from retrieval.llm import make_chat_model

    cache = CACHE / "lily-doc2query" / PROMPT_KEY
    cache.mkdir(parents=True, exist_ok=True)
    model = None
    seconds: dict[str, float] = {}
    found: dict[str, list[str]] = {}
    generated = 0
    for n, (chunk_id, text) in enumerate(chunks.items(), 1):
        path = cache / f"{hashlib.sha1(chunk_id.encode()).hexdigest()}.json"
        if not path.exists():
            model = model or make_chat_model(settings, "local")
            prompt = PROMPT.format(titles=TITLES, text=text[:1500])
            started = time.perf_counter()
            reply = model.invoke([HumanMessage(prompt)], max_tokens=MAX_TOKENS)
            spent = time.perf_counter() - started
            generated += 1
            lines = [
                line.strip(" -•*0123456789.").strip() for line in str(reply.content).splitlines()
            ]
            kept = [q for q in lines if q.endswith("?")][:3]
            record = {"questions": kept, "seconds": round(spent, 2)}
            path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            print(f"{n}/{len(chunks)} erzeugt in {spent:.1f} s: {kept}", flush=True)
        stored = json.loads(path.read_text(encoding="utf-8"))
        found[chunk_id] = stored["questions"]
        seconds[chunk_id] = stored["seconds"]
    return found, seconds, generated


def figures(
    items: Sequence[EvalItem], search: Callable[[str], list[Passage]]
) -> dict[str, dict[str, Any]]:
    return {split: evaluate(split_items(items, split), search) for split in SPLITS}


def cell(r: dict[str, Any]) -> str:
    return f"{r['hit@1']:.2f} · {r['hit@5']:.2f} · MRR {r['mrr@10']:.2f}"


def main() -> int:
    from bench.run import machine

    manuals = gemma_manuals()
    if manuals is None:
        return 1
    settings, searcher = manuals
    snapshot = searcher.snapshot()
    items = read_items(LILYPOND_SET)
    needed: dict[str, str] = {}
    for item in items:
        for p in searcher.search(item.question, 10):
            needed.setdefault(p.id, snapshot.chunks[p.id].text)
    questions, seconds_by_chunk, generated = lily_questions(settings, needed)
    # A request cannot take longer than `llm_timeout` unless this process was halted meanwhile
    # (seen: the concurrent benchmark stopped it for a quarter of an hour); such times are dropped.
    seconds = [s for s in seconds_by_chunk.values() if s <= settings.llm_timeout]
    halted = len(seconds_by_chunk) - len(seconds)
    vectors = {
        cid: np.stack([searcher.embedder.embed_query(q) for q in qs]) if qs else np.zeros((0,))
        for cid, qs in questions.items()
    }
    results = {w: figures(items, reranked(searcher, vectors, w)) for w in WEIGHTS}
    chosen = max(
        WEIGHTS, key=lambda w: (results[w]["tune"]["hit@1"], results[w]["tune"]["mrr@10"], -w)
    )
    rows = []
    for w in WEIGHTS:
        mark = " (gewählt)" if w == chosen else ""
        rows.append(f"| {w}{mark} | {cell(results[w]['tune'])} | {cell(results[w]['heldout'])} |")
        print(rows[-1], flush=True)
    total = len(snapshot.chunks)
    empty = sum(1 for qs in questions.values() if not qs)
    cost = (
        f"Erzeugung je Eintrag (lokales Modell, höchstens {MAX_TOKENS} Tokens, Dauer beim "
        f"ersten Erzeugen mit im Cache gespeichert): p50 {np.median(seconds):.1f} s, p95 "
        f"{np.percentile(seconds, 95):.1f} s, Mittel {np.mean(seconds):.1f} s, längste "
        f"{max(seconds):.0f} s, zusammen {sum(seconds) / 60:.0f} min für {len(seconds)} Einträge "
        f"({generated} von {len(seconds_by_chunk)} in diesem Lauf erzeugt, die übrigen aus dem "
        f"Cache; {halted} Zeiten über {settings.llm_timeout:g} s nicht mitgezählt – dort war der "
        "Prozess während der Anfrage angehalten, eine Anfrage selbst bricht nach dieser Frist "
        "ab). Hochgerechnet "
        f"auf alle {total} Einträge der beiden Handbücher beim Einlesen: "
        f"{total * np.median(seconds) / 3600:.1f} h nach dem Median, "
        f"{total * np.mean(seconds) / 3600:.1f} h nach dem Mittel, auf dieser Maschine."
    )
    lines = [
        "# Experiment: vom lokalen Modell geschriebene Fragen je Abschnitt (doc2query), LilyPond",
        "",
        f"Maschine: {machine()}. LilyPond-Handbücher (Seite exakt), EmbeddingGemma-300M, "
        "hybride Suche; Bonus in den ersten 10 = Gewicht × beste Kosinus-Ähnlichkeit zwischen "
        "Frage und den geschriebenen Fragen des Eintrags, neu sortiert. hit@1 · hit@5 · MRR. "
        "Gewicht nur auf tune gewählt (hit@1, dann MRR, dann das kleinere Gewicht).",
        "",
        "| Gewicht | tune | heldout |",
        "|---|---|---|",
        *rows,
        "",
        f"Auf tune gewählt: Gewicht {chosen} (heldout dort {cell(results[chosen]['heldout'])}; "
        f"ohne Bonus {cell(results[0.0]['heldout'])}).",
        "",
        "## Kosten",
        "",
        f"Fragen geschrieben nur für die {len(needed)} Einträge, die bei einer der {len(items)} "
        "Fragen (alle Splits) unter den ersten 10 der hybriden Suche stehen – der Bonus wirkt "
        "nur dort, das ist für diesen Aufbau dasselbe wie doc2query für alle Einträge. "
        f"Einträge ohne verwertbare Frage (keine Zeile mit „?“): {empty}.",
        "",
        cost,
        "",
        "Die Zeiten sind verrauscht: auf den 2 Kernen lief zur selben Zeit ein anderer Benchmark "
        "mit eigenem Sprachmodell-Server; ohne ihn dürfte die Erzeugung deutlich schneller sein.",
        "",
        "## Beispiele (erste fünf Einträge)",
        "",
    ]
    for cid, qs in list(questions.items())[:5]:
        lines.append(f"- {needed[cid][:80]!r} → {qs}")
    out = ROOT / "bench" / "results" / "lilypond-doc2query.md"
    out.write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
