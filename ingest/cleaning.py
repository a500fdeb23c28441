"""Text cleaning for extracted PDF pages and plain-text documents.

Every step is a small pure function; `clean_text` and `clean_pdf_pages` compose them. The output
must be deterministic (same input, same wordfreq version → same output): chunk ids and quote
verification depend on it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from wordfreq import zipf_frequency

BULLET = "•"

# --------------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------------

_LIGATURES = "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ
_LIGATURE_TABLE = {ord(ch): unicodedata.normalize("NFKC", ch) for ch in _LIGATURES}
# Soft hyphen, zero-width space/joiners, word joiner, BOM; all invisible in the rendered page.
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE_TABLE = dict.fromkeys(map(ord, _INVISIBLE))
_SOFT_HYPHEN_BREAK = re.compile(r"\u00ad[ \t]*\n[ \t]*")
# TeX PDFs set umlauts as a spacing diaeresis before the letter: "k¨onnen" → "können".
_SPACING_DIAERESIS = re.compile(r"\u00a8([AEIOUYaeiouy])")


def fix_ligatures(text: str) -> str:
    """Replace the Latin ligature characters ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ by their plain letters.

    Only these characters are NFKC-normalised; quotes, dashes and the rest stay as in the source.
    """
    return text.translate(_LIGATURE_TABLE)


def remove_soft_hyphens(text: str) -> str:
    """Remove soft hyphens (U+00AD) and zero-width characters.

    A soft hyphen at a line end marks a syllable break, so the two lines are joined without space.
    """
    return _SOFT_HYPHEN_BREAK.sub("", text).translate(_INVISIBLE_TABLE)


def fix_spacing_diacritics(text: str) -> str:
    """Compose a spacing diaeresis before a vowel (TeX extraction, `k¨onnen`) into one letter."""
    return _SPACING_DIAERESIS.sub(
        lambda m: unicodedata.normalize("NFC", m.group(1) + "\u0308"), text
    )


def normalize_newlines(text: str) -> str:
    """CRLF, CR and Unicode line breaks to newlines; form feeds to a blank line (page break)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\x0b", "\n").replace("\x85", "\n")
    return text.replace("\f", "\n\n").replace("\u2029", "\n\n")


def normalize_spaces(text: str) -> str:
    """Spaces normalised: tabs, Unicode and control characters to one space; lines stripped.

    No-break spaces become plain spaces: they look the same to a reader, and quotes typed or
    generated with ordinary spaces must still match. Control characters come from symbol fonts
    without a proper text mapping and are invisible on the page.
    """
    lines = []
    for line in text.split("\n"):
        line = "".join(" " if unicodedata.category(ch) in ("Zs", "Cc") else ch for ch in line)
        lines.append(re.sub(r" {2,}", " ", line).strip())
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Bullets
# --------------------------------------------------------------------------------------------

# Bullet glyphs, including the private-use bullets of Symbol/Wingdings fonts in Word PDFs.
_BULLET_CHARS = "•▪▫◦●■□‣∙◾◽⁃➢➤►▸\uf0b7\uf0a7\uf0d8\uf0fc\uf076\uf0a8"
_BULLET_LINE = re.compile(rf"^[{_BULLET_CHARS}][ \t]*")
_DASH_LINE = re.compile(r"^[–—][ \t]+(?=\S)")
_SENTENCE_END = re.compile(r"[.:;!?]$")


def normalize_bullets(text: str) -> str:
    """List markers (`•` with a tab, `•`, `▪`, `–`, …) at a line start become `• `.

    Expects lines already stripped. An en/em dash only counts as a bullet at the start of a
    paragraph, after a line ending a sentence, or when two or more lines of the paragraph start
    with one (otherwise it is a dash that the line wrap happened to put first).
    """
    out: list[str] = []
    for paragraph in _paragraphs_lines(text):
        dashes = sum(1 for line in paragraph if _DASH_LINE.match(line))
        for i, line in enumerate(paragraph):
            if _BULLET_LINE.match(line):
                rest = _BULLET_LINE.sub("", line)
                line = f"{BULLET} {rest}" if rest else BULLET
            elif _DASH_LINE.match(line) and (
                i == 0 or dashes >= 2 or _SENTENCE_END.search(paragraph[i - 1])
            ):
                line = _DASH_LINE.sub(f"{BULLET} ", line)
            out.append(line)
        out.append("")
    return "\n".join(out).rstrip("\n")


