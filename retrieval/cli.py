"""`python -m retrieval search|eval`: German output; --json puts only JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quellenchat.cli_args import add_store_arguments, check_store_arguments, cli_settings
from quellenchat.settings import Settings
from quellenchat.storage import StoreError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("search", "ask") and (args.question is None) == (args.questions is None):
        parser.error("entweder eine Frage oder --questions DATEI angeben")
    if args.command == "eval" and (args.file is None) == (args.squad is None):
        parser.error("entweder DATEI.jsonl oder --squad DATEI.json angeben")
    check_store_arguments(parser, args)
    if args.command == "eval" and args.squad is not None and args.chroma_url is not None:
        parser.error("--squad liest in einen temporären Index ein, nie in einen Chroma-Server")
    try:
        return int(args.handler(args))
    except (OSError, ValueError, StoreError) as exc:
        print(f"FEHLER: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m retrieval", description="Suche im Quellenindex."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="Passagen zu einer Frage finden")
    search.add_argument("question", nargs="?", help="die Frage (auf Deutsch)")
    search.add_argument(
        "--questions", type=Path, help="Datei mit einer Frage je Zeile (JSON Lines aus)"
    )
    _common(search)
    search.set_defaults(handler=_search)

    ask = commands.add_parser("ask", help="Frage beantworten, mit geprüften Zitaten")
    ask.add_argument("question", nargs="?", help="die Frage (auf Deutsch)")
    ask.add_argument(
        "--questions", type=Path, help="Datei mit einer Frage je Zeile (JSON Lines aus)"
    )
    ask.add_argument(
        "--backend",
        choices=["extractive", "local", "openai"],
        help="Antwort-Backend (Standard: QUELLENCHAT_LLM_BACKEND, sonst local bzw. extractive)",
    )
    add_store_arguments(ask)
    ask.add_argument("--json", action="store_true", help="nur JSON auf stdout")
    ask.set_defaults(handler=_ask)

    evaluate = commands.add_parser("eval", help="Trefferquoten auf einem Fragen-Set messen")
    evaluate.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="JSONL mit question, gold, answerable (optional source und page: Treffer nur dort)",
    )
    evaluate.add_argument("--squad", type=Path, help="SQuAD-Datei: Absätze in temporären Index")
    _common(evaluate)
    evaluate.set_defaults(handler=_eval)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=10, help="Anzahl Passagen (Standard 10)")
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="nur JSON auf stdout")


def _searcher(settings: Settings) -> Any:
    from retrieval.search import Searcher

    if not settings.chroma_url and not settings.store.exists():
        raise OSError(
            f"Speicher {settings.store} existiert nicht – zuerst `python -m ingest` ausführen"
        )
    return Searcher(settings)


def _search(args: argparse.Namespace) -> int:
    searcher = _searcher(cli_settings(args))
    questions = (
        [args.question]
        if args.questions is None
        else [q for q in args.questions.read_text(encoding="utf-8").splitlines() if q.strip()]
    )
    for question in questions:
        passages = searcher.search(question, args.k)
        if args.json or args.questions is not None:
            payload = {"query": question, "passages": [p.to_json() for p in passages]}
            print(json.dumps(payload, ensure_ascii=False), flush=True)
        else:
            _print_listing(question, passages)
    return 0


def _ask(args: argparse.Namespace) -> int:
    from retrieval.answering import Answerer, QuestionError

    settings = cli_settings(args)
    answerer = Answerer(settings, searcher=_searcher(settings))
    if args.questions is None:
        answer = answerer.ask(args.question, backend=args.backend)
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            _print_answer(answer)
        return 0
    # One object per line, in order; a bad line gets an `error` object and the rest go on.
    failed = 0
    lines = args.questions.read_text(encoding="utf-8").splitlines()
    for number, question in enumerate(lines, start=1):
        if not question.strip():
            continue
        try:
            payload = answerer.ask(question, backend=args.backend).to_json()
        except QuestionError as exc:
            failed += 1
            payload = {"question": question, "line": number, "error": str(exc)}
            print(f"FEHLER: {args.questions}, Zeile {number}: {exc}", file=sys.stderr)
        print(json.dumps(payload, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def _print_answer(answer: Any) -> None:
    print(f"Frage: {answer.question}")
    if answer.standalone_question and answer.standalone_question != answer.question:
        print(f"(gesucht als: {answer.standalone_question})")
    if answer.notice:
        print(f"Hinweis: {answer.notice}")
    print(f"\n{answer.answer}\n")
    if answer.citations:
        print("Quellen:")
    for c in answer.citations:
        mark = "geprüft" if c.verified else "NICHT geprüft"
        print(f"[{c.n}] {_titled(c.passage)} – {_place(c.passage)} ({mark})")
        print(f"    „{c.quote}“")
        if c.passage.url:
            print(f"    {c.passage.url}")
    if answer.related:
        print("Möglicherweise verwandt (kein Beleg):")
        for p in answer.related:
            print(f"  - {_titled(p)} – {_place(p)}")
    print(f"(Backend: {answer.backend})")


def _print_listing(question: str, passages: Sequence[Any]) -> None:
    print(f"Frage: {question}")
    if not passages:
        print("Keine Passagen gefunden.")
    for n, p in enumerate(passages, start=1):
        print(
            f"\n[{n}] {_titled(p)} – {_place(p)} "
            f"(Score {p.score:.4f}, Ähnlichkeit {p.similarity:.3f})"
        )
        for sentence in p.key_sentences:
            print(f"    » {sentence}")
        if p.url:
            print(f"    {p.url}")


def _titled(passage: Any) -> str:
    """The title with publisher and year, as far as the metadata states them."""
    from retrieval.citation_text import origin

    who = origin(passage)
    return f"{passage.title} ({who})" if who else passage.title


def _place(passage: Any) -> str:
    parts = []
    if passage.page is not None:
        label = f" (gedruckt: {passage.page_label})" if passage.page_label else ""
        parts.append(f"S. {passage.page}{label}")
    if passage.section:
        parts.append(f"Abschnitt „{passage.section}“")
    parts.append(passage.source)
    return ", ".join(parts)


def _eval(args: argparse.Namespace) -> int:
    from retrieval.evaluation import evaluate, read_items
    from retrieval.refusal import default_threshold, default_weighing

    if args.squad is None:
        items = read_items(args.file)
        searcher = _searcher(cli_settings(args))
        threshold = searcher.settings.refusal_threshold
        if threshold is None:  # the configured embedder's own default
            threshold = default_threshold(searcher.settings.embedder)
        weighing = default_weighing(searcher.settings.embedder)
        result = evaluate(items, lambda q: searcher.search(q, args.k), threshold, weighing)
        return _print_eval(result, args.json)
    with tempfile.TemporaryDirectory(prefix="quellenchat-squad-") as tmp:
        return _eval_squad(args, Path(tmp))


def _eval_squad(args: argparse.Namespace, tmp: Path) -> int:
    # A throwaway store for the benchmark: the only place where retrieval calls the writer.
    from ingest.run import run_ingest
    from retrieval.evaluation import evaluate, squad_corpus

    corpus = tmp / "corpus"
    corpus.mkdir()
    items = squad_corpus(args.squad, corpus)
    # Never the configured Chroma server: the benchmark's paragraphs must not land in it.
    settings = cli_settings(args, corpus=[corpus], store=tmp / "store", chroma_url=None)
    from quellenchat.embedding import make_embedder
    from retrieval.search import Searcher

    embedder = make_embedder(settings)  # one model for the ingest and the search
    report = run_ingest(settings, log=lambda m: print(m, file=sys.stderr), embedder=embedder)
    if report.exit_code == 2:
        raise OSError(report.error or "Einlesen fehlgeschlagen")
    searcher = Searcher(settings, embedder=embedder)
    result = evaluate(items, lambda q: searcher.search(q, args.k))
    return _print_eval(result, args.json)


def _print_eval(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{result['questions']} Fragen, davon {result['answerable']} beantwortbar")
    print("  ".join(f"{k}: {v:.3f}" for k, v in result.items() if k.startswith(("hit@", "mrr"))))
    for label, key in (
        ("beantwortbar", "top_similarity_answerable"),
        ("nicht beantwortbar", "top_similarity_unanswerable"),
    ):
        d = result[key]
        if d:
            print(
                f"Ähnlichkeit der besten Passage, {label} (n={d['n']}): min {d['min']:.3f}, "
                f"Median {d['median']:.3f}, max {d['max']:.3f}"
            )
    _print_refusal(result)
    return 0


def _print_refusal(result: dict[str, Any]) -> None:
    """The evidence strengths of both groups and the refusal threshold they calibrate."""
    for label, key in (
        ("beantwortbar", "evidence_strength_answerable"),
        ("nicht beantwortbar", "evidence_strength_unanswerable"),
    ):
        d = result[key]
        if d:
            print(
                f"Evidenzstärke, {label} (n={d['n']}): min {d['min']:.4f}, p25 {d['p25']:.4f}, "
                f"Median {d['median']:.4f}, p75 {d['p75']:.4f}, max {d['max']:.4f}"
            )
    for label, key in (("kalibriert", "refusal_calibrated"), ("aktuell", "refusal_current")):
        rates = result[key]
        if rates is None:
            continue
        kept, refused = rates["answerable_kept"], rates["unanswerable_refused"]
        print(
            f"Ablehnungsschwelle {label}: {rates['threshold']:.4f} – beantwortbare behalten "
            + ("–" if kept is None else f"{kept:.2f}")
            + ", nicht beantwortbare abgelehnt "
            + ("–" if refused is None else f"{refused:.2f}")
        )
