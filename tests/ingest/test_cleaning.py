"""Cleaning rules, one case per rule, and the real fact sheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.cleaning import (
    clean_pdf_pages,
    clean_text,
    decide_line_break,
    fix_ligatures,
    fix_spacing_diacritics,
    is_page_number_line,
    join_line_break_hyphens,
    join_wrapped_lines,
    line_break_decisions,
    mark_pdf_paragraphs,
    normalize_bullets,
    normalize_newlines,
    normalize_spaces,
    remove_glyph_names,
    remove_soft_hyphens,
    strip_repeated_lines,
)

ROOT = Path(__file__).resolve().parents[2]
FACT_SHEET = ROOT / "corpus" / "ki-faktenblatt.txt"


# ------------------------------------------------------------------ line-break hyphens


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Syllable breaks: the hyphen goes, the word is whole again.
        pytest.param("Kennt-\t\n\t nissen über", "Kenntnissen über", id="syllable-tabs"),
        pytest.param("von Produk-\t\n\t ten und", "von Produkten und", id="syllable-produkten"),
        pytest.param("Konkrete An-\t\n\t wendungsfälle", "Konkrete Anwendungsfälle", id="an-"),
        pytest.param("mit stei- \n\t gender Tendenz", "mit steigender Tendenz", id="space-after"),
        pytest.param("das feh-\n lende Vertrauen", "das fehlende Vertrauen", id="lowercase-pair"),
        pytest.param("Wertschöpfungs-\nkette", "Wertschöpfungskette", id="compound-joint"),
        pytest.param("Forschungs- \n\t institution", "Forschungsinstitution", id="rare-compound"),
        pytest.param("Verfügbar-\nkeit", "Verfügbarkeit", id="derivation"),
        pytest.param("Voraussetzun-\ngen", "Voraussetzungen", id="inflected"),
        pytest.param("im Mittel-\nstand:", "im Mittelstand:", id="parts-are-words"),
        pytest.param("Kunden-\nfeedback-Analyse", "Kundenfeedback-Analyse", id="right-hyphenated"),
        pytest.param("rechts-\nbündig", "rechtsbündig", id="pair-not-much-likelier"),
        pytest.param("DIGITALISIE-\nRUNG", "DIGITALISIERUNG", id="all-caps-word"),
        pytest.param("hin-\nausstehen", "hinausstehen", id="verb-particle"),
        pytest.param("un-\nbezeichnete", "unbezeichnete", id="prefix-un"),
        # Real hyphens stay, the line break goes.
        pytest.param("KI-\nTechnologien", "KI-Technologien", id="abbreviation"),
        pytest.param("einer KI- \n\t Anwendung.", "einer KI-Anwendung.", id="abbreviation-space"),
        pytest.param("IT-\nbasierte", "IT-basierte", id="abbreviation-lowercase-right"),
        pytest.param("5G-\nfähige", "5G-fähige", id="digit-left"),
        pytest.param("E-\nMail", "E-Mail", id="single-letter"),
        pytest.param("Industrie-\n4.0", "Industrie-4.0", id="digit-right"),
        pytest.param("Mittelstand-\nDigital", "Mittelstand-Digital", id="capital-right"),
        pytest.param("Breisgau-\nHochschwarzwald", "Breisgau-Hochschwarzwald", id="place-name"),
        pytest.param("Know-\nhow", "Know-how", id="english-particle"),
        pytest.param("Ende-\nzu-Ende", "Ende-zu-Ende", id="chained"),
        pytest.param("deutsch-\nfranzösische", "deutsch-französische", id="adjective-pair"),
        pytest.param("sozial-\nökologische", "sozial-ökologische", id="adjective-pair-2"),
        pytest.param("KI-\nKOMPETENZ", "KI-KOMPETENZ", id="all-caps-two-words"),
        pytest.param(
            "Anwendungsbereiche/-\nbeispiele", "Anwendungsbereiche/-beispiele", id="slash"
        ),
        # Suspended hyphens (Ergänzungsstrich) keep their space.
        pytest.param("Wissens- \n und Daten", "Wissens- und Daten", id="suspended-und"),
        pytest.param("Sprach-\noder Text", "Sprach- oder Text", id="suspended-oder"),
        pytest.param("Bild- \nbzw. Ton", "Bild- bzw. Ton", id="suspended-bzw"),
        pytest.param("Logistik-\nsowie Produktion", "Logistik- sowie Produktion", id="sowie"),
        # URLs.
        pytest.param(
            "https://www.bmas.de/DE/Arbeit/Austausch- \n\t mit-der-betrieblichen-Praxis/z.html",
            "https://www.bmas.de/DE/Arbeit/Austausch-mit-der-betrieblichen-Praxis/z.html",
            id="url-hyphen",
        ),
        pytest.param(
            "https://www.mittelstand-digital.de/MD/KI-Trainer/ \n\t ki-trainer.html",
            "https://www.mittelstand-digital.de/MD/KI-Trainer/ki-trainer.html",
            id="url-slash",
        ),
        pytest.param(
            "Siehe https://x.de/a/\nb.html hier",
            "Siehe https://x.de/a/b.html hier",
            id="url-inline",
        ),
        # Not a line-break hyphen: nothing changes.
        pytest.param("https://digitalhub-ai.de/de/\nDigital Hub", None, id="url-then-text"),
        pytest.param("Intelligenz -\nErgebnisse", None, id="dash"),
        pytest.param("Text-\n• Punkt", None, id="bullet-next"),
        pytest.param("Kennt-\n\nnissen", None, id="paragraph-break"),
        pytest.param("Text –\nweiter", None, id="en-dash"),
    ],
)
def test_join_line_break_hyphens(raw: str, expected: str | None) -> None:
    assert join_line_break_hyphens(raw) == (raw if expected is None else expected)


def test_line_break_decisions_name_their_reason() -> None:
    [decision] = line_break_decisions("Kennt-\nnissen")
    assert (decision.left, decision.right, decision.joiner) == ("Kennt-", "nissen", "")
    assert decision.result == "Kenntnissen"
    assert "capitalised left" in decision.reason
    assert decide_line_break("Text", "weiter") is None


def test_chained_line_breaks_join_into_one_line() -> None:
    assert join_line_break_hyphens("Wert-\nschöpfungs-\nkette") == "Wertschöpfungskette"


# ------------------------------------------------------------------ characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Einﬂuss", "Einfluss", id="fl"),
        pytest.param("ﬁnden", "finden", id="fi"),
        pytest.param("Schiﬀ", "Schiff", id="ff"),
        pytest.param("Eﬃzienz", "Effizienz", id="ffi"),
        pytest.param("Stoﬄager", "Stofflager", id="ffl"),
        pytest.param("Faﬅ Feﬆ", "Fast Fest", id="st"),
        pytest.param("„Zitat“ – ½ m² …", "„Zitat“ – ½ m² …", id="no-nfkc-elsewhere"),
    ],
)
def test_fix_ligatures(raw: str, expected: str) -> None:
    assert fix_ligatures(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Kennt\u00adnisse", "Kenntnisse", id="soft-hyphen"),
        pytest.param("Kennt\u00ad \n nisse", "Kenntnisse", id="soft-hyphen-line-end"),
        pytest.param("Da\u200bten\u200c\u200d\u2060", "Daten", id="zero-width"),
        pytest.param("\ufeffText", "Text", id="bom"),
    ],
)
def test_remove_soft_hyphens(raw: str, expected: str) -> None:
    assert remove_soft_hyphens(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("k¨onnen ¨uber Gr¨oße", "können über Größe", id="lowercase"),
        pytest.param("¨Ubersicht ¨Anderung", "Übersicht Änderung", id="capitals"),
        pytest.param("Preis ¨ 5", "Preis ¨ 5", id="lone-diaeresis"),
    ],
)
def test_fix_spacing_diacritics(raw: str, expected: str) -> None:
    assert fix_spacing_diacritics(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a\r\nb\rc", "a\nb\nc", id="crlf-cr"),
        pytest.param("Seite eins\fSeite zwei", "Seite eins\n\nSeite zwei", id="form-feed"),
        pytest.param("a\u2028b\u2029c", "a\nb\n\nc", id="unicode-separators"),
    ],
)
def test_normalize_newlines(raw: str, expected: str) -> None:
    assert normalize_newlines(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a\t\tb   c  ", "a b c", id="tabs-runs-trailing"),
        pytest.param("\t einleitend", "einleitend", id="leading"),
        pytest.param("15\u00a0%\u202fund\u2009mehr", "15 % und mehr", id="unicode-spaces"),
        pytest.param("eins \n zwei", "eins\nzwei", id="per-line"),
        pytest.param("Noten\x08köpfe\x0e \x7f", "Noten köpfe", id="control-characters"),
    ],
)
def test_normalize_spaces(raw: str, expected: str) -> None:
    assert normalize_spaces(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("•\tKMU sind", "• KMU sind", id="bullet-tab"),
        pytest.param("•KMU", "• KMU", id="bullet-glued"),
        pytest.param("▪ Punkt", "• Punkt", id="square"),
        pytest.param("\uf0b7 Punkt", "• Punkt", id="symbol-font"),
        pytest.param(
            "– Punkt eins\nweiter\n– Punkt zwei", "• Punkt eins\nweiter\n• Punkt zwei", id="dashes"
        ),
        pytest.param("Ein Satz.\n– Punkt", "Ein Satz.\n• Punkt", id="dash-after-sentence"),
        pytest.param("KI im Mittelstand\n– Potenziale", None, id="dash-in-sentence"),
        pytest.param("Herausforderungen • Mangelndes", None, id="inline-heading-kept"),
        pytest.param("•", "•", id="bullet-alone"),
    ],
)
def test_normalize_bullets(raw: str, expected: str | None) -> None:
    assert normalize_bullets(raw) == (raw if expected is None else expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Zeile eins\nzeile zwei", "Zeile eins zeile zwei", id="wrapped"),
        pytest.param("Absatz\n\n\n\nNächster", "Absatz\n\nNächster", id="one-blank-line"),
        pytest.param("Text\n• eins\nweiter\n• zwei", "Text\n• eins weiter\n• zwei", id="bullets"),
        pytest.param(
            "Beispiele:\nhttps://a.de/x.html\nhttps://b.de\nDigitale Anforderungen\nweiter",
            "Beispiele:\nhttps://a.de/x.html\nhttps://b.de\n\nDigitale Anforderungen weiter",
            id="url-lines",
        ),
        pytest.param("•\nText", "• Text", id="bullet-alone-joins-next"),
    ],
)
def test_join_wrapped_lines(raw: str, expected: str) -> None:
    assert join_wrapped_lines(raw) == expected


# ------------------------------------------------------------------ headers, footers, numbers


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("12", id="bare"),
        pytest.param("- 12 -", id="dashes"),
        pytest.param("– 3 –", id="en-dashes"),
        pytest.param("Seite 12", id="seite"),
        pytest.param("Seite 3 von 10", id="seite-von"),
        pytest.param("12 | Faktenblatt KI", id="number-pipe-title"),
        pytest.param("Faktenblatt KI | 12", id="title-pipe-number"),
        pytest.param("3 / 10", id="slash"),
        pytest.param("iv", id="roman"),
    ],
)
def test_is_page_number_line(line: str) -> None:
    assert is_page_number_line(line)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("12 Unternehmen setzen KI ein", id="sentence"),
        pytest.param("2021: 9 %", id="figure"),
        pytest.param("KI", id="word"),
    ],
)
def test_is_not_page_number_line(line: str) -> None:
    assert not is_page_number_line(line)


BODIES = [
    "KMU sind beim Einsatz von KI noch zurückhaltend.\nDie Gründe sind vielfältig.",
    "Daten liegen oft nicht digital vor.\nDas erschwert den Einstieg.",
    "Es fehlen Fachkräfte mit KI-Wissen.\nWeiterbildung hilft.",
    "Förderprogramme senken die Kosten.\nBeratung gibt es regional.",
]


def test_strip_repeated_headers_and_footers() -> None:
    pages = [
        f"Faktenblatt KI – Mittelstand\n{body}\nStand 03/2024 · Seite {n} von 4"
        for n, body in enumerate(BODIES, start=1)
    ]
    assert strip_repeated_lines(pages) == BODIES


def test_repeated_line_modulo_digits() -> None:
    pages = [f"Bericht 20{n}\n{body}\n{n}" for n, body in enumerate(BODIES, start=21)]
    assert strip_repeated_lines(pages) == BODIES


def test_running_header_with_page_number_is_removed() -> None:
    chapters = ["Kapitel 1: Einleitung", "Kapitel 2: Tutorium", "Kapitel 2: Tutorium", "Anhang"]
    pages = [
        f"{c} {n + 15}\n{body}" for n, (c, body) in enumerate(zip(chapters, BODIES, strict=True))
    ]
    assert strip_repeated_lines(pages) == BODIES


def test_line_on_few_pages_is_kept() -> None:
    pages = ["Einleitung\nText a", "Einleitung\nText b", "Anhang\nText c", "Quellen\nText d"]
    pages += ["Kapitel\nText e"]
    assert strip_repeated_lines(pages) == pages


def test_bare_page_numbers_on_short_documents() -> None:
    pages = ["- 1 -\nErste Seite\nmit Text", "Zweite Seite\nmit Text\nSeite 2"]
    assert strip_repeated_lines(pages) == ["Erste Seite\nmit Text", "Zweite Seite\nmit Text"]


def test_page_number_only_at_the_edge() -> None:
    pages = ["Überschrift\n12\nText"]
    assert strip_repeated_lines(pages) == pages


def test_clean_pdf_pages_composes_everything() -> None:
    raw = [
        "Kopfzeile\nKI-\nTechnologien und Kennt-\nnisse über ﬁnanzielle\nVorteile.\n1",
        "Kopfzeile\n•\tErster Punkt\n•\tZweiter Punkt\n2",
        "Kopfzeile\nLetzte Seite.\n3",
    ]
    assert clean_pdf_pages(raw) == [
        "KI-Technologien und Kenntnisse über finanzielle Vorteile.",
        "• Erster Punkt\n• Zweiter Punkt",
        "Letzte Seite.",
    ]


# ------------------------------------------------------------------ PDF page structure


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "Text davor\n/noteheads.s2 /noteheads.s2/clefs.G /timesig.C44\nText danach",
            "Text davor\nText danach",
            id="glyph-line-dropped",
        ),
        pytest.param("34/clefs.F /dots.dot", "", id="digits-and-glyphs"),
        pytest.param("Andante (/noteheads.s2 = 120)", "Andante (  = 120)", id="inside-text"),
        pytest.param("/brace178 Klavier", "  Klavier", id="numbered-glyph"),
        pytest.param("Pfad /usr/share/lilypond und /home/a.ly", None, id="paths-stay"),
        pytest.param("Siehe /etc/fonts.conf oder a/b.c", None, id="path-with-dot-stays"),
    ],
)
def test_remove_glyph_names(raw: str, expected: str | None) -> None:
    assert remove_glyph_names(raw) == (raw if expected is None else expected)


FULL = "Dies ist eine volle Zeile mit sehr vielen Wörtern, die bis zum Rand des Satzspiegels"


def test_mark_pdf_paragraphs_headings_paragraph_ends_and_directory_lines() -> None:
    lines = [
        "2.2.1 Einfache Notation",
        FULL,
        FULL,
        "reicht, und hier endet er.",
        FULL,
        FULL,
        "der Absatz geht weiter, endet aber nicht",
        FULL,
        "Siehe auch",
        "Notationsreferenz: ein Verweis.",
        "4.3.3 Was sind Engraver?",
        "Taktangabe . . . . . . . . . . . 20",
        "Tempo . . . . . . . . . . . 19",
    ]
    assert mark_pdf_paragraphs("\n".join(lines)).split("\n") == [
        "2.2.1 Einfache Notation",
        "",
        FULL,
        FULL,
        "reicht, und hier endet er.",
        "",
        FULL,
        FULL,
        "der Absatz geht weiter, endet aber nicht",
        FULL,
        "Siehe auch",  # after a line that ends no sentence: no heading
        "Notationsreferenz: ein Verweis.",
        "",
        "4.3.3 Was sind Engraver?",
        "",
        "Taktangabe . . . . . . . . . . . 20",
        "",
        "Tempo . . . . . . . . . . . 19",
    ]


def test_mark_pdf_paragraphs_short_heading_and_code_end() -> None:
    lines = [FULL] * 5 + ["Ende des Absatzes.", "Verzierungen", "Verzierungen werden so gesetzt:"]
    lines += ["\\relative {", "c'4 d e", "}", "Danach geht es weiter."]
    assert mark_pdf_paragraphs("\n".join(lines)).split("\n")[5:] == [
        "Ende des Absatzes.",
        "",
        "Verzierungen",
        "",
        "Verzierungen werden so gesetzt:",
        "",
        "\\relative {",
        "c'4 d e",
        "}",
        "",
        "Danach geht es weiter.",
    ]


def test_clean_pdf_pages_recovers_paragraphs_and_drops_glyphs() -> None:
    body = [FULL, FULL, FULL, FULL, "und der erste Absatz endet hier."]
    raw = "\n".join(["3.1.6 Automatische Balken", *body, "/noteheads.s2 /flags.d3", "Weiter."])
    assert clean_pdf_pages([raw]) == [f"3.1.6 Automatische Balken\n\n{' '.join(body)}\n\nWeiter."]


# ------------------------------------------------------------------ the real fact sheet


@pytest.fixture(scope="module")
def fact_sheet() -> str:
    return FACT_SHEET.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def cleaned(fact_sheet: str) -> str:
    return clean_text(fact_sheet)


@pytest.mark.parametrize(
    "phrase",
    [
        "fehlende Vertrauen in diese Technologie",
        "unzureichenden Kenntnissen über KI-Potenziale",
        "Anpassung von Produkten und Dienstleistungen",
        "Konkrete Anwendungsfälle sind ihnen oft nicht bekannt",
        "40% der Mittelständler setzen weder KI-Technologien ein",
        "Ergebnissen einer KI-Anwendung.",
        "für den Wissens- und Dateninfrastrukturaufbau",
        "Sprach- und Textverarbeitung, Bild- und Tonerkennung",
        "mit steigender Tendenz",
        "entlang der gesamten Wertschöpfungskette",
        "Forschungsinstitution mit KI-Forschungsschwerpunkt",
        "Expertise und Leitfaden zur Expertise",
        "Die Verfügbarkeit von Trainingsdaten",
        "im europäischen Mittelstand: Status quo",
        "Voraussetzungen schaffen, Transformation meistern",
        "KI-Trainer Netzwerk der Mittelstand-Digital Zentren (BMWK):",
        "Mangelndes Know-how im Unternehmen",
        "insbesondere für personen-bezogene Daten",
        "https://www.mittelstand-digital.de/MD/Navigation/DE/Praxis/KI-Trainer/ki-trainer.html",
        "https://www.bmas.de/DE/Arbeit/Digitalisierung-der-Arbeitswelt/"
        "Austausch-mit-der-betrieblichen-Praxis/Zukunftszentren/zukunftszentren.html",
        "Herausforderungen • Mangelndes Know-how",
    ],
)
def test_fact_sheet_phrases(cleaned: str, phrase: str) -> None:
    assert phrase in cleaned


def test_fact_sheet_every_line_break_decision(fact_sheet: str) -> None:
    """All 19 line-end joins of the fact sheet, reviewed by eye; any change must be reviewed too."""
    prepared = normalize_bullets(normalize_spaces(fact_sheet))
    results = [d.result.rstrip(".:") for d in line_break_decisions(prepared)]
    assert results == [
        "steigender",
        "Anwendungsfälle",
        "Wertschöpfungskette",
        "Produkten",
        "Kenntnissen",
        "fehlende",
        "ökologischen",
        "KI-Anwendung",
        "insbesondere",
        "Unternehmens",
        "https://www.mittelstand-digital.de/MD/Navigation/DE/Praxis/KI-Trainer/ki-trainer.html",
        "Forschungsinstitution",
        "Transformation",
        "Intelligenz",
        "Leitfaden",
        "Voraussetzungen",
        "Verfügbarkeit",
        "Mittelstand",
        "https://www.bmas.de/DE/Arbeit/Digitalisierung-der-Arbeitswelt/"
        "Austausch-mit-der-betrieblichen-Praxis/Zukunftszentren/zukunftszentren.html",
    ]


def test_fact_sheet_layout(cleaned: str) -> None:
    assert "\t" not in cleaned
    assert "  " not in cleaned
    assert "\n\n\n" not in cleaned
    assert not re.search(r" \n|\n ", cleaned)
    assert not re.search(r"\w-\n", cleaned)  # no hyphen left at a line end
    assert cleaned == cleaned.strip()
    assert cleaned.startswith("…ein paar Zahlen zum Einstieg\n\nChancen")
    assert "• KMU sind beim Einsatz von KI noch zurückhaltend." in cleaned
    # The URL list stays one URL per line and ends its paragraph.
    assert (
        "\nhttps://www.bvdw.org/fileadmin/bvdw/upload/publikationen/KI/KI-Monitor_2021.pdf\n"
        in (cleaned)
    )
    assert "KI-Monitor_2021.pdf\n\nDigitale Mindestanforderungen\n\n" in cleaned
    assert "ki-in-deutschland.html\n\nWeiterführende Literatur • acatech (2021):" in cleaned


def test_clean_text_is_deterministic_and_idempotent(fact_sheet: str, cleaned: str) -> None:
    assert clean_text(fact_sheet) == cleaned
    assert clean_text(cleaned) == cleaned
