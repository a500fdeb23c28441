"""Loaders on real files in tmp_path: PDFs made with fpdf2, text files in several encodings.

fpdf2's core fonts are latin-1 only, so the PDFs use a tiny TrueType font built here with
fontTools (a dependency of fpdf2): box glyphs for ASCII, umlauts, ß, •, –, „“, € and the
ligatures ﬁ ﬂ. The text layer (ToUnicode map) is real, only the glyph shapes are boxes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fpdf import FPDF
from PIL import Image, ImageDraw

import ingest.loaders as loaders
from ingest.cleaning import clean_pdf_pages
from ingest.loaders import (
    DocumentError,
    RawPdfPage,
    extract_page_text,
    glued_words,
    is_glued,
    iter_pdf_pages,
    normalize_layout_text,
    read_text_file,
    text_quality,
)

FONT_CHARS = [chr(c) for c in range(33, 127)] + list("äöüÄÖÜß•–„“€ﬁﬂ")
HEADER = "Faktenblatt KI – Mittelstand"


def _box() -> object:
    pen = TTGlyphPen(None)
    pen.moveTo((50, 0))
    pen.lineTo((50, 600))
    pen.lineTo((450, 600))
    pen.lineTo((450, 0))
    pen.closePath()
    return pen.glyph()


def _build_font(path: Path, space_width: int = 250) -> Path:
    """A TrueType font with every character the test PDFs use (including ﬁ and ﬂ)."""
    names = {c: f"uni{ord(c):04X}" for c in FONT_CHARS}
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "space", *names.values()])
    builder.setupCharacterMap({32: "space", **{ord(c): n for c, n in names.items()}})
    builder.setupGlyf(
        {
            ".notdef": _box(),
            "space": TTGlyphPen(None).glyph(),
            **{n: _box() for n in names.values()},
        }
    )
    builder.setupHorizontalMetrics(
        {
            ".notdef": (500, 50),
            "space": (space_width, 0),
            **dict.fromkeys(names.values(), (500, 50)),
        }
    )
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "QuellenchatTest", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))
    return path


@pytest.fixture(scope="session")
def font(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test font: box glyphs, a real text layer."""
    return _build_font(tmp_path_factory.mktemp("font") / "quellenchat-test.ttf")