def _paragraphs_lines(text: str) -> list[list[str]]:
    """Lines grouped into paragraphs (blank lines separate them; blank lines dropped)."""
    paragraphs: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


# --------------------------------------------------------------------------------------------
# Line-break hyphens
# --------------------------------------------------------------------------------------------


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words after a German suspended hyphen (Ergänzungsstrich): "Wissens- und Datenaufbau".
_SUSPENSION_WORDS = _word_set(
    """und oder bzw. sowie bis noch als wie sondern beziehungsweise respektive resp. u.
    und/oder"""
)
# English particles of lexicalised loanwords that keep a lowercase part: Know-how, Check-in.
_EN_PARTICLES = _word_set("""how in out off up down by on over back away""")
# German verb particles and prefixes: never the first word of a hyphenated pair (hin-aus…).
_PREFIXES = _word_set(
    """ab an auf aus bei be da dar durch ein empor ent entgegen er fort ge her herab heran herauf
    heraus herbei herein herum herunter hervor hin hinab hinauf hinaus hinein hinunter hinweg
    los miss mit nach nieder über um un unter ur ver vor voran voraus vorbei weg weiter wieder
    zer zu zurück zusammen zwischen"""
)
# Short function words opening a chained compound: Ende-zu-Ende, Peer-to-Peer, Proof-of-Concept.
_CHAIN_WORDS = _word_set("""zu für an in um auf und of to the and on by a de la""")
_URL_START = re.compile(r"^[(<\[„\"']?(?:https?://|www\.)", re.IGNORECASE)
_URL_LINE = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
_URL_TAIL_CHARS = "/_?&=#%~"
_URL_PIECE = re.compile(r"^[\w\-./?=&%#~+:@!$*,;]+$")
# A wrapped URL's second line: a path (`a/b`), a file name (`ki-trainer.html`) or a query.
_URL_CONTINUATION = re.compile(r"/|[?=&#%_]|\.[A-Za-z0-9]{2,5}$")
_LETTERS = re.compile(r"[^\W\d_]+")

KNOWN_ZIPF = 2.5  # a part or joined word at least this frequent counts as a word of its own
PHRASE_MARGIN = 2.0  # the hyphenated pair must beat the joined word by this much to keep "-"
_INFLECTIONS = ("ern", "ens", "en", "er", "es", "em", "e", "n", "s")


@dataclass(frozen=True)
class LineBreak:
    """One decision at a line end: how `left` (ending in `-` or a URL) and `right` are joined.

    `joiner` is what replaces the line break: "" (syllable break: hyphen dropped), "-" (real
    hyphen kept, no space), "- " (suspended hyphen), or "/" (URL wrapped after a slash).
    """

    left: str
    right: str
    joiner: str
    reason: str

    @property
    def result(self) -> str:
        """The joined text, e.g. `Kenntnissen` or `KI-Technologien`."""
        stem = self.left[:-1] if self.left.endswith("-") else self.left
        return f"{stem}{self.joiner}{self.right}" if self.joiner != "/" else self.left + self.right


