"""Section maps: the fact sheet's blocks under their printed headings, verbatim, checked."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.chunking import ChunkSizes, blocks, word_count
from ingest.cleaning import clean_text
from ingest.corpus import CorpusError, discover
from ingest.documents import prepare
from ingest.loaders import DocumentError
from ingest.run import EXIT_OK
from ingest.sections import Section, SectionMap, SectionMapError, mapped_units
from quellenchat.settings import Settings
from quellenchat.types import letters_key
from tests.fakes import ingest_fake
from tests.helpers import FACT_SHEET, PROJECT_ROOT, ingest_corpus

CHALLENGES = (
    "Mangelndes Know-how",
    "Unzureichende Digitalisierung",
    "Investitionsunsicherheit",
    "Hohe Anforderung an den Datenschutz",
    "Limitierte Ressourcen",
    "Fehlender Innovationsdruck",
)
TEXT = "Kopf\n\nA\n\n• Erster Punkt von A.\n\nB\n\n• Erster Punkt von B.\n\n• Zweiter Punkt von A."
MAP = SectionMap(
    "metadata.toml, „t.txt“",
    (
        Section("A", ("A", "• Erster Punkt von A", "• Zweiter Punkt")),
        Section("B", ("B", "• Erster Punkt von B")),
    ),
    omit=("Kopf",),
)


def fact_sheet(corpus: Path) -> list:  # type: ignore[type-arg]
    [file] = [f for f in discover([corpus])[0] if f.source == FACT_SHEET.name]
    return prepare(file, ChunkSizes()).units


def test_blocks_move_under_their_heading_word_for_word() -> None:
    units = mapped_units(TEXT, blocks(TEXT), MAP)
    assert [(u.section, u.text) for u in units] == [
        ("A", "A\n\n• Erster Punkt von A.\n\n• Zweiter Punkt von A."),
        ("B", "B\n\n• Erster Punkt von B."),
    ]


@pytest.mark.parametrize(
    ("section_map", "message"),
    [
        (
            SectionMap("m", (Section("A", ("Fehlt",)),)),
            "„Fehlt“ (Abschnitt „A“) trifft keinen Block",
        ),
        (SectionMap("m", (Section("A", ("• Erster Punkt",)),)), "trifft 2 Blöcke"),
        (
            SectionMap("m", (Section("A", ("A", "B")), Section("B", ("B",)))),
            "„B“ (Abschnitt „B“) steht schon unter Abschnitt „A“",
        ),
        (SectionMap("m", (Section("A", ("A",)),)), "Blöcke ohne Abschnitt: „Kopf…“"),
    ],
)
def test_a_map_that_does_not_fit_fails_naming_the_opening(
    section_map: SectionMap, message: str
) -> None:
    with pytest.raises(SectionMapError, match=re.escape(message)):
        mapped_units(TEXT, blocks(TEXT), section_map)


def test_the_shipped_fact_sheet_keeps_every_word_and_files_challenges_right(
    fact_sheet_corpus: Path,
) -> None:
    units = fact_sheet(fact_sheet_corpus)
    by_section = {u.section: u.text for u in units}
    assert list(by_section)[:3] == ["…ein paar Zahlen zum Einstieg", "Chancen", "Herausforderungen"]
    for challenge in CHALLENGES:
        assert challenge in by_section["Herausforderungen"], challenge
    assert "Investitionsunsicherheit" not in by_section["Digitale Mindestanforderungen"]
    # Only blocks move: every block of the cleaned sheet is in exactly one section, verbatim,
    # except the layout labels the map omits.
    cleaned = clean_text(FACT_SHEET.read_text(encoding="utf-8"))
    moved = "\n\n".join(by_section.values())
    kept = [cleaned[a:b] for a, b in blocks(cleaned)]
    omitted = [b for b in kept if b not in moved]
    assert omitted == [
        "Aspekte",
        "Einschätzung",
        "Digitalisierungstechnologien Künstliche Intelligenz (KI)",
    ]
    assert sorted(letters_key(b) for b in kept if b in moved) == sorted(
        letters_key(b) for u in units for b in u.text.split("\n\n")
    )


def test_a_list_question_finds_the_whole_section_as_one_chunk(
    make_settings: Callable[..., Settings], fact_sheet_corpus: Path
) -> None:
    from retrieval.search import Searcher

    settings = make_settings()
    assert ingest_corpus(settings).exit_code == EXIT_OK
    passages = Searcher(settings).search("Welche Hemmnisse gibt es beim KI-Einsatz in KMU?", 5)
    whole = [p for p in passages if all(c in p.text for c in CHALLENGES)]
    assert whole, [p.text[:60] for p in passages]
    assert whole[0].section == "Herausforderungen"
    assert word_count(whole[0].text) > 100


def test_editing_the_map_re_ingests_the_sheet(
    make_settings: Callable[..., Settings], fact_sheet_corpus: Path
) -> None:
    settings = make_settings()
    assert ingest_fake(settings).exit_code == EXIT_OK
    metadata = fact_sheet_corpus / "metadata.toml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace(
            'heading = "Chancen"', 'heading = "Chancen für KMU"'
        ),
        encoding="utf-8",
    )
    again = ingest_fake(settings)
    assert again.changed == [FACT_SHEET.name], again.to_json()
    assert "Chancen für KMU" in {u.section for u in fact_sheet(fact_sheet_corpus)}


def test_a_map_that_no_longer_fits_names_file_and_opening(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PROJECT_ROOT / "corpus" / "metadata.toml", corpus / "metadata.toml")
    (corpus / FACT_SHEET.name).write_text(
        FACT_SHEET.read_text(encoding="utf-8").replace("Fehlender Innovationsdruck", "Kein Druck"),
        encoding="utf-8",
    )
    [file] = discover([corpus])[0]
    with pytest.raises(
        DocumentError, match=r"„• Fehlender Innovationsdruck“ .* trifft keinen Block"
    ):
        prepare(file, ChunkSizes())


def test_a_malformed_map_is_a_corpus_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "metadata.toml").write_text(
        '["a.txt"]\ntitle = "A"\n[["a.txt".sections]]\nheading = "H"\nblocks = "kein Array"\n',
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match=re.escape("„a.txt“: Abschnitt „H“: Feld „blocks“")):
        discover([tmp_path])