@pytest.fixture(scope="session")
def wide_space_font(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test font with a space glyph as wide as an em: pypdf's plain mode then glues words."""
    return _build_font(tmp_path_factory.mktemp("font") / "wide-space.ttf", space_width=1000)


def _new_pdf(font: Path) -> FPDF:
    pdf = FPDF()
    pdf.add_font("QuellenchatTest", fname=str(font))
    pdf.set_font("QuellenchatTest", size=11)
    return pdf


def write_pdf(
    path: Path,
    font: Path,
    pages: Sequence[Sequence[str]],
    *,
    user_password: str | None = None,
    framed: bool = True,
) -> Path:
    """One PDF page per entry, one text line per string; with header and footer if `framed`."""
    pdf = _new_pdf(font)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        framed_lines = [HEADER, *lines, f"Seite {number} von {len(pages)}"] if framed else lines
        for row, line in enumerate(framed_lines):
            pdf.text(20, 20 + 7 * row, line)
    if user_password is not None:
        pdf.set_encryption(owner_password="eigentümer", user_password=user_password)
    pdf.output(str(path))
    return path


PAGES = [
    [
        "Größere Unternehmen nutzen KI-",
        "Technologien häufiger als kleine.",
        "Mangelndes Know-how führt zu unzureichenden Kennt-",
        "nissen über KI-Potenziale.",
    ],
    [
        "Die ﬁnanziellen Mittel sind knapp, der Einﬂuss ist groß.",
        "• Erster Punkt: Förderung",
        "• Zweiter Punkt: Beratung",
    ],
    ["Übersicht: Förderprogramme für", "den Mittelstand – „Digital Jetzt“ kostet 0 €."],
]
CLEANED = [
    "Größere Unternehmen nutzen KI-Technologien häufiger als kleine. Mangelndes Know-how führt "
    "zu unzureichenden Kenntnissen über KI-Potenziale.",
    "Die finanziellen Mittel sind knapp, der Einfluss ist groß.\n"
    "• Erster Punkt: Förderung\n• Zweiter Punkt: Beratung",
    "Übersicht: Förderprogramme für den Mittelstand – „Digital Jetzt“ kostet 0 €.",
]


@pytest.fixture
def sample_pdf(tmp_path: Path, font: Path) -> Path:
    return write_pdf(tmp_path / "faktenblatt.pdf", font, PAGES)


# ------------------------------------------------------------------ PDFs


def test_pdf_pages_clean_per_page(sample_pdf: Path) -> None:
    raw = list(iter_pdf_pages(sample_pdf))
    assert [(p.number, p.label) for p in raw] == [(1, None), (2, None), (3, None)]
    assert "ﬁnanziellen" in raw[1].text  # the ligature comes out of the PDF as one character
    assert raw[0].text.splitlines()[0] == HEADER
    assert clean_pdf_pages([p.text for p in raw]) == CLEANED


def test_pdf_page_labels(tmp_path: Path, font: Path) -> None:
    pdf = _new_pdf(font)
    pdf.add_page(label_style="r")
    pdf.text(20, 20, "Vorwort")
    pdf.add_page(label_style="D", label_start=1)
    pdf.text(20, 20, "Kapitel eins")
    pdf.add_page()
    pdf.text(20, 20, "Kapitel zwei")
    pdf.add_page(label_style="D", label_start=4)
    pdf.text(20, 20, "Anhang")
    pdf.output(str(tmp_path / "labels.pdf"))
    pages = list(iter_pdf_pages(tmp_path / "labels.pdf"))
    assert [(p.number, p.label, p.text) for p in pages] == [
        (1, "i", "Vorwort"),
        (2, "1", "Kapitel eins"),
        (3, "2", "Kapitel zwei"),
        (4, None, "Anhang"),  # printed 4 on physical page 4: no label needed
    ]


def test_pdf_empty_page_among_text_pages(tmp_path: Path, font: Path) -> None:
    path = write_pdf(
        tmp_path / "luecke.pdf", font, [["Erste Seite"], [], ["Dritte Seite"]], framed=False
    )
    assert [p.text for p in iter_pdf_pages(path)] == ["Erste Seite", "", "Dritte Seite"]


def test_pdf_streams_with_fresh_readers(
    tmp_path: Path, font: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pdf(tmp_path / "lang.pdf", font, [[f"Text der Seite {n}"] for n in range(1, 8)])
    expected = list(iter_pdf_pages(path))
    opened: list[object] = []
    real_reader = loaders.PdfReader

    def counting_reader(*args: object, **kwargs: object) -> object:
        reader = real_reader(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(reader)
        return reader

    monkeypatch.setattr(loaders, "PAGES_PER_READER", 3)
    monkeypatch.setattr(loaders, "PdfReader", counting_reader)
    pages = iter_pdf_pages(path)
    first = next(pages)
    assert first == expected[0]
    assert len(opened) == 2  # the check/label scan and the first batch; nothing read ahead
    assert [first, *pages] == expected
    assert len(opened) == 1 + 3  # batches of 3 pages: 1-3, 4-6, 7


def test_pdf_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.pdf"
    path.write_bytes(b"%PDF-1.4\n" + random.Random(0).randbytes(4000))
    with pytest.raises(DocumentError, match=r"^kaputt\.pdf: PDF ist beschädigt und kann nicht"):
        list(iter_pdf_pages(path))


def test_pdf_truncated(tmp_path: Path, sample_pdf: Path) -> None:
    path = tmp_path / "abgeschnitten.pdf"
    path.write_bytes(sample_pdf.read_bytes()[:2000])
    with pytest.raises(DocumentError, match=r"abgeschnitten\.pdf: PDF ist beschädigt"):
        list(iter_pdf_pages(path))


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path, font: Path) -> None:
    path = write_pdf(tmp_path / "offen.pdf", font, PAGES, user_password="")
    assert clean_pdf_pages([p.text for p in iter_pdf_pages(path)]) == CLEANED


def test_pdf_encrypted_with_password_fails(tmp_path: Path, font: Path) -> None:
    path = write_pdf(tmp_path / "geheim.pdf", font, PAGES, user_password="geheim")
    with pytest.raises(DocumentError) as error:
        list(iter_pdf_pages(path))
    assert str(error.value) == "geheim.pdf: PDF ist verschlüsselt (Passwort nötig)"


def test_pdf_images_only_has_no_text_layer(tmp_path: Path) -> None:
    pdf = FPDF()
    for shade in (40, 120):
        image = Image.new("RGB", (300, 120), "white")
        ImageDraw.Draw(image).rectangle((20, 20, 280, 100), fill=(shade, shade, shade))
        pdf.add_page()
        pdf.image(image, x=20, y=20, w=120)
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    pages = iter_pdf_pages(path)
    with pytest.raises(DocumentError) as error:
        next(pages)  # nothing is yielded before the whole PDF is known to be without text
    assert str(error.value) == "scan.pdf: keine Textebene – OCR nötig"


@pytest.mark.parametrize("name", ["leer.pdf", "leer.txt"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DocumentError) as error:
        list(iter_pdf_pages(path)) if name.endswith(".pdf") else read_text_file(path)
    assert str(error.value) == f"{name}: Datei ist leer (0 Byte)"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"fehlt\.pdf: Datei nicht gefunden"):
        list(iter_pdf_pages(tmp_path / "fehlt.pdf"))
    with pytest.raises(DocumentError, match=r"fehlt\.txt: Datei nicht gefunden"):
        read_text_file(tmp_path / "fehlt.txt")


# ------------------------------------------------------------------ text files

GERMAN = "Größe – „Zitat“ kostet 5 €\nÄrger über Öl und Übermaß\n"


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        pytest.param(GERMAN.encode("utf-8"), GERMAN, "utf-8", id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + GERMAN.encode("utf-8"), GERMAN, "utf-8", id="utf-8-bom"),
        pytest.param(GERMAN.encode("cp1252"), GERMAN, "cp1252", id="cp1252"),
        pytest.param(b"Gr\xf6\xdfe \x81", "Größe \x81", "latin-1", id="latin-1-fallback"),
        pytest.param(GERMAN.encode("utf-16"), GERMAN, "utf-16", id="utf-16-bom"),
        pytest.param(b"ASCII only", "ASCII only", "utf-8", id="ascii"),
    ],
)
def test_read_text_file(tmp_path: Path, data: bytes, text: str, encoding: str) -> None:
    path = tmp_path / "datei.txt"
    path.write_bytes(data)
    assert read_text_file(path) == (text, encoding)


