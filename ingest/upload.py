"""PDF uploads from the app's Quellen tab: checked, safely named, written into a corpus folder."""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from quellenchat.settings import Settings

PDF_MAGIC = b"%PDF-"
UPLOAD_FOLDER = "literature"
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9äöüÄÖÜß._ -]+")
_SEPARATORS = re.compile(r"[ _]{2,}")


class UploadError(ValueError):
    """An upload that is refused; the message is German and says why."""


def upload_dir(settings: Settings) -> Path:
    """Where uploads go: the `literature/` folder of the first corpus folder."""
    return settings.corpus[0] / UPLOAD_FOLDER


def safe_pdf_name(name: str) -> str:
    """A harmless file name ending in `.pdf`: no folders, no hidden files, no odd characters."""
    # Both separators: a browser on Windows may send `C:\\Users\\…\\bericht.pdf`.
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = unicodedata.normalize("NFC", base)
    stem = base[: -len(".pdf")] if base.lower().endswith(".pdf") else base
    stem = _SEPARATORS.sub("_", _UNSAFE.sub("_", stem)).strip(" ._-")
    return f"{(stem or 'dokument')[:MAX_NAME]}.pdf"


def limit_bytes(max_mb: int) -> int:
    """The upload limit in bytes (the app's web server stops reading beyond it, too)."""
    return max_mb * 1024 * 1024


def check_pdf(path: Path, max_mb: int) -> None:
    """Refuse files that are too large or are no PDF (by their first bytes, not their name)."""
    size = path.stat().st_size
    if size == 0:
        raise UploadError("Die Datei ist leer.")
    if size > limit_bytes(max_mb):
        raise UploadError(
            f"Die Datei ist zu groß ({size / 1024 / 1024:.1f} MB, höchstens {max_mb} MB)."
        )
    with path.open("rb") as handle:
        if handle.read(len(PDF_MAGIC)) != PDF_MAGIC:
            raise UploadError("Die Datei ist kein PDF (sie beginnt nicht mit „%PDF-“).")


def save_upload(
    uploaded: Path, original_name: str, target_dir: Path, max_mb: int, *, replace: bool = False
) -> Path:
    """Check an uploaded file and copy it into `target_dir` under a safe name; returns the path.

    An existing file of the same name is only replaced when `replace` is set.
    """
    check_pdf(uploaded, max_mb)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / safe_pdf_name(original_name)
    if target.resolve().parent != target_dir.resolve():
        raise UploadError("Ungültiger Dateiname.")
    if target.exists() and not replace:
        raise UploadError(
            f"„{target.name}“ gibt es schon. Zum Ersetzen „Vorhandene Datei ersetzen“ wählen."
        )
    # A hidden `.part` file is ignored by ingest until it is complete and renamed.
    partial = target_dir / f".{target.name}.part"
    shutil.copyfile(uploaded, partial)
    os.replace(partial, target)
    return target