def decide_line_break(left: str, right: str) -> LineBreak | None:
    """Decide how a line ending in token `left` continues with token `right`; None: not a site.

    The rule, in this order (the first that applies wins):

    1. `left` is a URL: ending in `-` → the hyphen belongs to the URL (`Austausch-mit-der-…`);
       ending in `/ _ ? & = # % ~` with `right` a URL piece holding a `/`, a query character or
       a file extension (`ki-trainer.html`) → joined without space. Else the break stays.
    2. `left` must end in `-` directly after a letter, digit or `/`, and `right` must start with
       a letter or digit; otherwise the line break stays (a dash, a bullet, a bracket).
    3. `right` is und/oder/bzw./sowie/bis/noch/als/wie/sondern → suspended hyphen, the space
       stays: `Wissens- und`.
    4. The last part of `left` contains a digit, is a single letter or an abbreviation with two
       or more capitals (KI-, IT-, 5G-, E-, KfW-), or `right` starts with a digit → real
       hyphen (`KI-Technologien`, `10-49`, `Industrie-4.0`), unless both sides are all
       capitals (a word set in capitals, `DIGITALISIE-RUNG`), decided by frequency as in 8.
    5. `right` starts with a capital → real hyphen: German continues a compound with a capital
       after a real hyphen (`Mittelstand-Digital`, `KI-Anwendung`), while a syllable break never
       puts a capital mid-word.
    6. `right` is an English particle (how, in, out, off, up, …) and `left` an English word
       (wordfreq en ≥ 3) → real hyphen (`Know-how`, `Check-in`, `Roll-out`); `right` itself
       hyphenated with a function word first (`Ende-zu-Ende`, `Peer-to-Peer`) → real hyphen.
    7. `right` starts lowercase and `left`'s last part is capitalised → syllable or compound
       break, joined (`Kennt-nissen`, `Forschungs-institution`): a noun compound with a real
       hyphen would continue with a capital (rule 5), so frequency is only logged here.
    8. Both parts lowercase: a verb particle or prefix on the left (`hin-`, `aus-`, `un-`,
       `zusammen-`) is joined. Otherwise joined unless all of these hold (then a real hyphen,
       as in `deutsch-französische`, `sozial-ökologische`): the joined word (or, for inflected
       forms, its stem without -e/-en/-er/-es/-em/-n/-s/-ern/-ens) is rarer than zipf 2.5 in
       German and English, both parts are words of their own (zipf ≥ 2.5), and the
       hyphenated pair is at least 2.0 zipf more frequent than the joined word.
    """
    url = _decide_url_break(left, right)
    if url is not None or _URL_START.match(left):
        return url
    if not _is_hyphen_site(left, right):
        return None
    left_part = _last_part(left)
    right_part = _first_part(right)
    if right.rstrip(",;:").lower() in _SUSPENSION_WORDS:
        return LineBreak(left, right, "- ", "suspended hyphen before a conjunction")
    all_caps = _is_all_caps(left_part) and _is_all_caps(right_part)
    if not all_caps and (reason := _abbreviation_reason(left_part)):
        return LineBreak(left, right, "-", reason)
    if right_part[:1].isdigit():
        return LineBreak(left, right, "-", "number on the right")
    if not all_caps and right_part[:1].isupper():
        return LineBreak(left, right, "-", "capitalised right part")
    return _decide_lowercase(left, right, left_part, right_part, all_caps)


def _decide_url_break(left: str, right: str) -> LineBreak | None:
    if not _URL_START.match(left) or not _URL_PIECE.match(right) or _URL_START.match(right):
        return None
    if left.endswith("-"):
        return LineBreak(left, right, "-", "hyphen inside a URL")
    if left[-1] in _URL_TAIL_CHARS and _URL_CONTINUATION.search(right.rstrip(".,;:)")):
        return LineBreak(left, right, "/", "URL wrapped after a separator")
    return None


def _is_hyphen_site(left: str, right: str) -> bool:
    return (
        len(left) >= 2
        and left.endswith("-")
        and (left[-2].isalnum() or left[-2] == "/")
        and right[:1].isalnum()
    )


def _last_part(left: str) -> str:
    """The compound part before the line-end hyphen: `KI-Anwendungs-` → `Anwendungs`."""
    return re.split(r"[-/]", left[:-1])[-1].lstrip("(„\"'[«»‚‘“")


def _first_part(right: str) -> str:
    """The leading letters/digits of the next line's token: `feedback-Analyse` → `feedback`."""
    match = re.match(r"[^\W_]+", right)
    return match.group() if match else ""


def _is_all_caps(part: str) -> bool:
    letters = "".join(_LETTERS.findall(part))
    return len(letters) >= 2 and letters.isupper()


def _abbreviation_reason(left_part: str) -> str | None:
    if not left_part:
        return "hyphen after a slash or bracket"
    if any(ch.isdigit() for ch in left_part):
        return "left part contains a digit"
    if len(left_part) == 1:
        return "single-letter left part"
    if sum(ch.isupper() for ch in left_part) >= 2:
        return "abbreviation on the left"
    return None


def _decide_lowercase(
    left: str, right: str, left_part: str, right_part: str, all_caps: bool
) -> LineBreak:
    lp, rp = left_part.lower(), right_part.lower()
    if not all_caps:
        if rp in _EN_PARTICLES and zipf_frequency(lp, "en") >= 3.0 and right == right_part:
            return LineBreak(left, right, "-", "English loanword with a particle (Know-how)")
        if "-" in right and rp in _CHAIN_WORDS:
            return LineBreak(left, right, "-", "chained compound (Ende-zu-Ende)")
    joined, pair = _joined_zipf(lp + rp), zipf_frequency(f"{lp}-{rp}", "de")
    stats = f"joined {joined:.2f}, pair {pair:.2f}"
    if left_part[:1].isupper() and not all_caps:
        return LineBreak(left, right, "", f"capitalised left, lowercase right ({stats})")
    if lp in _PREFIXES:
        return LineBreak(left, right, "", f"verb particle or prefix on the left ({stats})")
    known_parts = min(zipf_frequency(lp, "de"), zipf_frequency(rp, "de")) >= KNOWN_ZIPF
    if joined < KNOWN_ZIPF and known_parts and pair - joined >= PHRASE_MARGIN:
        return LineBreak(left, right, "-", f"two words, rare compound ({stats})")
    return LineBreak(left, right, "", f"syllable break ({stats})")


