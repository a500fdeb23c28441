"""What both command lines share: where the store is, and the settings that follow from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quellenchat.logs import configure_logging
from quellenchat.settings import Settings


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """`--store DIR` or `--chroma-url URL` (see `check_store_arguments`)."""
    parser.add_argument("--store", type=Path, help="Speicher-Ordner (Standard: data/store)")
    parser.add_argument(
        "--chroma-url",
        metavar="URL",
        help="Chroma-Server statt eingebettetem Speicher (Standard: QUELLENCHAT_CHROMA_URL)",
    )


def check_store_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a folder and a server at once."""
    if args.store is not None and args.chroma_url is not None:
        parser.error("--store und --chroma-url schließen sich aus (Ordner oder Server)")


def cli_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, the store arguments and `overrides`; logging configured."""
    if args.store is not None:  # an explicit folder means the embedded store, whatever the env
        overrides.setdefault("store", args.store)
        overrides.setdefault("chroma_url", None)
    if args.chroma_url is not None:
        overrides.setdefault("chroma_url", args.chroma_url)
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    return settings
