"""Reading documents from disk: text files with encoding detection, PDFs page by page.

All I/O of the ingest lives here; every failure becomes a `DocumentError` with a German message
that names the file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError
from wordfreq import zipf_frequency

from ingest.cleaning import fix_ligatures, fix_spacing_diacritics

log = logging.getLogger(__name__)

# A fresh reader every this many pages: pypdf caches every object it has parsed (including
# decoded content streams) for the reader's lifetime, so one reader over a 1,000-page PDF grows.
PAGES_PER_READER = 64


class DocumentError(Exception):
    """A document that cannot be ingested; `str(error)` is a German message naming the file."""


def _error(path: Path, reason: str) -> DocumentError:
    return DocumentError(f"{path.name}: {reason}")


# --------------------------------------------------------------------------------------------
# Text files
# --------------------------------------------------------------------------------------------


def read_text_file(path: Path) -> tuple[str, str]:
    """Read a text file as UTF-8 (with or without BOM), else cp1252, else latin-1.

    Returns:
        The text (without BOM) and the encoding used: "utf-8", "utf-16", "cp1252" or "latin-1".

    Raises:
        DocumentError: the file is missing, unreadable, empty or binary.
    """
    data = _read_bytes(path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _error(path, "UTF-16-Text ist fehlerhaft kodiert") from exc
    if b"\x00" in data:
        raise _error(path, "Datei enthält Binärdaten und ist keine Textdatei")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _read_bytes(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise _error(path, "Datei nicht gefunden") from exc
    except OSError as exc:
        raise _error(path, f"Datei kann nicht gelesen werden ({exc.strerror or exc})") from exc
    if not data:
        raise _error(path, "Datei ist leer (0 Byte)")
    return data


# --------------------------------------------------------------------------------------------
# PDF files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawPdfPage:
    """The raw extracted text of one PDF page."""

    number: int  # 1-based physical page
    label: str | None  # printed page label (pypdf `page_labels`) where it differs from `number`
    text: str


def iter_pdf_pages(path: Path) -> Iterator[RawPdfPage]:
    """Yield the pages of a PDF one by one, with the better of plain and layout extraction.

    Memory stays flat for long PDFs: a fresh reader is opened every `PAGES_PER_READER` pages and
    no page object outlives its page. Leading pages without text are held back until a page with
    text appears, so a PDF without any text layer raises before yielding anything.

    Raises:
        DocumentError: missing, empty, corrupt or encrypted (password needed) PDF, or no text
            layer on any page.
    """
    path = Path(path)
    _check_not_empty(path)
    labels = _page_labels(path)
    held: list[RawPdfPage] = []
    has_text = False
    for number, text in _extract_all(path, len(labels)):
        label = labels[number - 1]
        page = RawPdfPage(number, label if label != str(number) else None, text)
        if has_text:
            yield page
            continue
        held.append(page)
        if text.strip():
            has_text = True
            yield from held
            held.clear()
    if not has_text:
        raise _error(path, "keine Textebene – OCR nötig")


def _check_not_empty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise _error(path, "Datei nicht gefunden") from exc
    except OSError as exc:
        raise _error(path, f"Datei kann nicht gelesen werden ({exc.strerror or exc})") from exc
    if size == 0:
        raise _error(path, "Datei ist leer (0 Byte)")


def _page_labels(path: Path) -> list[str]:
    """Open the PDF once to check it; its printed page labels, one per page."""
    with _open_binary(path) as stream:
        reader = _open_reader(path, stream)
        count = _page_count(path, reader)
        try:
            labels = list(reader.page_labels)
        except Exception:  # a broken label tree is no reason to reject the document
            log.warning("%s: Seitenbeschriftungen nicht lesbar", path.name, exc_info=True)
            labels = []
    if count == 0:
        raise _error(path, "PDF enthält keine Seiten")
    if len(labels) != count:
        labels = [str(n) for n in range(1, count + 1)]
    return labels


def _open_binary(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise _error(path, f"Datei kann nicht gelesen werden ({exc.strerror or exc})") from exc


def _open_reader(path: Path, stream: BinaryIO) -> PdfReader:
    """A reader for `stream`, decrypted with the empty password where needed."""
    try:
        reader = PdfReader(stream)
        encrypted = reader.is_encrypted
    except DependencyError as exc:
        raise _missing_crypto(path) from exc
    except Exception as exc:
        raise _error(path, "PDF ist beschädigt und kann nicht gelesen werden") from exc
    if encrypted:
        _decrypt(path, reader)
    return reader


def _decrypt(path: Path, reader: PdfReader) -> None:
    try:
        result = reader.decrypt("")
    except DependencyError as exc:
        raise _missing_crypto(path) from exc
    except Exception as exc:
        raise _error(path, "PDF ist verschlüsselt und kann nicht entschlüsselt werden") from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise _error(path, "PDF ist verschlüsselt (Passwort nötig)")


def _missing_crypto(path: Path) -> DocumentError:
    """AES needs `cryptography` (a dependency); a broken install must not say „beschädigt“."""
    return _error(
        path, "PDF ist verschlüsselt (AES); zum Öffnen fehlt das Python-Paket cryptography"
    )


def _page_count(path: Path, reader: PdfReader) -> int:
    try:
        return len(reader.pages)
    except DependencyError as exc:
        raise _missing_crypto(path) from exc
    except Exception as exc:
        raise _error(path, "PDF ist beschädigt und kann nicht gelesen werden") from exc


def _extract_all(path: Path, count: int) -> Iterator[tuple[int, str]]:
    """(1-based page number, text) for every page, reopening the reader in batches."""
    failed = 0
    for first in range(0, count, PAGES_PER_READER):
        with _open_binary(path) as stream:
            reader = _open_reader(path, stream)
            for index in range(first, min(first + PAGES_PER_READER, count)):
                text = _extract_page(path, reader, index)
                failed += text is None
                yield index + 1, text or ""
        del reader
    if failed == count:
        raise _error(path, "PDF ist beschädigt und kann nicht gelesen werden")


def _extract_page(path: Path, reader: PdfReader, index: int) -> str | None:
    """The page's text, or None if pypdf fails on this page (logged, the page stays empty)."""
    try:
        return extract_page_text(reader.pages[index])
    except Exception:  # one broken page must not lose the whole document
        log.warning("%s: Seite %d nicht lesbar", path.name, index + 1, exc_info=True)
        return None