@lru_cache(maxsize=65536)
def _joined_zipf(word: str) -> float:
    """Zipf frequency of a joined word in German or English, falling back to its stem."""
    best = max(zipf_frequency(word, "de"), zipf_frequency(word, "en"))
    for suffix in _INFLECTIONS:
        if best == 0 and word.endswith(suffix) and len(word) - len(suffix) >= 4:
            best = max(best, zipf_frequency(word[: -len(suffix)], "de"))
    return best


def line_break_decisions(text: str) -> list[LineBreak]:
    """Every line-break decision `join_line_break_hyphens` takes on `text` (for review)."""
    return _join_line_breaks(text)[1]


def join_line_break_hyphens(text: str) -> str:
    """Join words hyphenated at a line break and URLs wrapped over two lines.

    See `decide_line_break` for the rule. Lines are compared stripped of surrounding spaces and
    tabs; the two lines become one where a decision was taken.
    """
    return _join_line_breaks(text)[0]


def _join_line_breaks(text: str) -> tuple[str, list[LineBreak]]:
    lines = text.split("\n")
    out: list[str] = []
    decisions: list[LineBreak] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        while i + 1 < len(lines):
            decision = _decide_lines(line, lines[i + 1])
            if decision is None:
                break
            decisions.append(decision)
            head = line.rstrip(" \t")[: -len(decision.left)]
            rest = lines[i + 1].lstrip(" \t")[len(decision.right) :]
            line = head + decision.result + rest
            i += 1
        out.append(line)
        i += 1
    return "\n".join(out), decisions


def _decide_lines(line: str, following: str) -> LineBreak | None:
    left_tokens = line.split()
    right_tokens = following.split()
    if not left_tokens or not right_tokens:
        return None
    return decide_line_break(left_tokens[-1], right_tokens[0])


# --------------------------------------------------------------------------------------------
# Lines and paragraphs
# --------------------------------------------------------------------------------------------


def is_url_line(line: str) -> bool:
    """True if the stripped line is a single URL (trailing punctuation allowed)."""
    return bool(_URL_LINE.match(line.strip()))


def join_wrapped_lines(text: str) -> str:
    """Join wrapped lines of a paragraph with one space; paragraphs separated by one blank line.

    A bullet line and a line that is a URL start a new line. A run of URL lines (a link or
    footnote list) ends its paragraph: the text line after it starts a new one. Expects
    stripped lines (see `normalize_spaces`).
    """
    paragraphs: list[list[str]] = []
    for lines in _paragraphs_lines(text):
        out: list[str] = []
        for line in (line.strip() for line in lines):
            if out and is_url_line(out[-1]) and not is_url_line(line):
                paragraphs.append(out)
                out = []
            if not out or line.startswith(BULLET) or is_url_line(line):
                out.append(line)
            else:
                out[-1] = f"{out[-1]} {line}"
        paragraphs.append(out)
    return "\n\n".join("\n".join(p) for p in paragraphs)


def clean_text(raw: str, *, pdf: bool = False) -> str:
    """Clean a plain-text document (or one PDF page) into paragraphs of joined lines.

    With `pdf`, unmapped glyph names are removed first and paragraph breaks are recovered from
    the line layout (`mark_pdf_paragraphs`): pypdf separates no paragraphs by blank lines.
    """
    text = normalize_newlines(raw)
    text = remove_soft_hyphens(text)
    text = fix_ligatures(text)
    text = fix_spacing_diacritics(text)
    if pdf:
        text = remove_glyph_names(text)
    text = normalize_spaces(text)
    if pdf:
        text = mark_pdf_paragraphs(text)
    text = normalize_bullets(text)
    text = join_line_break_hyphens(text)
    return join_wrapped_lines(text)


# --------------------------------------------------------------------------------------------
# PDF page structure: glyph names, paragraphs, headings, directory lines
# --------------------------------------------------------------------------------------------

