"""The fonts of PDF reports: embedded TrueType fonts from installed packages, so names, skills
and organization names render in any script people write them in.

- Noto Sans (Latin with its extensions, Greek, Cyrillic, Vietnamese) sets all text;
- WenQuanYi Micro Hei takes over, character by character, where Noto Sans has no glyph (Chinese,
  Japanese kana and kanji, Korean hangul); it is registered only when a report needs it;
- Helvetica-Bold (a standard PDF font, not embedded) sets the report's own bold labels (titles,
  column heads); a character it cannot encode falls back to the chain above.

reportlab embeds each TrueType font as a subset of the glyphs the file uses, so a report carries
a few kilobytes of each font, not megabytes. A character none of the fonts has is drawn by the
last font's "missing glyph" box; the text extracted from the PDF still holds the character.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import fontpkg_noto_sans
import paperang_p2_fonts_cjk
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

REGULAR = "NotoSans"
CJK = "WenQuanYiMicroHei"
BOLD = "Helvetica-Bold"

NOTO_PATH = Path(fontpkg_noto_sans.ROOT) / "files" / "NotoSans[wdth,wght].ttf"
CJK_PATH = Path(paperang_p2_fonts_cjk.__file__).parent / "fonts" / "wqy-microhei.ttc"


@cache
def _registered(name: str) -> TTFont:
    """Register a TrueType font once per process (reading its tables takes tens of ms)."""
    if name == REGULAR:
        font = TTFont(REGULAR, str(NOTO_PATH))
    elif name == CJK:
        font = TTFont(CJK, str(CJK_PATH), subfontIndex=0)
    else:
        raise ValueError(f"not a report font: {name}")
    pdfmetrics.registerFont(font)
    return font


def regular() -> str:
    """The body font's name, registered."""
    _registered(REGULAR)
    return REGULAR


def _covers_regular(ch: str) -> bool:
    return ord(ch) in _registered(REGULAR).face.charWidths


def _covers_bold(ch: str) -> bool:
    try:
        ch.encode("cp1252")  # what the standard fonts' WinAnsiEncoding can show
    except UnicodeEncodeError:
        return False
    return True


def font_for(ch: str, bold: bool = False) -> str:
    """The first font of the chain that has a glyph for `ch`."""
    if bold and _covers_bold(ch):
        return BOLD
    if ch.isspace() or _covers_regular(ch):
        return REGULAR
    _registered(CJK)
    return CJK


def runs(text: str, bold: bool = False) -> Iterator[tuple[str, str]]:
    """(font name, text) of consecutive characters set in the same font."""
    start, current = 0, ""
    for i, ch in enumerate(text):
        font = font_for(ch, bold)
        if font != current:
            if i > start:
                yield current, text[start:i]
            start, current = i, font
    if len(text) > start:
        yield current, text[start:]


def single_font(text: str, bold: bool = False) -> str:
    """One font for all of `text` (a chart label is drawn in one): the style's own when it has
    every character, else the chain's font of the first character it lacks."""
    fallback = [font for font, _ in runs(text, bold) if font != (BOLD if bold else REGULAR)]
    if not fallback:
        return BOLD if bold else REGULAR
    return CJK if CJK in fallback else fallback[0]


def needs_fallback(text: str, bold: bool = False) -> bool:
    """Whether some character of `text` is not in the style's own font."""
    own = BOLD if bold else REGULAR
    return any(font != own for font, _ in runs(text, bold))


def markup(text: str, bold: bool = False) -> str:
    """Escaped paragraph markup of plain text (names never become markup), with a font tag around
    each run the style's own font cannot show."""
    own = BOLD if bold else REGULAR
    return "".join(
        escape(part) if font == own else f'<font name="{font}">{escape(part)}</font>'
        for font, part in runs(text, bold)
    )


def string_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of `text` set through the fallback chain."""
    return float(sum(pdfmetrics.stringWidth(part, font, size) for font, part in runs(text, bold)))
