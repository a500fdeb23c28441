"""Lexical half of the hybrid retriever: German text analysis and a BM25 index.

Analysis (`analyze`): Unicode NFKC, lower case, umlauts folded to their two-letter spelling
(ä→ae, ö→oe, ü→ue, ß→ss, so `Größe`, `groesse` and `GRÖSSE` meet), tokens of letters and
digits (`15`, `2021`, `15.000` and `KI` stay; `%` reads as `prozent`), a small German
stopword list, Snowball German stemming (PyStemmer) and compound splitting: a compound such
as `Datenschutzanforderungen` yields the stem of the whole word and the stems of its parts
(`datenschutz`, `anforderungen`, `daten`, `schutz`), so it meets `Anforderungen an den
Datenschutz`, and the other way round.

The compound splitter is dictionary based (Koehn & Knight 2003): a word is cut into parts that
are frequent German words of wordfreq's vocabulary (shipped inside the `wordfreq` package, no
download), optionally joined by a linking element (Fugenelement such as `s` or `en`). The most
probable cut (highest product of the parts' word frequencies) wins, unless the word itself is
more frequent than its parts on average; parts are split again recursively.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import Stemmer

if TYPE_CHECKING:
    import bm25s
    import numpy as np
    import numpy.typing as npt

Analyzer = Callable[[str], list[str]]
Splitter = Callable[[str], Sequence[str]]
# (log10 probability, parts) of one way to cut a word.
_Cut = tuple[float, tuple[str, ...]]

# Umlauts fold to their two-letter spelling so that text typed without umlauts meets them.
_FOLD: Final = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_SYMBOLS: Final = str.maketrans({"%": " prozent ", "€": " euro "})
# A number with inner separators (`15.000`, `2,5`, `01.01.2021`) or a run of letters/digits.
_TOKEN_RE: Final = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+")
_DIGITS_RE: Final = re.compile(r"\d+")

# Small German stopword list, already folded; deliberately without negations and numbers. The
# last line holds a question's filler adverbs („Wie viele KMU setzen bereits KI ein?“): as a
# term, „bereits“ chose the sentence „… die bereits in die Digitalisierung investieren (12 % …)“.
_STOPWORD_TEXT: Final = """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
    anderes auch auf aus bei beim bin bis bist da damit dann das dass dasselbe dein deine
    deinem deinen deiner dem demselben den denn denselben der derer derselbe derselben des
    desselben dessen dich die dies diese dieselbe dieselben diesem diesen dieser dieses dir
    doch dort du durch ein eine einem einen einer eines einig einige einigem einigen einiger
    einiges er es etwas euch euer eure eurem euren eurer eures fuer gegen gewesen hab habe
    haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres
    im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt kann
    koennen koennte machen man manche manchem manchen mancher manches mein meine meinem meinen
    meiner meines mich mir mit muss musste nach nun nur ob oder ohne sehr sein seine seinem
    seinen seiner seines selbst sich sie sind so solche solchem solchen solcher solches soll
    sollte sondern sonst ueber um und uns unser unsere unserem unseren unserer unseres unter
    vom von vor waehrend war waren warst was weg weil welche welchem welchen welcher welches
    wenn werde werden wie wieder will wir wird wirst wo wollen wollte wuerde wuerden zu zum
    zur zwar zwischen
    bereits schon eigentlich ueberhaupt inzwischen mittlerweile derzeit momentan wirklich
"""
STOPWORDS: Final[frozenset[str]] = frozenset(_STOPWORD_TEXT.split())

# Words that are never compound parts (besides stopwords): suffixes, endings and particles
# that wordfreq lists as words (`wissen|schaft`, `weite|sten`, `ange|wendet`).
_NOT_PARTS_TEXT: Final = """
    chen heit keit lich lichen lein isch schaft schaften ung ungen tion tionen ismus ieren
    sten eren igen ehen ange zuge statt wider neben zurueck voraus heraus herum hinaus hinein
