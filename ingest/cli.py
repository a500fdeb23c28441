"""Command line: `python -m ingest`, its subcommands `status` and `fetch`.

    python -m ingest [--corpus DIR]… [--store DIR | --chroma-url URL] [--dry-run] [--rebuild]
                     [--json]
    python -m ingest status [--store DIR | --chroma-url URL] [--json]
    python -m ingest fetch [--manifest FILE] [--dest DIR] [--json]

With `--json`, stdout carries only JSON; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quellenchat.cli_args import add_store_arguments, check_store_arguments, cli_settings
from quellenchat.settings import Settings

SUBCOMMANDS = ("status", "fetch")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "status":
        return _status(args[1:])
    if args and args[0] == "fetch":
        return _fetch(args[1:])
    return _ingest(args)


def _common(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="Ergebnis als JSON auf stdout")


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    check_store_arguments(parser, args)
    return args


def _settings(args: argparse.Namespace) -> Settings:
    corpus = getattr(args, "corpus", None)
    return cli_settings(args, **({"corpus": corpus} if corpus else {}))


def _ingest(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Liest das Korpus ein und bringt den Index auf den neuesten Stand "
        "(nur Geändertes wird neu eingebettet). Weitere Befehle: status, fetch.",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="Korpus-Ordner (mehrfach möglich; ersetzt dann den Standard corpus/)",
    )
    _common(parser)
    parser.add_argument("--dry-run", action="store_true", help="nur den Plan zeigen, nichts ändern")
    parser.add_argument("--rebuild", action="store_true", help="Index komplett neu aufbauen")
    args = _parse(parser, argv)

    from ingest.run import run_ingest

    report = run_ingest(
        _settings(args),
        dry_run=args.dry_run,
        rebuild=args.rebuild,
        log=_stderr,
        show_progress=sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    _print_summary(report.to_json(), report.done())
    return report.exit_code


def _print_summary(summary: dict[str, Any], done: str) -> None:
    if summary["error"]:
        _stderr(f"FEHLER: {summary['error']}")
        return
    for item in summary["skipped"]:
        _stderr(f"übersprungen: {item['source']}: {item['reason']}")
    verb = "Geplant" if summary["dry_run"] else "Erledigt"
    _stderr(
        f"{verb}: {done}. {summary['chunks_embedded']} Chunks eingebettet, "
        f"{len(summary['skipped'])} Dateien übersprungen, {summary['seconds']:.1f} s. "
        f"Index: {summary['documents_total']} Dokumente, {summary['chunks_total']} Chunks "
        f"({summary['store']})."
    )


def _status(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest status", description="Zeigt, was der Index enthält."
    )
    _common(parser)
    args = _parse(parser, argv)
    settings = _settings(args)

    from quellenchat.storage import StoreError, open_client, read_sources

    try:
        records = read_sources(open_client(settings))
    except StoreError as exc:
        _stderr(f"FEHLER: {exc}")
        return 2
    rows: list[dict[str, Any]] = [
        {
            "source": r.source,
            "title": r.info.title,
            "kind": r.info.kind,
            "year": r.info.year,
            "pages": r.pages,
            "chunks": r.chunks,
            "sha256": r.doc_sha,
            "ingested_at": r.ingested_at,
        }
        for r in records
    ]
    if args.json:
        print(
            json.dumps(
                {"store": str(settings.chroma_url or settings.store), "documents": rows},
                ensure_ascii=False,
            )
        )
        return 0
    print(
        f"Index {settings.chroma_url or settings.store}: {len(rows)} Dokumente, "
        f"{sum(r['chunks'] for r in rows)} Chunks"
    )
    for row in rows:
        print(
            f"- {row['title']} ({row['source']}): {row['pages']} Seiten/Abschnitte, "
            f"{row['chunks']} Chunks, sha256 {row['sha256'][:12]}, eingelesen {row['ingested_at']}"
        )
    return 0


def _fetch(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest fetch",
        description="Lädt die PDF-Dokumente der Literaturliste (literature.toml) herunter; "
        "danach liest `python -m ingest` nur Neues und Geändertes ein. Braucht Internet.",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        help="Literaturliste (Standard: literature.toml im ersten Korpus-Ordner)",
    )
    parser.add_argument(
        "--dest", type=Path, help="Zielordner (Standard: der Ordner „folder“ der Literaturliste)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Sekunden je Verbindungsaufbau bzw. Lesen"
    )
    parser.add_argument("--json", action="store_true", help="Ergebnis als JSON auf stdout")
    args = parser.parse_args(argv)

    from ingest.corpus import LITERATURE_FILE
    from ingest.fetch import FetchLimits, fetch_literature

    manifest = args.manifest or Settings().corpus[0] / LITERATURE_FILE
    report = fetch_literature(
        manifest, args.dest, limits=FetchLimits(timeout=args.timeout), log=_stderr
    )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    if report.error:
        _stderr(f"FEHLER: {report.error}")
    else:
        hint = (
            " Nächster Schritt: python -m ingest"
            if report.files("new") or report.files("changed")
            else ""
        )
        _stderr(f"Literatur: {report.summary()} ({report.seconds:.1f} s).{hint}")
    return report.exit_code


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