# pypdf writes a glyph that has no Unicode mapping as its PostScript name (`/noteheads.s2`,
# `/clefs.G`, `/brace178`): music and symbol fonts. A name has a dotted suffix or a number.
_GLYPH_RUN = re.compile(r"(?<![^\W\d_]|[/.])(?:/[A-Za-z]+(?:\d+|(?:\.\w+)+))+(?![\w/])")
_WORD_3 = re.compile(r"[^\W\d_]{3,}")


def remove_glyph_names(text: str) -> str:
    """Remove unmapped glyph names; a line left without a word of three letters goes too.

    Paths keep their slashes: only runs made entirely of glyph-like names are removed
    (`/usr/share` has no dotted or numbered part and stays).
    """
    lines = []
    for line in text.split("\n"):
        stripped = _GLYPH_RUN.sub(" ", line)
        if stripped != line and not _WORD_3.search(stripped):
            continue
        lines.append(stripped)
    return "\n".join(lines)


# A numbered heading: `2 Tutorium`, `3.1.6 Automatische und manuelle Balken`, `A.2 Vorlagen`.
_NUMBERED_HEADING = re.compile(r"(?:\d{1,2}|[A-Z])(?:\.\d{1,2})*\.?\s+[A-ZÄÖÜ„“\"\\]")
# A table-of-contents or index line: a dot leader before page numbers.
DIRECTORY_LINE = re.compile(r"(?:\. ?){4,}\s*[\divxlc]+(?:,\s*\d+)*,?$", re.IGNORECASE)
_LINE_END = re.compile(r"[.:!?]['’”“\")\]]*$")
HEADING_MAX_WORDS = 10
SHORT_HEADING_WORDS = 4  # an unnumbered heading (`Siehe auch`, `Verzierungen`) is this short
PARAGRAPH_END_SHARE = 0.85  # a sentence-ending line shorter than this share of the width
_MIN_WIDTH_LINES = 5