def test_read_text_file_rejects_binary(tmp_path: Path) -> None:
    path = tmp_path / "bild.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DocumentError, match=r"bild\.txt: Datei enthält Binärdaten"):
        read_text_file(path)


# ------------------------------------------------------------------ glued words, layout mode


@pytest.mark.parametrize(
    ("word", "glued"),
    [
        pytest.param("EsgibtauchBefehlederForm", True, id="sentence"),
        pytest.param("gibtauch", True, id="two-words"),
        pytest.param("dieÜberprüfung", True, id="article-noun"),
        pytest.param("Dateninfrastrukturaufbau", False, id="compound"),
        pytest.param("Seitenumbrüche", False, id="compound-with-um"),
        pytest.param("addierenden", False, id="inflection-ending"),
        pytest.param("Kenntnissen", False, id="known"),
        pytest.param("voiceOne", False, id="identifier"),
    ],
)
def test_is_glued(word: str, glued: bool) -> None:
    assert is_glued(word) is glued


def test_text_quality() -> None:
    assert text_quality("Es gibt auch Befehle der Form") == 1.0
    assert text_quality("EsgibtauchBefehlederForm") == 0.0
    assert text_quality("") == 0.0


class FakePage:
    """Stands in for a pypdf page: fixed plain and layout text, counts layout calls."""

    def __init__(self, plain: str, layout: str) -> None:
        self.texts = {"plain": plain, "layout": layout}
        self.layout_calls = 0

    def extract_text(self, extraction_mode: str = "plain") -> str:
        self.layout_calls += extraction_mode == "layout"
        return self.texts[extraction_mode]


LAYOUT = "   Es   gibt  auch   Befehle    der  Form,\n\n\n  die  den  Text   verändern.   "


def test_layout_mode_wins_on_glued_page() -> None:
    page = FakePage("EsgibtauchBefehlederForm,diedenTextverändern.", LAYOUT)
    assert extract_page_text(page) == "Es gibt auch Befehle der Form,\n\ndie den Text verändern."  # type: ignore[arg-type]


def test_layout_mode_not_tried_without_glued_words() -> None:
    page = FakePage("Es gibt auch Befehle der Form.", LAYOUT)
    assert extract_page_text(page) == "Es gibt auch Befehle der Form."  # type: ignore[arg-type]
    assert page.layout_calls == 0


def test_plain_kept_when_layout_is_not_better() -> None:
    page = FakePage("Esgibtauch Befehle der Form.", "Es gibtauch Befehle der Form.")
    assert extract_page_text(page) == "Esgibtauch Befehle der Form."  # type: ignore[arg-type]
    assert page.layout_calls == 1


