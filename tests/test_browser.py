"""The app in a real browser: Debian's headless Chromium driven by Playwright.

`make test` installs Chromium when it is missing, so these tests never skip. Screenshots go to
`data/test-artifacts/` (git-ignored).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from chat_app import ChatApp, Running, serve
from retrieval.citation_text import citation_text
from tests.app_support import HOSTILE, HOSTILE_LINK, HOSTILE_QUESTION, app_settings, free_port
from tests.helpers import PROJECT_ROOT, write_pdf

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = PROJECT_ROOT / "data" / "test-artifacts"
WAIT_MS = 90_000  # answers on a busy 2-core machine; a bound, not a speed assertion
UPLOAD_MAX_MB = 1

# JavaScript shared by the checks below: colour parsing, WCAG relative luminance and contrast,
# and the first opaque background behind an element (walking up from `node`).
COLOUR_JS = """
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const contrast = (one, other) => {
    const [light, dark] = [luminance(one), luminance(other)].sort((a, b) => b - a);
    return (light + 0.05) / (dark + 0.05);
  };
  const backgroundFrom = (node) => {
    while (node && node.nodeType === 1) {
      const parts = rgb(getComputedStyle(node).backgroundColor);
      if (parts.length === 3 || (parts.length === 4 && parts[3] > 0.9)) {
        return parts.slice(0, 3);
      }
      node = node.parentElement;
    }
    return [255, 255, 255];
  };
"""

# WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST_JS = (
    "(element) => {"
    + COLOUR_JS
    + """
  const text = rgb(getComputedStyle(element).color).slice(0, 3);
  return contrast(text, backgroundFrom(element));
}
"""
)


# The focused element, and whether its focus indicator is visible: an outline of at least 2 px
# whose colour has 3:1 contrast against the background behind the element (WCAG 2.4.7, 1.4.11).
FOCUS_JS = (
    "() => {"
    + COLOUR_JS
    + """
  const element = document.activeElement;
  const style = getComputedStyle(element);
  const background = backgroundFrom(element.parentElement);
  const ratio = contrast(rgb(style.outlineColor), background);
  const name = element.getAttribute('aria-label') || element.innerText || element.placeholder;
  return {
    tag: element.tagName,
    name: (name || '').trim().slice(0, 60),
    classes: element.className.toString(),
    outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
    background: `rgb(${background.join(', ')})`,
    visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
      && ratio >= 3,
  };
}
"""
)


@dataclass
class Session:
    """A browser page on the app, with what it tried that it must not."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings = app_settings(tmp_path_factory, "browser-app", upload_max_mb=UPLOAD_MAX_MB)
    running = serve(ChatApp(settings), "127.0.0.1", free_port())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium fehlt: `make browser` installiert es (apt-get)."
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def session(browser: Browser, app: Running) -> Iterator[Session]:
    context = browser.new_context(
        locale="de-DE", viewport={"width": 1280, "height": 1000}, accept_downloads=True
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.url.rstrip("/"))
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    current = Session(context.new_page())

    def only_the_app(route: Route) -> None:
        url = route.request.url
        if url.startswith(app.url) or not url.startswith(("http:", "https:", "ws:", "wss:")):
            route.continue_()  # the app itself, or the browser's own (chrome://, data:)
        else:  # the app must work offline: nothing may be fetched from elsewhere
            current.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_app)
    current.page.on(
        "dialog", lambda dialog: (current.dialogs.append(dialog.message), dialog.dismiss())
    )
    current.page.goto(app.url)
    yield current
    context.close()


def _ask(page: Page, question: str, *, by_button: bool = False) -> None:
    answers = page.get_by_test_id("bot").count()
    box = page.get_by_label("Ihre Frage")
    box.fill(question)
    if by_button:
        page.get_by_role("button", name="Fragen", exact=True).click()
    else:
        box.press("Enter")
    _wait_for_answer(page, answers + 1)