# --------------------------------------------------------------------------------------------
# Plain versus layout extraction
# --------------------------------------------------------------------------------------------


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


KNOWN_ZIPF = 1.0  # a token at least this frequent in German or English is a known word
LAYOUT_MARGIN = 0.02  # layout text must beat plain text by this share of known words
PART_ZIPF = 3.0  # a content word inside a glued token is at least this frequent …
PART_MIN = 4  # … and at least this long (shorter pieces are mostly fragments: "er", "sarg")
# Function words that glue to their neighbours but are no compound parts (unlike auf, um, an).
_FUNCTION_WORDS = _word_set(
    """es der die das den dem des und oder aber ist sind war wird werden wurde hat haben sie
    wir ihr ich nicht auch sich man kann können muss soll eine einen einem einer eines
    dass wenn wie als noch nur schon sehr doch the and that this with have has was were
    you"""
)
# Function words that also end inflected words ("addieren|den"): never glued at the end.
_ENDINGS = frozenset(["den", "dem", "des", "der", "die", "das", "es"])
_WORD = re.compile(r"[^\W\d_]+")


def extract_page_text(page: PageObject) -> str:
    """Plain extraction, or layout extraction where plain glues words and layout scores better.

    Layout mode is only tried on pages whose plain text has glued words (`glued_words`), since
    it costs about 1.5× the time; its padding and columns are undone by
    `normalize_layout_text`. Layout wins if it has fewer glued words and a share of known words
    (`text_quality`) at least `LAYOUT_MARGIN` higher; otherwise plain.
    """
    plain = page.extract_text() or ""
    glued = len(glued_words(plain))
    if not glued:
        return plain
    layout = normalize_layout_text(page.extract_text(extraction_mode="layout") or "")
    better = text_quality(layout) > text_quality(plain) + LAYOUT_MARGIN
    return layout if better and len(glued_words(layout)) < glued else plain


def words(text: str) -> list[str]:
    """Letter-only tokens of at least two letters, after ligature and diaeresis fixes."""
    return [w for w in _WORD.findall(fix_spacing_diacritics(fix_ligatures(text))) if len(w) >= 2]


@lru_cache(maxsize=131072)
def _zipf(word: str) -> float:
    lower = word.lower()
    return max(zipf_frequency(lower, "de"), zipf_frequency(lower, "en"))


