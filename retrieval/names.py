"""Names and figures a question asks about that the evidence never mentions.

A near-miss question often differs from an answerable one only by what it names: „Wie viele
Firmen in Österreich nutzen KI?“ lies as close to the fact sheet as „Wie viele KMU nutzen KI?“,
and the sheet speaks of Germany only. When the question names

- a place (a country, a German state, a large city) or a nationality,
- a product, program or organisation written as one (an acronym like „SAP“, a word with an inner
  capital like „ChatGPT“),
- a year or an amount (percent, euro),
- a price or a duration („Was kostet …“, „Wie lange dauert …“, „… in unter zwei Jahren?“),
- how much something changed („Um wie viel ist der Anteil gestiegen?“),
- a way to reach someone („Telefonnummer“, „E-Mail-Adresse“, „Anschrift“),
- what the law requires or permits („AI Act“, „DSGVO“, „Darf ich …“, „Wer haftet …“), taxes
  included („Steuervorteile“, „absetzbar“),
- a product to be recommended („Welches KI-Tool empfehlt ihr …?“),

and none of the retrieved passages mentions it (for a price: no amount of money; for a
duration: no number of days, weeks, months or years; for a change: no change by a figure, such
as „um 3 Prozentpunkte“ or „von 6 % auf 9 %“, where „mit steigender Tendenz“ is none; for
contact: no phone number, e-mail address or street address, where a web link is none; for the
law: no law, regulation or rule named, where „Anforderung an den Datenschutz“ is none; for a
recommendation: none given), the sources cannot answer it: the answer is the refusal. A place
counts as mentioned when a place inside it is („Bayern“ by „München“), so a question about
Bavaria's centres is answered by „KI-Regionalzentren in München und Regensburg“.
Spelling is compared folded (ä = ae, case ignored): „Muenchen“ is „München“.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.question_kind import asking_sentences

# German states with their adjective and their largest cities: a passage naming one of those
# speaks about the state.
# North Rhine-Westphalia's cities, for the state under both its names.
_NRW = ("köln", "düsseldorf", "dortmund", "bochum", "bonn", "aachen", "münster", "duisburg", "ruhr")
_STATES: dict[str, tuple[str, ...]] = {
    "baden-württemberg": (
        "baden-württembergisch",
        "stuttgart",
        "karlsruhe",
        "mannheim",
        "freiburg",
        "heidelberg",
        "ulm",
    ),
    "bayern": (
        "bayerisch",
        "münchen",
        "nürnberg",
        "regensburg",
        "augsburg",
        "würzburg",
        "ingolstadt",
        "erlangen",
    ),
    "berlin": ("berliner",),
    "brandenburg": ("brandenburgisch", "potsdam", "cottbus"),
    "hamburg": ("hamburger",),
    "hessen": ("hessisch", "frankfurt", "darmstadt", "kassel", "wiesbaden"),
    "mecklenburg-vorpommern": ("rostock", "schwerin", "greifswald"),
    "niedersachsen": ("niedersächsisch", "hannover", "braunschweig", "oldenburg", "osnabrück"),
    "nordrhein-westfalen": ("nrw", *_NRW),
    "nrw": ("nordrhein-westfalen", *_NRW),
    "rheinland-pfalz": ("mainz", "kaiserslautern", "trier", "koblenz"),
    "saarland": ("saarländisch", "saarbrücken"),
    "sachsen": ("sächsisch", "dresden", "leipzig", "chemnitz"),
    "sachsen-anhalt": ("magdeburg", "halle"),
    "schleswig-holstein": ("kiel", "lübeck", "flensburg"),
    "thüringen": ("thüringisch", "erfurt", "jena", "weimar"),
}
_CITIES = (
    "münchen",
    "köln",
    "frankfurt",
    "stuttgart",
    "düsseldorf",
    "leipzig",
    "dortmund",
    "dresden",
    "hannover",
    "nürnberg",
    "duisburg",
    "bochum",
    "wuppertal",
    "bielefeld",
    "bonn",
    "münster",
    "karlsruhe",
    "mannheim",
    "augsburg",
    "wiesbaden",
    "aachen",
    "chemnitz",
    "magdeburg",
    "freiburg",
    "erfurt",
    "rostock",
    "kassel",
    "mainz",
    "saarbrücken",
    "potsdam",
    "regensburg",
    "heidelberg",
    "darmstadt",
    "ingolstadt",
    "würzburg",
    "wien",
    "zürich",
    "paris",
    "london",
)
# Countries and regions with their adjectives. Germany, the sources' own country, is never
# missing (the fact sheet rarely says „Deutschland“); its entry keeps its adjective a known word.
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "deutschland": ("deutsch",),
    "österreich": ("österreichisch", "wien"),
    "schweiz": ("schweizer", "schweizerisch", "zürich"),
    "frankreich": ("französisch", "paris"),
    "italien": ("italienisch",),
    "spanien": ("spanisch",),
    "polen": ("polnisch",),
    "niederlande": ("niederländisch", "holländisch"),
    "belgien": ("belgisch",),
    "dänemark": ("dänisch",),
    "schweden": ("schwedisch",),
    "norwegen": ("norwegisch",),
    "finnland": ("finnisch",),
    "tschechien": ("tschechisch",),
    "großbritannien": ("britisch", "england", "englisch", "london"),
    "usa": ("amerika", "amerikanisch", "us-amerikanisch"),
    "amerika": ("usa", "amerikanisch"),
    "kanada": ("kanadisch",),
    "china": ("chinesisch",),
    "japan": ("japanisch",),
    "indien": ("indisch",),
    "korea": ("koreanisch",),
    "russland": ("russisch",),
    "israel": ("israelisch",),
    "europa": ("europäisch", "eu"),
}
# Adjectives asked about as such („amerikanische Firmen“): each stands for its country.
_ADJECTIVES = {
    adjective: country
    for country, aliases in _COUNTRIES.items()
    for adjective in aliases
    if adjective.endswith(("isch", "er")) and adjective not in ("deutsch",)
}
# Acronyms and inner capitals that are ordinary words, not names.
_COMMON = frozenset(
    [
        "ki",
        "ai",
        "kmu",
        "it",
        "edv",
        "pc",
        "ml",
        "faq",
        "pdf",
        "gmbh",
        "ag",
        "ceo",
        "sme",
        "smes",
        "ok",
        # Abbreviations written without their dots („zB“, „uU“, „dH“): words, not product names.
        "zb",
        "uu",
        "dh",
        "ua",
        "oä",
        "bzw",
        "usw",
        "usb",
        "www",
        # Everyday nouns written as acronyms („eine Spedition mit 40 LKW“): no names either.
        "lkw",
        "pkw",
        "kfz",
        "azubi",
        "hr",
    ]
)
_ENDING = r"(?:e|en|er|es|em|s|n)?"
_WORD_RE = re.compile(r"[\w-]+")
_ACRONYM_RE = re.compile(r"^(?:[A-ZÄÖÜ]{2,}\d*|[A-Za-z]+[a-z][A-Z]\w*|[a-z]+[A-Z]\w*)$")
# A year, not part of a longer number („2.025“, „2025,5“); a comma or full stop after it is
# punctuation („Zahlen für 2025, wie viele …“).
_YEAR_RE = re.compile(r"(?<!\d)(?<!\d[.,])(?:19|20)\d\d(?!\d|[.,]\d)")
_AMOUNT_RE = re.compile(
    r"(\d[\d.,]*)\s*(?:%|prozent|euro\b|eur\b|€|mio\b|millionen|milliarden|tausend)", re.I
)


# Asking for a price or an amount of funding, and what a passage must hold to give one.
PRICE_RE = re.compile(
    r"\b(?:kostet|kosten|preis\w*|gehalt|verdien\w*|teuer\w*|wie\s+viel\s+geld"
    r"|zuschuss\w*|zuschüss\w*|zuschuess\w*|fördergeld\w*|fördermittel\w*|förderquote\w*"
    r"|fördersatz\w*|fördersumme\w*|förderbetr\w*|subvention\w*)\b",
    re.I,
)
# Costs weighed against benefit („Kosten-Nutzen“, „der Nutzen im Verhältnis zu den Kosten“,
# „die Kosten und der Ertrag“, „rechnet sich das?“): a question about the return on an
# investment (the sheet's „ROI“), not about a price.
_RATIO_RE = re.compile(
    r"kosten-nutzen|(?:nutzen|ertr[aä]g\w*|gewinn\w*|rendite|erlös\w*)\W+(?:\w+\W+){0,6}?kosten"
    r"|kosten\W+(?:\w+\W+){0,6}?(?:nutzen|ertr[aä]g\w*|gewinn\w*|rendite|erlös\w*)"
    r"|verhältnis\w*\W+(?:\w+\W+){0,3}?kosten|rechnet\s+(?:\w+\s+){0,3}?sich|rentabel|rentiert",
    re.I,
)


def asks_price(question: str) -> bool:
    """Whether the question asks a price, once its cost-benefit phrases are set aside."""
    return bool(PRICE_RE.search(_RATIO_RE.sub(" ", question)))


MONEY_RE = re.compile(r"\d\s*(?:€|eur\b|euro\b|mio\b|millionen|tsd\b)|(?:€|eur)\s*\d", re.I)
# Asking for a duration, and what a passage must hold to give one.
DURATION_RE = re.compile(r"\bwie\s+lange\b|\bdauer\w*\b", re.I)
# A span the asking sentence puts to the test („Amortisiert sich das in unter zwei Jahren?“,
# „… innerhalb von 6 Monaten?“): the sources must give a span to confirm or deny it. Context
# before it („Wir wollen in zwei Jahren digital sein.“) asks nothing.
_SPAN_ASKED_RE = re.compile(
    r"\b(?:in|innerhalb|binnen|nach)\s+(?:von\s+)?(?:(?:unter|weniger\s+als|über|mehr\s+als"
    r"|maximal|höchstens|knapp|spätestens)\s+)?(?:\d+|ein\w*|zwei|drei|vier|fünf|sechs|sieben"
    r"|acht|neun|zehn|zwölf)\s+(?:tag|woche|monat|jahr)\w*",
    re.I,
)


def asks_duration(question: str) -> bool:
    """Whether the question asks how long, or puts a span to the test in its asking sentence."""
    return bool(
        DURATION_RE.search(question) or _SPAN_ASKED_RE.search(asking_sentences(question)[0])
    )


SPAN_RE = re.compile(
    r"\d\s*(?:-\s*\d+\s*)?(?:tag|tage|tagen|woche\w*|monat\w*|jahr\w*|stunde\w*)\b", re.I
)


# Asking by how much something changed, and what a passage must hold to say it.
CHANGE_RE = re.compile(
    r"\bum\s+wie\s*viel\w*|\bwie\s+(?:stark|sehr|schnell)\s+(?:\w+\s+){0,12}?"
    r"(?:gestiegen|gewachsen|gesunken|zugenommen|abgenommen|verändert|gefallen)\b"
    r"|\b(?:wachstumsrate|zuwachsrate|steigerungsrate)\w*",
    re.I,
)
SHIFT_RE = re.compile(
    r"\bum\s+(?:rund\s+|etwa\s+|ca\.\s*)?\d|\bvon\s+\d[\d.,]*\s*(?:%|prozent)?\s+auf\s+\d"
    r"|prozentpunkt\w*|verdoppel\w*|verdreifach\w*|halbiert\w*|\+\s?\d[\d.,]*\s?%",
    re.I,
)
# Asking for a way to reach someone, and what a passage must hold to give one.
CONTACT_RE = re.compile(
    r"\b(?:telefon\w*|handynummer\w*|rufnummer\w*|e-?mail\w*|mailadresse\w*|anschrift\w*"
    r"|postadresse\w*|kontaktdaten)\b",
    re.I,
)
REACH_RE = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+|(?:\+49|\b0\d{2,4})[\s/-]?\d[\d\s/-]{4,}\d"
    r"|\b[\wäöüß-]+(?:straße|strasse|str\.|weg|platz|allee)\s+\d",
    re.I,
)
# Asking what the law requires or permits, and what a passage must hold to say it: a law, a
# regulation or a rule by name. „Hohe Anforderung an den Datenschutz“ says what firms find hard,
# not what the GDPR demands.
LAW_RE = re.compile(
    r"\b(?:gesetz(?!t)\w*|\w+-gesetz\w*|verordnung\w*|\w+-verordnung\w*|ai[\s-]+act\b|dsgvo\w*"
    r"|datenschutz-?grundverordnung|\w*folgenabsch\w*|rechtlich\w*|rechtslage|haft(?:et|en|ung|bar)\w*"
    r"|zulässig\w*|zulaessig\w*|erlaubt|verboten|vorgeschrieben|vorschrift\w*"
    r"|darf\s+(?:ich|man|mein\w*|unser\w*)\b|dürfen\s+wir\b|duerfen\s+wir\b"
    r"|steuer(?:vorteil|bonus|erleichterung|lich|recht|gutschrift)\w*|abschreib\w*|absetzbar\w*"
    r"|von\s+der\s+steuer\s+absetz\w*)",
    re.I,
)
STATUTE_RE = re.compile(
    r"\b(?:gesetz(?!t)\w*|\w+-gesetz\w*|verordnung\w*|dsgvo|rechtlich\w*|vorschrift\w*"
    r"|haftung\w*|richtlinie\w*|act)\b|§",
    re.I,
)

# Asking for a product to be recommended („Welches KI-Tool empfehlt ihr …?“, „Welche Software
# könnt ihr empfehlen?“), and what a passage must hold to give one: a recommendation. The
# sources name links and literature; a product they name is caught above („ChatGPT“).
_RECOMMEND = r"\bempf(?:ehl|iehl)\w*"
ADVICE_RE = re.compile(
    r"\bwelche[snmr]?\s+(?:\S+\s+){0,2}?\S*(?:tool|software|programm|app|anbieter|hersteller"
    r"|produkt|lösung|loesung|system|warenwirtschaft)\w*\b[^?]*?" + _RECOMMEND,
    re.I,
)
RECOMMENDED_RE = re.compile(_RECOMMEND, re.I)


# What a question can ask for, and what the evidence must hold to give it, with the label
# `missing_names` reports when it does not.
_ASKED_AND_GIVEN = (
    ("Preis", asks_price, MONEY_RE),
    ("Dauer", asks_duration, SPAN_RE),
    ("Veränderung", CHANGE_RE.search, SHIFT_RE),
    ("Kontakt", CONTACT_RE.search, REACH_RE),
    ("Recht", LAW_RE.search, STATUTE_RE),
    ("Empfehlung", ADVICE_RE.search, RECOMMENDED_RE),
)


def fold(text: str) -> str:
    """Lower case with umlauts and ß spelled out, so „Muenchen“ is „München“."""
    text = text.lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(a, b)
    return text


def _names_place(folded_question: str, place: str) -> bool:
    return bool(re.search(rf"(?<![\w-]){re.escape(fold(place))}{_ENDING}(?![\w])", folded_question))


def _mentions(folded_evidence: str, place: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(fold(place))}", folded_evidence) is not None


def _digits(number: str) -> str:
    return re.sub(r"[.,\s]", "", number)


def missing_names(question: str, evidence: Sequence[str]) -> list[str]:
    """The names and figures of `question` that no text of `evidence` mentions (module doc)."""
    folded_q = fold(question)
    folded_e = fold("\n".join(evidence))
    missing: list[str] = []
    places: dict[str, tuple[str, ...]] = {}
    for state, aliases in _STATES.items():
        places[state] = aliases
    for city in _CITIES:
        places.setdefault(city, ())
    for country, aliases in _COUNTRIES.items():
        places[country] = aliases
    named = {place for place in places if _names_place(folded_q, place)}
    named |= {
        _ADJECTIVES[adjective]
        for adjective in _ADJECTIVES
        if re.search(rf"(?<![\w]){re.escape(fold(adjective))}\w*", folded_q)
    }
    named.discard("deutschland")  # the sources' own country: every passage speaks of it
    for place in sorted(named):
        if not any(_mentions(folded_e, p) for p in (place, *places[place])):
            missing.append(place)
    known = {fold(p) for p in places} | {fold(a) for a in _ADJECTIVES}
    for word in _WORD_RE.findall(question):
        for part in word.split("-"):
            if not _ACRONYM_RE.match(part) or part.lower() in _COMMON or fold(part) in known:
                continue
            if not re.search(rf"(?<![^\W\d_]){re.escape(fold(part))}(?![^\W\d_])", folded_e):
                missing.append(part)
    evidence_digits = {_digits(n) for n in re.findall(r"\d[\d.,]*\d|\d", folded_e)}
    for year in _YEAR_RE.findall(question):
        if year not in evidence_digits:
            missing.append(year)
    for match in _AMOUNT_RE.finditer(question):
        if _digits(match.group(1).rstrip(".,")) not in evidence_digits:
            missing.append(match.group(0))
    text = "\n".join(evidence)
    for label, asks, given in _ASKED_AND_GIVEN:
        if asks(question) and not given.search(text):
            missing.append(label)
    return list(dict.fromkeys(missing))