def _wait_for_answer(page: Page, count: int) -> None:
    expect(page.get_by_test_id("bot")).to_have_count(count)
    expect(page.get_by_test_id("bot").last).not_to_contain_text("Suche in den Quellen")
    expect(page.locator("#qc-quellen .qc-status")).to_have_count(0)


def _wait_for_line(path: Path, kind: str) -> dict[str, object]:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if json.loads(line)["kind"] == kind:
                    return dict(json.loads(line))
        time.sleep(0.2)
    raise AssertionError(f"no {kind} feedback in {path}")


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_answer_sources_citation_link_copy_and_escaped_document_text(
    session: Session, app: Running
) -> None:
    page = session.page
    expect(page).to_have_title("Quellenchat")
    assert page.evaluate("document.documentElement.lang") == "de"
    _ask(page, HOSTILE_QUESTION)

    answer = page.get_by_test_id("bot").last
    sources = page.locator("#qc-quellen")
    card = sources.locator("article.qc-card").first
    expect(answer).to_contain_text("Prompt")
    # Markup inside the PDF's text shows as text, in the answer and in the sources panel.
    expect(answer).to_contain_text(HOSTILE)
    expect(card).to_contain_text(HOSTILE)
    expect(card).to_contain_text(HOSTILE_LINK)
    expect(page.locator('img[src="x"]')).to_have_count(0)
    expect(page.locator('a[href^="javascript"]')).to_have_count(0)
    expect(card.locator("mark")).to_contain_text("Prompt")
    expect(card).to_contain_text("KI-Sicherheit im Mittelstand")
    expect(card).to_contain_text("S. 2")
    expect(card).to_contain_text(f"2021 (vor {datetime.now().year - 2021} Jahren)")
    expect(card).to_contain_text("✓ geprüft")
    _screenshot(page, "browser-antwort.png")

    # Clicking the citation opens the corpus PDF, served by the app, at the cited page.
    with page.expect_popup() as popup:
        card.get_by_role("link", name="PDF öffnen (S. 2)").click()
    opened = popup.value.url
    assert opened.startswith(app.url + "quellen/")
    assert opened.endswith(".pdf#page=2")
    served = page.request.get(opened.split("#")[0])
    assert served.status == 200
    assert served.headers["content-type"] == "application/pdf"
    assert served.body().startswith(b"%PDF-")
    popup.value.close()

    # "Zitat kopieren" by keyboard alone puts the citation line on the clipboard.
    expected = citation_text(app.chat.answerer.ask(HOSTILE_QUESTION).citations[0])
    copy = card.get_by_role("button", name="Zitat 1 kopieren")
    copy.focus()
    page.keyboard.press("Enter")
    expect(copy).to_have_text("Kopiert ✓")
    assert page.evaluate("navigator.clipboard.readText()") == expected
    assert HOSTILE in expected

    # "Zitat falsch" stores feedback naming that citation.
    wrong = card.get_by_role("button", name="Zitat 1 als falsch melden")
    wrong.click()
    expect(wrong).to_have_text("Gemeldet ✓")
    entry = _wait_for_line(app.chat.settings.feedback_file, "zitat_falsch")
    assert entry["citation"] == 1
    assert entry["question"] == HOSTILE_QUESTION
    expect(page.locator("#qc-rueckmeldung")).to_contain_text("Zitat [1]")

    assert session.dialogs == []
    assert session.outside == []