GLUED_LINES = [
    "Es gibt auch Befehle der Form, die den Text verändern.",
    "Diese werden in der Referenz erklärt.",
]


def _word_by_word_pdf(path: Path, font: Path, gap_mm: float) -> Path:
    """Each word placed on its own, `gap_mm` apart: no space characters in the text layer."""
    pdf = _new_pdf(font)
    pdf.add_page()
    for row, line in enumerate(GLUED_LINES):
        x = 20.0
        for word in line.split():
            pdf.text(x, 20 + 7 * row, word)
            x += pdf.get_string_width(word) + gap_mm
    pdf.output(str(path))
    return path


def test_layout_mode_is_chosen_where_plain_glues_words(
    tmp_path: Path, wide_space_font: Path
) -> None:
    """Gaps narrower than the font's space glyph: plain mode glues, layout mode separates."""
    pdf = _word_by_word_pdf(tmp_path / "geklebt.pdf", wide_space_font, gap_mm=1.2)
    plain = loaders.PdfReader(pdf).pages[0].extract_text()
    assert glued_words(plain) == [
        "EsgibtauchBefehlederForm",
        "diedenTextverändern",
        "DiesewerdeninderReferenzerklärt",
    ]  # the problem is real with pypdf's plain mode
    [page] = list(iter_pdf_pages(pdf))
    assert page.text == "\n".join(GLUED_LINES)
    assert clean_pdf_pages([page.text]) == [" ".join(GLUED_LINES)]


def test_plain_mode_is_kept_where_it_separates_words(tmp_path: Path, font: Path) -> None:
    pdf = _word_by_word_pdf(tmp_path / "getrennt.pdf", font, gap_mm=3.0)
    plain = loaders.PdfReader(pdf).pages[0].extract_text()
    assert not glued_words(plain)
    [page] = list(iter_pdf_pages(pdf))
    assert page.text == plain


def test_normalize_layout_single_column() -> None:
    text = f"Kapitel 2: Tutorium{' ' * 40}16\n\n\n\n     Glossar:  Abschnitt  in   Glossar   \n"
    assert normalize_layout_text(text) == "Kapitel 2: Tutorium 16\n\nGlossar: Abschnitt in Glossar"


def _columns(left: Sequence[str], right: Sequence[str], width: int = 34) -> Iterator[str]:
    for a, b in zip(left, right, strict=True):
        yield f"{a:<{width}}{b}".rstrip()


def test_normalize_layout_two_columns() -> None:
    left = [
        "Links steht der erste",
        "Absatz mit einigen",
        "Wörtern in Spalte",
        "eins, die weiter",
        "geht bis zum",
        "Ende der Spalte.",
    ]
    right = [
        "Rechts steht ein",
        "zweiter Absatz in",
        "der zweiten Spalte",
        "",
        "mit Lücke und",
        "Schluss.",
    ]
    text = "\n".join(["Überschrift über beide Spalten des Blatts", *_columns(left, right)])
    assert normalize_layout_text(text).split("\n") == [
        "Überschrift über beide Spalten des Blatts",
        *left,
        "",
        *[line for line in right if line],
    ]


def test_raw_pdf_page_is_frozen() -> None:
    page = RawPdfPage(1, None, "Text")
    with pytest.raises(AttributeError):
        page.text = "anders"  # type: ignore[misc]


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_pdf_aes_encrypted_with_empty_user_password_opens(
    tmp_path: Path, sample_pdf: Path, algorithm: str
) -> None:
    path = _encrypt(sample_pdf, tmp_path / "aes-offen.pdf", "", algorithm)
    assert clean_pdf_pages([p.text for p in iter_pdf_pages(path)]) == CLEANED


def test_pdf_aes_encrypted_with_password_fails(tmp_path: Path, sample_pdf: Path) -> None:
    path = _encrypt(sample_pdf, tmp_path / "aes-geheim.pdf", "geheim", "AES-256")
    with pytest.raises(DocumentError) as error:
        list(iter_pdf_pages(path))
    assert str(error.value) == "aes-geheim.pdf: PDF ist verschlüsselt (Passwort nötig)"


def _encrypt(source: Path, path: Path, user_password: str, algorithm: str) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=source)
    writer.encrypt(user_password=user_password, owner_password="x", algorithm=algorithm)
    writer.write(path)
    return path