"""
_NOT_PARTS: Final[frozenset[str]] = frozenset(_NOT_PARTS_TEXT.split())


# Adjective endings tried off a compound that does not split as it stands.
_INFLECTIONS: Final = ("en", "er", "em", "es", "e")


@dataclass(frozen=True)
class SplitterConfig:
    """Knobs of the dictionary compound splitter (defaults chosen on XQuAD-de)."""

    min_part: int = 4
    """Shortest compound part, in letters."""
    min_zipf: float = 3.0
    """Rarest compound part, as wordfreq zipf frequency (3.0: once per million words)."""
    whole_margin: float | None = 0.0
    """Keep a word whole if its zipf exceeds its parts' mean by more than this; None: never."""
    links: tuple[str, ...] = ("s", "es", "n", "en", "er", "e", "ens")
    """Linking elements (Fugenelemente) allowed between two parts."""
    max_len: int = 64
    """Longer words are not split (the search is quadratic in the word's length)."""


DEFAULT_SPLITTER: Final = SplitterConfig()
_STEMMER: Final = Stemmer.Stemmer("german")


def fold(text: str) -> str:
    """Normalise text for matching: NFKC, lower case, umlauts to ae/oe/ue, ß to ss."""
    return unicodedata.normalize("NFKC", text).lower().translate(_FOLD)


def tokenize(text: str) -> list[str]:
    """Folded tokens of letters and digits; `%` and `€` become words."""
    return _TOKEN_RE.findall(fold(text).translate(_SYMBOLS))


@functools.cache
def _vocabulary(min_zipf: float) -> dict[str, float]:
    """Zipf frequency of every folded German word of at least min_zipf in wordfreq's list."""
    import wordfreq  # lazy: costs 0.3 s, needed only once words are split

    vocab: dict[str, float] = {}
    # Bucket i of a wordfreq list holds the words of frequency 10**(-i/100), i.e. zipf 9 - i/100.
    for index, bucket in enumerate(wordfreq.get_frequency_list("de", "large")):
        zipf = 9.0 - index / 100.0
        if zipf < min_zipf:
            break
        for word in bucket:
            if word.isalpha():
                vocab.setdefault(word.translate(_FOLD), zipf)
    return vocab


def _log_prob(part: str, config: SplitterConfig, vocab: dict[str, float]) -> float | None:
    """log10 word probability of a candidate part, or None if it cannot be a part."""
    if len(part) < config.min_part or part in STOPWORDS or part in _NOT_PARTS:
        return None
    zipf = vocab.get(part)
    return None if zipf is None else zipf - 9.0


def _link_ends(word: str, end: int, config: SplitterConfig) -> Iterator[int]:
    """Where the next part may begin after a part ending at `end`: at once or after a link."""
    yield end
    for link in config.links:
        if word.startswith(link, end) and len(word) - end - len(link) >= config.min_part:
            yield end + len(link)


def _cuts(
    word: str, start: int, tails: list[_Cut | None], config: SplitterConfig, vocab: dict[str, float]
) -> Iterator[_Cut]:
    """Cuts of word[start:] into a first part, an optional link and the best cut of the rest."""
    for end in range(start + config.min_part, len(word) - config.min_part + 1):
        head = _log_prob(word[start:end], config, vocab)
        if head is None:
            continue
        for rest in _link_ends(word, end, config):
            tail = tails[rest]
            if tail is not None:
                yield head + tail[0], (word[start:end], *tail[1])


def _best_cut(word: str, config: SplitterConfig, vocab: dict[str, float]) -> _Cut | None:
    """The most probable cut of word into two or more parts (dynamic programming)."""
    tails: list[_Cut | None] = [None] * (len(word) + 1)
    for start in range(len(word) - config.min_part, 0, -1):
        whole = _log_prob(word[start:], config, vocab)
        options: list[_Cut] = [] if whole is None else [(whole, (word[start:],))]
        options.extend(_cuts(word, start, tails, config, vocab))
        tails[start] = max(options, default=None)
    return max(_cuts(word, 0, tails, config, vocab), default=None)


