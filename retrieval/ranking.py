"""Questions for the first of a list („das größte Hemmnis“) where the sources do not rank it.

„Was ist das größte Hemmnis für KMU?“ asks which item of a list comes first. The fact sheet lists
six challenges side by side and says of none that it weighs most. Quoting the first bullet would
answer a question the sheet does not answer. So a question asking for the biggest, most
important or most frequent one is refused unless a passage ranks something itself („vor allem“,
„v. a.“, „vorrangig“, „entscheidend“, „am häufigsten“, „größte“ …).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.question_kind import asking_sentences

# „das größte Problem“, „der wichtigste Grund“, „die häufigste Hürde“, „Haupthindernis“.
_ASKS_RE = re.compile(
    r"\b(?:der|die|das|den|dem|des)\s+(?:allergrößt|größt|grösst|groesst|wichtigst|schlimmst"
    r"|häufigst|haeufigst|schwerwiegendst|entscheidendst)\w*\s+[A-ZÄÖÜ]\w+"
    r"|\bHaupt(?:problem|hindernis|hemmnis|hürde|huerde|grund|schwierigkeit|vorteil|nutzen)\w*",
)
_RANKS_RE = re.compile(
    r"\b(?:allergrößt|größt|grösst|wichtigst|häufigst|meist|hauptsächlich|entscheidend|vorrangig"
    r"|überwiegend|vor allem)\w*|\bv\.\s?a\.",
    re.IGNORECASE,
)


def asks_for_the_first(question: str) -> bool:
    """Whether the question asks for the biggest, most important or most frequent item."""
    return bool(_ASKS_RE.search(asking_sentences(question)[0]))


def ranking_missing(question: str, texts: Sequence[str]) -> bool:
    """Whether the question asks for the first of a list and no text ranks anything."""
    return asks_for_the_first(question) and not any(_RANKS_RE.search(text) for text in texts)
