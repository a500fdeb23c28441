"""The page's look: title, introduction, CSS, page script and theme (no internet needed)."""

from __future__ import annotations

import gradio as gr

TITLE = "Quellenchat"
INTRO = (
    "Fragen Sie auf Deutsch zum Faktenblatt „Digitalisierungstechnologien – Künstliche "
    "Intelligenz (KI)“ und seiner Literatur – jede Antwort mit wörtlichen, geprüften Zitaten."
)
CSS = """
.qc-sources { display: flex; flex-direction: column; gap: .75rem; }
.qc-card { border: 1px solid #6b7280; border-radius: 8px; padding: .75rem; background: #ffffff;
  color: #111827; }
.qc-card h3 { font-size: 1rem; margin: 0 0 .25rem; color: #111827; }
.qc-n { font-weight: 700; }
.qc-meta { font-size: .9rem; color: #374151; margin: 0 0 .5rem; }
.qc-ok { color: #065f46; font-weight: 600; }
.qc-unverified { color: #9a3412; font-weight: 600; }
.qc-passage { white-space: pre-line; margin: 0 0 .5rem; padding-left: .75rem;
  border-left: 4px solid #6b7280; max-height: 16rem; overflow-y: auto; color: #111827; }
.qc-passage mark { background: #fde047; color: #000000; }
.qc-card a { color: #1d4ed8; text-decoration: underline; }
.qc-card button { border: 1px solid #374151; border-radius: 6px; padding: .25rem .6rem;
  background: #f3f4f6; color: #111827; cursor: pointer; margin-right: .5rem; }
/* Keyboard focus always clearly visible (WCAG 2.4.7), whatever the theme does; text fields
   draw it inside, where no container clips it. */
:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px !important; }
textarea:focus-visible, input:focus-visible { outline-offset: -3px !important; }
.qc-related { border-style: dashed; }
.qc-note { font-size: .85rem; color: #374151; margin: 0; }
.qc-status, .qc-empty { color: #374151; }
"""

# Gradio refuses an oversized upload only with an English message (and, server-side, once the
# limit is reached); this refuses it in German before a byte is sent. The limit comes from the
# hint element of the Quellen tab.
PAGE_JS = """() => {
  document.documentElement.lang = 'de';
  const refuse = (event, files) => {
    const hint = document.getElementById('qc-upload-fehler');
    if (!hint || !files?.length || !event.target.closest?.('#qc-upload')) return;
    const big = [...files].find((file) => file.size > Number(hint.dataset.maxBytes));
    hint.textContent = big
      ? `Abgelehnt: „${big.name}“ ist zu groß (${(big.size / 1048576).toFixed(1)
          .replace('.', ',')} MB, höchstens ${hint.dataset.maxMb} MB). Nichts wurde hochgeladen.`
      : '';
    if (big) {
      event.preventDefault();
      event.stopImmediatePropagation();
      if (event.target.value) event.target.value = '';
    }
  };
  for (const name of ['input', 'change']) {
    document.addEventListener(name, (event) => refuse(event, event.target.files), true);
  }
  document.addEventListener('drop', (event) => refuse(event, event.dataTransfer?.files), true);
}
"""


def theme() -> gr.themes.Base:
    """System fonts (nothing fetched from the internet) and colours with WCAG AA contrast."""
    return gr.themes.Default(
        primary_hue=gr.themes.colors.blue,
        font=["system-ui", "Segoe UI", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    ).set(
        color_accent="*primary_700",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        body_text_color_subdued="*neutral_600",
        block_label_text_color="*neutral_700",
        input_placeholder_color="*neutral_500",
        # Not "all": the focus outline must appear at once, not fade in from the text colour.
        button_transition="background-color 0.2s ease, border-color 0.2s ease, color 0.2s ease",
    )
