"""Uploads: size limit, PDF magic, safe names, no way out of the upload folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.upload import UploadError, safe_pdf_name, save_upload
from tests.helpers import write_pdf


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Bericht 2021.pdf", "Bericht 2021.pdf", id="plain"),
        pytest.param("../../etc/passwd", "passwd.pdf", id="traversal"),
        pytest.param("..\\..\\windows\\win.ini.PDF", "win.ini.pdf", id="windows-path"),
        pytest.param(".versteckt.pdf", "versteckt.pdf", id="hidden"),
        pytest.param("Studie: KI & KMU?.pdf", "Studie_KI_KMU.pdf", id="odd-characters"),
        pytest.param("Größenvergleich.pdf", "Größenvergleich.pdf", id="umlauts"),
        pytest.param("..", "dokument.pdf", id="only-dots"),
        pytest.param(
            "<img src=x onerror=alert(1)>.pdf", "img src_x onerror_alert_1.pdf", id="html"
        ),
        pytest.param("a" * 300 + ".pdf", "a" * 120 + ".pdf", id="long"),
    ],
)
def test_safe_pdf_name(name: str, expected: str) -> None:
    assert safe_pdf_name(name) == expected


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "incoming" / "upload.bin", ["Ein kurzer Bericht über KI."])


def test_a_pdf_is_saved_under_its_safe_name_without_leftovers(pdf: Path, tmp_path: Path) -> None:
    target = tmp_path / "corpus" / "literature"
    saved = save_upload(pdf, "../../Bericht.pdf", target, max_mb=1)
    assert saved == target / "Bericht.pdf"
    assert saved.read_bytes() == pdf.read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["Bericht.pdf"]


def test_a_file_without_pdf_magic_is_refused_whatever_its_name(tmp_path: Path) -> None:
    fake = tmp_path / "fake.pdf"
    fake.write_text("<html>kein PDF</html>", encoding="utf-8")
    with pytest.raises(UploadError, match="kein PDF"):
        save_upload(fake, "fake.pdf", tmp_path / "out", max_mb=1)
    assert not (tmp_path / "out" / "fake.pdf").exists()


def test_too_large_and_empty_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "gross.pdf"
    big.write_bytes(b"%PDF-1.7\n" + b"0" * (1024 * 1024))
    with pytest.raises(UploadError, match="zu groß"):
        save_upload(big, "gross.pdf", tmp_path / "out", max_mb=1)
    empty = tmp_path / "leer.pdf"
    empty.write_bytes(b"")
    with pytest.raises(UploadError, match="leer"):
        save_upload(empty, "leer.pdf", tmp_path / "out", max_mb=1)


def test_an_existing_file_is_replaced_only_when_asked(pdf: Path, tmp_path: Path) -> None:
    target = tmp_path / "literature"
    save_upload(pdf, "bericht.pdf", target, max_mb=1)
    newer = write_pdf(tmp_path / "newer.pdf", ["Die neue Fassung."])
    with pytest.raises(UploadError, match="gibt es schon"):
        save_upload(newer, "bericht.pdf", target, max_mb=1)
    assert (target / "bericht.pdf").read_bytes() == pdf.read_bytes()
    save_upload(newer, "bericht.pdf", target, max_mb=1, replace=True)
    assert (target / "bericht.pdf").read_bytes() == newer.read_bytes()