@functools.lru_cache(maxsize=1 << 16)
def split_compound(word: str, config: SplitterConfig = DEFAULT_SPLITTER) -> tuple[str, ...]:
    """Parts of a folded German compound, then the parts of those parts; () if none."""
    if not 2 * config.min_part <= len(word) <= config.max_len or not word.isalpha():
        return ()
    vocab = _vocabulary(config.min_zipf)
    cut = _best_cut(word, config, vocab)
    if cut is None:
        # An inflected adjective compound („wettbewerbsfähiger“): wordfreq lists the inflected
        # last part too rarely; its base form („fähig“) is a part.
        base = next((word[: -len(e)] for e in _INFLECTIONS if word.endswith(e)), None)
        if base is not None and len(base) >= 2 * config.min_part:
            cut = _best_cut(base, config, vocab)
    if cut is None:
        return ()
    parts = cut[1]
    if config.whole_margin is not None and word in vocab:
        mean = sum(vocab[part] for part in parts) / len(parts)
        if vocab[word] > mean + config.whole_margin:
            return ()
    nested = [sub for part in parts for sub in split_compound(part, config)]
    return tuple(dict.fromkeys((*parts, *nested)))


@functools.lru_cache(maxsize=1 << 18)
def _stem(token: str) -> str:
    """Snowball German stem of a folded token; numbers stay as they are."""
    return _STEMMER.stemWord(token) if token.isalpha() else token


@functools.lru_cache(maxsize=1 << 18)
def _word_terms(
    token: str, stopwords: bool, stem: bool, splitter: Splitter | None
) -> tuple[str, ...]:
    """Index terms of one folded token: its own term, then its parts' terms."""
    if stopwords and token in STOPWORDS:
        return ()
    norm = _stem if stem else str
    if not token.isalnum():  # a number with separators: also its digit groups
        parts: Sequence[str] = _DIGITS_RE.findall(token)
    else:
        parts = splitter(token) if splitter is not None and token.isalpha() else ()
    return tuple(dict.fromkeys([norm(token), *map(norm, parts)]))


@dataclass(frozen=True)
class GermanAnalyzer:
    """Configurable German analysis; `analyze` is the default instance."""

    stopwords: bool = True
    stem: bool = True
    splitter: Splitter | None = split_compound

    def __call__(self, text: str) -> list[str]:
        """Index terms of a text, in text order."""
        terms: list[str] = []
        for token in tokenize(text):
            terms.extend(_word_terms(token, self.stopwords, self.stem, self.splitter))
        return terms


_DEFAULT_ANALYZER: Final = GermanAnalyzer()


def analyze(text: str) -> list[str]:
    """German index terms of a text: folded, stopwords out, stemmed, compounds split."""
    return _DEFAULT_ANALYZER(text)