def is_known_word(word: str) -> bool:
    """True if wordfreq knows `word` in German or English (zipf ≥ KNOWN_ZIPF)."""
    return _zipf(word) >= KNOWN_ZIPF


def is_glued(word: str) -> bool:
    """True for an unknown token that is known words run together: `EsgibtauchBefehlederForm`.

    The token must split into function words (der, und, auch, …) and content words (zipf ≥ 3,
    at least 4 letters), with at least one function word, not only as an inflection-like
    ending (`addierenden` is not `addieren|den`). Unknown compounds
    (`Dateninfrastrukturaufbau`, `Seitenumbrüche`) are not glued.
    """
    if not 6 <= len(word) <= 60 or is_known_word(word):
        return False
    parts = _segment(word.lower())
    return (
        parts is not None
        and len(parts) >= 2
        and any(p in _FUNCTION_WORDS for p in parts)
        and parts[-1] not in _ENDINGS
    )


@lru_cache(maxsize=65536)
def _segment(word: str) -> tuple[str, ...] | None:
    """The fewest function and content words that make up `word`, or None."""
    if not word:
        return ()
    best: tuple[str, ...] | None = None
    for k in range(len(word), 1, -1):
        head = word[:k]
        if head in _FUNCTION_WORDS or (k >= PART_MIN and _zipf(head) >= PART_ZIPF):
            rest = _segment(word[k:])
            if rest is not None and (best is None or len(rest) + 1 < len(best)):
                best = (head, *rest)
    return best


def glued_words(text: str) -> list[str]:
    """The glued tokens of `text` (see `is_glued`)."""
    return [w for w in words(text) if is_glued(w)]


def text_quality(text: str) -> float:
    """Share of word tokens that are known German or English words (0.0 for no words)."""
    tokens = words(text)
    return sum(map(is_known_word, tokens)) / len(tokens) if tokens else 0.0


# --------------------------------------------------------------------------------------------
# Layout text
# --------------------------------------------------------------------------------------------

GUTTER_MIN = 3  # columns of blank space that separate two text columns
_SPACE_RUN = re.compile(r" {2,}")


def normalize_layout_text(text: str) -> str:
    """Undo pypdf's layout padding: columns read one after the other, spaces collapsed.

    A gutter (`GUTTER_MIN`+ blank character columns shared by a block of lines, with text on
    both sides in at least half of them) splits the block into a left and a right column.
    Runs of spaces collapse to one; runs of blank lines to one blank line.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    gutter = _find_gutter(lines)
    if gutter is not None:
        lines = _read_columns(lines, gutter)
    out: list[str] = []
    for line in lines:
        line = _SPACE_RUN.sub(" ", line).strip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def _find_gutter(lines: Sequence[str]) -> tuple[int, int] | None:
    """The widest run of blank character columns between two text columns, if any."""
    filled = [line for line in lines if line.strip()]
    if len(filled) < 6:
        return None
    width = max(len(line) for line in filled)
    blank = [
        sum(1 for line in filled if c < len(line) and line[c] != " ") <= max(1, len(filled) // 10)
        for c in range(width)
    ]
    best: tuple[int, int] | None = None
    c = width // 5
    while c < width * 4 // 5:
        if not blank[c]:
            c += 1
            continue
        end = c
        while end < width and blank[end]:
            end += 1
        if (
            end - c >= GUTTER_MIN
            and _two_sided(filled, c, end)
            and (best is None or end - c > best[1] - best[0])
        ):
            best = (c, end)
        c = end + 1
    return best


def _two_sided(lines: Sequence[str], start: int, end: int) -> bool:
    both = sum(1 for line in lines if line[:start].strip() and line[end:].strip())
    return both >= max(3, len(lines) // 2)


def _read_columns(lines: Sequence[str], gutter: tuple[int, int]) -> list[str]:
    """Blocks of lines that respect the gutter are read left column first, then right."""
    start, end = gutter
    out: list[str] = []
    left: list[str] = []
    right: list[str] = []
    for line in lines:
        if line[start:end].strip():  # a line spanning both columns
            out += [*left, "", *right] if right else left
            out.append(line)
            left, right = [], []
            continue
        left.append(line[:start])
        if line[end:].strip():
            right.append(line[end:])
    out += [*left, "", *right] if right else left
    return out