def mark_pdf_paragraphs(text: str) -> str:
    """Blank lines around headings and after paragraph ends and directory lines of a PDF page.

    A paragraph ends at a line that ends a sentence and is clearly shorter than the page's
    full lines (`PARAGRAPH_END_SHARE` of their width), at the closing brace of a code example
    and at a table-of-contents or index line. A heading is a line without sentence
    punctuation after a line that ends a sentence: numbered (`3.1.6 Automatische und manuelle
    Balken`, up to `HEADING_MAX_WORDS` words), or short and title-like (`Siehe auch`, up to
    `SHORT_HEADING_WORDS` words, less than half a line, the next line capitalised). Expects
    stripped lines.
    """
    lines = text.split("\n")
    width = _full_width(lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line and _is_heading_line(line, out[-1] if out else "", following, width):
            if out and out[-1]:
                out.append("")
            out += [line, ""]
            continue
        if out and out[-1] and _ends_paragraph(out[-1], width):
            out.append("")
        out.append(line)
    return "\n".join(out)


def _full_width(lines: Sequence[str]) -> int | None:
    """The length of a full line of running text (90th percentile), if the page has some."""
    lengths = sorted(len(line) for line in lines if len(line.split()) >= 5)
    if len(lengths) < _MIN_WIDTH_LINES:
        return None
    return lengths[int(len(lengths) * 0.9) - 1]


def _ends_paragraph(line: str, width: int | None) -> bool:
    if DIRECTORY_LINE.search(line) or (line.endswith("}") and len(line.split()) <= 6):
        return True
    return (
        width is not None
        and bool(_LINE_END.search(line))
        and len(line) < PARAGRAPH_END_SHARE * width
    )


def _is_heading_line(line: str, previous: str, following: str, width: int | None) -> bool:
    words = line.split()
    if line[-1] in ",;-" or DIRECTORY_LINE.search(line):
        return False
    after_sentence = not previous or bool(_LINE_END.search(previous)) or previous.endswith("}")
    if _NUMBERED_HEADING.match(line):  # it may ask: `4.3.3 Was sind Engraver?`
        return after_sentence and len(words) <= HEADING_MAX_WORDS and line[-1] not in ".:!"
    if _LINE_END.search(line):
        return False
    return (
        after_sentence
        and len(words) <= SHORT_HEADING_WORDS
        and (width is None or len(line) < width / 2)
        and line[0].isupper()
        and _WORD_3.search(line) is not None
        and following[:1].isupper()
    )


# --------------------------------------------------------------------------------------------
# Page headers, footers and numbers
# --------------------------------------------------------------------------------------------

EDGE_LINES = 3  # how many non-empty lines at the top and at the bottom may be header/footer
REPEAT_SHARE = 0.5  # share of pages a header/footer must appear on (with at least 3 pages)
RUNNING_MAX_WORDS = 12  # a running header/footer with a page number is at most this long
_PAGE_NUMBER = re.compile(
    r"""^(?:
        [-–—]?\s*\d{1,4}\s*[-–—]?                                  # 12, - 12 -
      | (?:seite|s\.|page|p\.)\s*\d{1,4}(?:\s*(?:von|/|of)\s*\d{1,4})?  # Seite 12 (von 30)
      | \d{1,4}\s*(?:/|von|of)\s*\d{1,4}                           # 12 / 30
      | \d{1,4}\s*[|·•]\s*\S.{0,80}                                # 12 | Titel
      | \S.{0,80}?\s*[|·•]\s*\d{1,4}                               # Titel | 12
      | [ivx]{1,5}                                                 # iv (front matter)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_EDGE_NUMBER = re.compile(r"^(\d{1,4})\b|\b(\d{1,4})$")


def is_page_number_line(line: str) -> bool:
    """True for a line that is only a page number: `12`, `- 12 -`, `Seite 12`, `12 | Titel`."""
    return bool(_PAGE_NUMBER.match(line.strip()))


def strip_repeated_lines(pages: Sequence[str]) -> list[str]:
    """Remove running headers/footers and page numbers from the top and bottom of each page.

    Looked at are the first and last `EDGE_LINES` non-empty lines of each page. With at least 3
    pages, a line is a header/footer if the same line modulo digits and spacing stands there on
    at least half the pages (and at least 2), or if it starts/ends with a number that runs with
    the page index (number − index equal on at least half the pages: `Kapitel 2: Tutorium 16`).
    Bare page numbers (`is_page_number_line`) are removed on any page when they stand at the edge
    (only other removed lines between them and the edge).
    """
    pages = [normalize_newlines(p) for p in pages]
    edges = [_edge_indices(page.split("\n")) for page in pages]
    repeated: set[str] = set()
    offsets: set[int] = set()
    if len(pages) >= 3:
        need = max(2, math.ceil(REPEAT_SHARE * len(pages)))
        repeated = _frequent(_line_keys(pages, edges), need)
        offsets = {int(k) for k in _frequent(_number_offsets(pages, edges), need)}
    return [
        _strip_page(page, idx, edge, repeated, offsets)
        for idx, (page, edge) in enumerate(zip(pages, edges, strict=True))
    ]


def _edge_indices(lines: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices of the first and the last EDGE_LINES non-empty lines, each from the edge inward."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return filled[:EDGE_LINES], filled[::-1][:EDGE_LINES]


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def _line_keys(pages: Sequence[str], edges: Sequence[tuple[list[int], list[int]]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for page, (top, bottom) in zip(pages, edges, strict=True):
        lines = page.split("\n")
        counts.update({_line_key(lines[i]) for i in (*top, *bottom)})
    return counts


def _number_offsets(
    pages: Sequence[str], edges: Sequence[tuple[list[int], list[int]]]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for index, (page, (top, bottom)) in enumerate(zip(pages, edges, strict=True)):
        lines = page.split("\n")
        found = {_edge_number(lines[i]) for i in (*top, *bottom)}
        counts.update(str(n - index) for n in found if n is not None)
    return counts


def _edge_number(line: str) -> int | None:
    """The number a short line starts or ends with (a running header's page number)."""
    if len(line.split()) > RUNNING_MAX_WORDS:
        return None
    match = _EDGE_NUMBER.search(line.strip())
    return int(match.group(1) or match.group(2)) if match else None


def _frequent(counts: Counter[str], need: int) -> set[str]:
    return {key for key, count in counts.items() if count >= need}


def _strip_page(
    page: str,
    index: int,
    edges: tuple[list[int], list[int]],
    repeated: set[str],
    offsets: set[int],
) -> str:
    lines = page.split("\n")
    drop: set[int] = set()
    for indices in edges:
        at_edge = True
        for i in indices:
            line = lines[i]
            number = _edge_number(line)
            running = number is not None and number - index in offsets
            repeats = _line_key(line) in repeated
            if repeats or running or (at_edge and is_page_number_line(line)):
                drop.add(i)
            else:
                at_edge = False
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def clean_pdf_pages(raw_pages: Sequence[str]) -> list[str]:
    """Clean the raw text of all pages of one PDF: headers/footers out, then `clean_text` each."""
    return [clean_text(page, pdf=True) for page in strip_repeated_lines(raw_pages)]