def one_edit(word: str, target: str) -> bool:
    """Whether `word` is `target` with at most one letter changed, added, dropped or swapped."""
    if word == target:
        return True
    if abs(len(word) - len(target)) > 1:
        return False
    if len(word) == len(target):
        diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == target[diff[1]]
            and word[diff[1]] == target[diff[0]]
        )
    short, long = sorted((word, target), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


# Shorter terms lie one letter apart too often („planen“/„planer“) to call either a typo
# (here and in the thesaurus's keys).
MIN_TYPO_LENGTH = 7


class LexicalIndex:
    """BM25 index over text chunks, built once and queried many times."""

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        analyzer: Analyzer = analyze,
    ) -> None:
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("chunk ids must be unique")
        self._ids: list[str] = list(ids)
        self._position = {chunk_id: i for i, chunk_id in enumerate(self._ids)}
        self._analyzer = analyzer
        corpus_terms = [analyzer(text) for text in texts]
        self._df = Counter(term for terms in corpus_terms for term in set(terms))
        self._bm25 = _build_bm25(corpus_terms, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self._ids)

    def holds(self, term: str) -> bool:
        """Whether some chunk holds the analysed term."""
        return term in self._df

    def idf(self, term: str) -> float:
        """BM25 (Lucene) inverse document frequency of an analysed term; unseen terms get most."""
        df = self._df.get(term, 0)
        return math.log(1.0 + (len(self._ids) - df + 0.5) / (df + 0.5))

    def search(
        self, query: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """Up to k (id, BM25 score) of chunks sharing a term with query, best first."""
        return self.query(query).top(k, allowed)

    def corrections(self, terms: Iterable[str]) -> dict[str, str]:
        """{term: the index's term} for long terms the index lacks, one letter off one of its.

        Users type fast: „Datenschuz“ is „Datenschutz“. A term of at least `MIN_TYPO_LENGTH`
        letters that no chunk holds is read as the index's term one letter changed, added,
        dropped or swapped away; of several, the one most chunks hold.
        """
        found: dict[str, str] = {}
        for term in terms:
            if len(term) < MIN_TYPO_LENGTH or term in self._df or not term.isalpha():
                continue
            candidates = {
                known
                for variant in (term, *_deletions(term))
                for known in self._deletion_map.get(variant, ())
                if one_edit(term, known)
            }
            if candidates:
                found[term] = max(sorted(candidates), key=lambda known: self._df[known])
        return found

    @functools.cached_property
    def _deletion_map(self) -> dict[str, set[str]]:
        """Each long term of the index, and each of it with one letter dropped, to the terms."""
        found: dict[str, set[str]] = {}
        for known in self._df:
            if len(known) >= MIN_TYPO_LENGTH - 1 and known.isalpha():
                for variant in (known, *_deletions(known)):
                    found.setdefault(variant, set()).add(known)
        return found

    def query(self, query: str, terms: Iterable[str] = ()) -> LexicalScores:
        """The BM25 score of every chunk for `query` (and analysed `terms`), computed once."""
        if self._bm25 is None:
            return LexicalScores(self._ids, self._position, None)
        vocab = self._bm25.vocab_dict
        asked = [*self._analyzer(query), *terms]
        term_ids = [vocab[term] for term in asked if term in vocab]
        scores = self._bm25.get_scores(term_ids) if term_ids else None
        return LexicalScores(self._ids, self._position, scores)


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


@dataclass(frozen=True)
class LexicalScores:
    """One query's BM25 scores over all chunks of an index."""

    ids: Sequence[str]
    position: Mapping[str, int]
    scores: npt.NDArray[np.floating] | None  # None: no query term is in the index

    def score(self, chunk_id: str) -> float:
        """The chunk's BM25 score (0.0 for an unknown chunk or no shared term)."""
        at = self.position.get(chunk_id)
        return 0.0 if self.scores is None or at is None else float(self.scores[at])

    def top(self, k: int, allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The k best positive (id, score) among allowed ids, best first; ties keep index order."""
        import numpy as np  # lazy: loaded with bm25s

        if k <= 0 or self.scores is None:
            return []
        scores = self.scores
        if allowed is None:
            candidates = np.flatnonzero(scores > 0.0)
        else:
            positions = sorted(self.position[a] for a in allowed if a in self.position)
            candidates = np.asarray(positions, dtype=np.int64)
            candidates = candidates[scores[candidates] > 0.0]
        order = np.argsort(-scores[candidates], kind="stable")[:k]
        return [(self.ids[i], float(scores[i])) for i in candidates[order]]


def _build_bm25(corpus_terms: list[list[str]], *, k1: float, b: float) -> bm25s.BM25 | None:
    """A bm25s index (Lucene BM25) over analysed chunks; None for an empty corpus."""
    if not corpus_terms:
        return None
    import bm25s  # lazy: costs 0.5 s, so the module stays cheap to import

    bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
    # bm25s needs at least one term per chunk; "" matches no analysed query term.
    bm25.index([terms or [""] for terms in corpus_terms], show_progress=False)
    return bm25
