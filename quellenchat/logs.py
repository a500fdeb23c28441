"""Logging for the app and the CLIs: plain lines on stderr, at the level the settings name."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Our own loggers, and uvicorn's (start-up, access lines), log at the configured level; other
# libraries only from WARNING on (at INFO, httpx and chromadb log every request), unless DEBUG.
OWN = ("quellenchat", "ingest", "retrieval", "chat_app", "uvicorn")


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        """The current stderr."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current stderr."""


class _LevelFilter(logging.Filter):
    """Our records from `level` on, other libraries' from `libraries` on (some set DEBUG)."""

    def __init__(self, level: int, libraries: int) -> None:
        super().__init__()
        self.level = level
        self.libraries = libraries

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN
        return record.levelno >= (self.level if own else self.libraries)


def configure_logging(level: str) -> None:
    """Send log records of `level` and above to stderr, one plain line each."""
    number = logging.getLevelNamesMapping()[level]
    libraries = number if number == logging.DEBUG else max(logging.WARNING, number)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_LevelFilter(number, libraries))
    logging.basicConfig(level=libraries, handlers=[handler], force=True)
    for name in OWN:
        logging.getLogger(name).setLevel(number)