def test_example_follow_up_export_and_new_conversation(session: Session, app: Running) -> None:
    page = session.page
    page.get_by_role("button", name="Wie viele KMU setzen bereits KI ein?").click()
    _wait_for_answer(page, 1)
    expect(page.get_by_label("Ihre Frage")).to_have_value("")
    _ask(page, "Und bei den mittelgroßen Firmen?", by_button=True)
    expect(page.get_by_test_id("user")).to_have_count(2)
    expect(page.get_by_test_id("bot").last).to_contain_text("MA)")

    assert list(app.chat.exports.root.glob("*/*.md")) == []  # written only when asked for
    with page.expect_download() as download:
        page.get_by_role("button", name="Als Markdown exportieren").click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.startswith("quellenchat-unterhaltung-")
    assert "Wie viele KMU setzen bereits KI ein?" in markdown
    assert "Und bei den mittelgroßen Firmen?" in markdown
    assert markdown.count("### Quellen") == 2

    page.get_by_role("button", name="Neue Unterhaltung").click()
    expect(page.get_by_test_id("bot")).to_have_count(0)
    expect(page.locator("#qc-quellen")).to_contain_text("Hier erscheinen die Quellen")
    assert session.outside == []


def test_rating_an_answer_with_a_comment(session: Session, app: Running) -> None:
    page = session.page
    _ask(page, "Welche Chancen bietet KI für kleine und mittlere Unternehmen?")
    page.get_by_text("Rückmeldung zur letzten Antwort").click()
    page.get_by_label("Kommentar (optional)").fill("Sehr hilfreich, danke")
    page.get_by_role("button", name="👍 Hilfreich").click()
    expect(page.locator("#qc-rueckmeldung")).to_contain_text("gespeichert")
    entry = _wait_for_line(app.chat.settings.feedback_file, "hilfreich")
    assert entry["comment"] == "Sehr hilfreich, danke"
    assert entry["question"] == "Welche Chancen bietet KI für kleine und mittlere Unternehmen?"


def test_controls_are_labelled_and_text_has_readable_contrast(session: Session) -> None:
    page = session.page
    _ask(page, "Warum fehlt vielen Firmen das Vertrauen in KI?")
    page.get_by_text("Rückmeldung zur letzten Antwort").click()
    for label in ("Ihre Frage", "Kommentar (optional)"):
        expect(page.get_by_label(label)).to_have_count(1)
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input, textarea')]
            .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
            .filter((el) => !(el.getAttribute('aria-label') || el.title || el.labels?.length
                              || el.innerText.trim() || el.getAttribute('aria-labelledby')))
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []
    checked = {
        "Fragen-Knopf": page.get_by_role("button", name="Fragen", exact=True),
        "aktiver Reiter": page.get_by_role("tab", name="Chat"),
        "Einleitung": page.get_by_text("Fragen Sie auf Deutsch"),
        "Antwort": page.get_by_test_id("bot").last.locator("p").first,
        "Quellen-Angaben": page.locator("#qc-quellen .qc-meta").first,
        "geprüft": page.locator("#qc-quellen .qc-ok").first,
        "Zitat": page.locator("#qc-quellen mark").first,
        "Feldbeschriftung": page.get_by_text("Ihre Frage", exact=True),
    }
    ratios = {name: float(locator.evaluate(CONTRAST_JS)) for name, locator in checked.items()}
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios


def test_quellen_tab_upload_plan_and_ingest(session: Session, tmp_path: Path) -> None:
    page = session.page
    page.get_by_role("tab", name="Quellen").click()
    table = page.get_by_role("grid", name="Dokumente")
    expect(table.get_by_text("KI-Sicherheit im Mittelstand")).to_be_visible()
    page.get_by_role("button", name="Aktualisieren").click()
    expect(page.get_by_text("Der Index ist aktuell")).to_be_visible()

    pdf = write_pdf(
        tmp_path / "Fördermittel.pdf",
        ["Das Förderprogramm Digital Jetzt bezuschusst KI-Projekte kleiner Unternehmen."],
    )
    page.locator("input[type=file][accept='.pdf']").set_input_files(str(pdf))
    page.get_by_role("button", name="Hochladen").click()
    expect(page.get_by_text("„Fördermittel.pdf“ gespeichert")).to_be_visible()
    expect(page.get_by_text("1 neu")).to_be_visible()
    page.get_by_role("button", name="Jetzt einlesen").click()
    expect(page.get_by_text("Erledigt:")).to_be_visible()
    expect(table.get_by_text("literature/Fördermittel.pdf")).to_be_visible()
    expect(page.get_by_role("button", name="Jetzt einlesen")).to_be_hidden()
    _screenshot(page, "browser-quellen.png")
    assert session.outside == []


