"""Near-duplicate passages never fill two slots of the top k: a real store, the real search."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quellenchat.settings import Settings
from retrieval.search import Searcher
from tests.helpers import ingest_corpus

PRESS_RELEASE = (
    "Die Handwerkskammer startet ein Förderprogramm für künstliche Intelligenz in kleinen "
    "Betrieben. Gefördert werden Beratung, Schulungen und die ersten Pilotprojekte mit bis zu "
    "zwanzigtausend Euro je Betrieb. Anträge nimmt die Kammer ab dem Frühjahr entgegen."
)


def test_a_passage_copied_into_two_documents_takes_one_slot(
    make_settings: Callable[..., Settings], corpus_dir: Path
) -> None:
    # The same press release in two newsletters, once with a different closing word; a third
    # document about the same topic in other words must still get a slot.
    (corpus_dir / "newsletter-maerz.txt").write_text(PRESS_RELEASE, encoding="utf-8")
    (corpus_dir / "newsletter-april.txt").write_text(
        PRESS_RELEASE.replace("entgegen", "an"), encoding="utf-8"
    )
    (corpus_dir / "foerderung.txt").write_text(
        "Wer in seinem Betrieb KI ausprobieren möchte, kann Zuschüsse beantragen: "
        "Das Land übernimmt einen Teil der Kosten für Beratung und Pilotprojekte.",
        encoding="utf-8",
    )
    settings = make_settings()
    assert ingest_corpus(settings).exit_code == 0

    passages = Searcher(settings).search("Förderprogramm der Handwerkskammer für KI", 3)
    sources = [p.source for p in passages]
    copies = [s for s in sources if s.startswith("newsletter-")]
    assert len(copies) == 1, sources
    assert "foerderung.txt" in sources