def _tab_to(page: Page, wanted: Callable[[dict[str, Any]], bool], limit: int = 60) -> None:
    """Press Tab until `wanted` holds for the focused element; every stop must show its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused["tag"] != "BODY":
            assert focused["visible"], focused
        if wanted(focused):
            return
    raise AssertionError(f"nicht per Tab erreichbar (zuletzt: {focused})")


def test_the_whole_flow_by_keyboard_alone(session: Session, app: Running) -> None:
    page = session.page
    expect(page.get_by_label("Ihre Frage")).to_be_visible()
    _tab_to(page, lambda f: f["tag"] == "TEXTAREA" and "Welche Chancen" in f["name"])
    page.keyboard.type(HOSTILE_QUESTION)
    page.keyboard.press("Enter")
    _wait_for_answer(page, 1)
    _screenshot(page, "browser-tastatur-antwort.png")
    _tab_to(page, lambda f: "qc-copy" in f["classes"])
    assert page.evaluate(FOCUS_JS)["name"] == "Zitat 1 kopieren"
    _screenshot(page, "browser-tastatur-fokus.png")
    page.keyboard.press("Enter")
    copy = page.locator("#qc-quellen button.qc-copy").first
    expect(copy).to_have_text("Kopiert ✓")
    expected = citation_text(app.chat.answerer.ask(HOSTILE_QUESTION).citations[0])
    assert page.evaluate("navigator.clipboard.readText()") == expected
    assert session.outside == []


def test_what_feedback_stores_is_visible_where_feedback_is_given(session: Session) -> None:
    page = session.page
    _ask(page, "Warum fehlt vielen Firmen das Vertrauen in KI?")
    note = page.locator("#qc-datenschutz")
    expect(note).to_be_visible()  # without opening the "Rückmeldung" accordion
    expect(note).to_contain_text("keine IP-Adresse")
    expect(note).to_contain_text("nach 180 Tagen gelöscht")
    expect(page.locator("#qc-quellen .qc-note")).to_be_visible()
    expect(page.locator("#qc-quellen .qc-note")).to_contain_text("keine Nutzerdaten")


def test_oversized_upload_is_refused_in_german_before_it_is_sent(
    session: Session, app: Running, tmp_path: Path
) -> None:
    page = session.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/upload" in r.url else None)
    page.get_by_role("tab", name="Quellen").click()
    big = tmp_path / "Großer Bericht.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (UPLOAD_MAX_MB * 1024 * 1024 + 1))
    page.locator("input[type=file][accept='.pdf']").set_input_files(str(big))
    hint = page.locator("#qc-upload-fehler")
    expect(hint).to_contain_text("„Großer Bericht.pdf“ ist zu groß (1,0 MB, höchstens 1 MB)")
    expect(hint).to_contain_text("Nichts wurde hochgeladen")
    page.get_by_role("button", name="Hochladen").click()
    expect(page.get_by_text("Bitte zuerst eine PDF-Datei auswählen")).to_be_visible()
    assert sent == []
    assert not (app.chat.settings.corpus[0] / "literature" / "Großer Bericht.pdf").exists()

    small = write_pdf(tmp_path / "klein.pdf", ["Ein kleiner Bericht über Sensorik im Betrieb."])
    page.locator("input[type=file][accept='.pdf']").set_input_files(str(small))
    expect(hint).to_have_text("")
    page.get_by_role("button", name="Hochladen").click()
    expect(page.get_by_text("„klein.pdf“ gespeichert")).to_be_visible()
    (app.chat.settings.corpus[0] / "literature" / "klein.pdf").unlink()  # not for other tests
    assert session.outside == []
