"""The PDF letter: the text drawn on A4 pages with the embedded DejaVu Sans (PDF/A-2B).

Apart from ``adapters.compose`` (e-mails, and where the letters' fonts are found) so that
fpdf2 and fontTools (about 190 modules, a quarter of a second of CPU to import) are loaded
only by the processes that draw letters: the workers (``worker.runtime``), not the
scheduler nor the commands that never draw one.
"""

from __future__ import annotations

import copy
import io
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

from adapters.compose import FONT, letter_fonts
from adapters.pdfa import declare_pdfa
from handlers.identity import legal_mention
from handlers.policy import Creditor
from handlers.statement import Statement

_NEXT_LINE: dict[str, Any] = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}


class _ParsedFonts:
    """The letters' fonts parsed once per process, lent to each letter as cheap copies.

    fpdf2's ``add_font`` reads the TrueType file and works out the glyph and the width of
    each of its 5 900 characters. Here that is done once; each letter gets a shallow copy
    of the parsed ``TTFFont`` sharing what fpdf2 only reads (character map, glyph ids) and
    owning what a document changes: the widths (a defaultdict, which grows on reads of
    unknown characters), the font descriptor (numbered and completed by the output), the
    subset of glyphs used, and its own fontTools font opened on the bytes kept in memory
    (the output subsets it in place and closes it, so the tables the subsetting needs are
    still read once per letter). Those attribute names are fpdf2's internals: fpdf2 is
    pinned in constraints.txt and tests/unit/test_letter_font_reuse.py fails if they change.
    Figures: docs/benchmarks.md ("Rendering a letter").
    """

    def __init__(self, fonts: dict[str, Path]) -> None:
        parser = FPDF()
        self.parsed: list[tuple[str, TTFFont, bytes]] = []
        for style, path in fonts.items():
            parser.add_font(FONT, style, str(path))
            font = parser.fonts[f"{FONT}{style}"]
            assert isinstance(font, TTFFont)  # a .ttf file
            data = _without_unused_tables(path)
            font.ttfont.close()
            # each letter opens its own; the tables read here (6 MB) need not stay in memory
            font.ttfont = _unread(data)
            self.parsed.append((font.fontkey, font, data))

    def lend_to(self, pdf: FPDF) -> None:
        """Give ``pdf`` its own copy of each font (the same as ``add_font`` would add)."""
        for fontkey, parsed, data in self.parsed:
            font = copy.copy(parsed)
            font.i = len(pdf.fonts) + 1
            font.cw = copy.copy(parsed.cw)  # a defaultdict: copied with its default width
            font.desc = copy.copy(parsed.desc)
            font.ttfont = _unread(data)
            font.subset = SubsetMap(font)
            font.missing_glyphs = []
            font.biggest_size_pt = 0
            pdf.fonts[fontkey] = font


# Tables the embedded subset never carries: fpdf2's output drops them (and "kern", which
# fontTools drops when GPOS is there), yet fontTools' subsetter reads GSUB, GPOS and GDEF
# before dropping them; removed once from the kept bytes, they cost no letter anything.
_UNUSED_TABLES = ("FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "kern")


def _unread(data: bytes) -> ttLib.TTFont:
    """A fontTools font on ``data`` that reads a table when asked for it (as fpdf2 opens one)."""
    return ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True)


def _without_unused_tables(path: Path) -> bytes:
    """The font file without ``_UNUSED_TABLES`` (glyph order and metrics unchanged)."""
    font = ttLib.TTFont(path, recalcTimestamp=False, recalcBBoxes=False, lazy=True)
    for tag in _UNUSED_TABLES:
        if tag in font:
            del font[tag]
    kept = io.BytesIO()
    font.save(kept)
    font.close()
    return kept.getvalue()


_PARSING = threading.Lock()  # worker threads render letters at once: the fonts are parsed once
_parsed_fonts: _ParsedFonts | None = None


def parsed_fonts() -> _ParsedFonts:
    """The process's parsed letter fonts, parsed by the first letter (FontMissing if absent)."""
    global _parsed_fonts
    with _PARSING:
        if _parsed_fonts is None:
            _parsed_fonts = _ParsedFonts(letter_fonts())
        return _parsed_fonts


class _Letter(FPDF):
    """An A4 letter whose every page ends with the creditor's legal mentions (C. com. R123-237)."""

    def __init__(self, mentions: str) -> None:
        super().__init__(format="A4")
        self._mentions = mentions
        parsed_fonts().lend_to(self)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(FONT, size=7)
        self.multi_cell(0, 3.5, self._mentions, align="C", **_NEXT_LINE)


def letter_pdf(
    *,
    creditor: Creditor,
    recipient_lines: list[str],
    subject: str,
    body_text: str,
    reference: str,
    at: datetime,
    place_date: str,
    registered: bool,
    statement: Statement | None = None,
) -> bytes:
    """The letter as PDF/A-2B (``adapters.pdfa``): sender, recipient, place and date,
    subject, the text, and the creditor's legal mentions at the foot of every page; with a
    ``statement``, an annex after the text lists it line by line (the same lines as the CSV
    of an e-mail). The bytes depend only on the arguments."""
    pdf = _Letter(legal_mention(creditor, "fr"))
    declare_pdfa(pdf, title=subject, author=creditor.name, at=at)  # kept for years: PDF/A-2B
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font(FONT, size=10)
    sender = [creditor.name, *creditor.address]
    if creditor.siren:
        sender.append(f"SIREN {creditor.siren}")
    pdf.multi_cell(90, 5, "\n".join(sender), **_NEXT_LINE)
    pdf.set_xy(110, 50)
    pdf.multi_cell(80, 5, "\n".join(recipient_lines), **_NEXT_LINE)
    pdf.set_xy(110, pdf.get_y() + 8)
    pdf.multi_cell(80, 5, place_date, **_NEXT_LINE)
    pdf.set_y(max(pdf.get_y() + 8, 100))
    if registered:
        pdf.set_font(FONT, style="B", size=10)
        pdf.multi_cell(0, 5, "Lettre recommandée avec accusé de réception", **_NEXT_LINE)
    pdf.set_font(FONT, style="B", size=11)
    pdf.multi_cell(0, 6, f"Objet : {subject}", **_NEXT_LINE)
    pdf.set_font(FONT, size=8)
    pdf.multi_cell(0, 4, f"Réf. {reference}", **_NEXT_LINE)
    pdf.ln(4)
    pdf.set_font(FONT, size=10)
    pdf.multi_cell(0, 5, body_text, **_NEXT_LINE)
    if statement is not None:
        _annex(pdf, statement)
    return bytes(pdf.output())


def _annex(pdf: FPDF, statement: Statement) -> None:
    """The statement on new pages, one line per invoice, in a small font."""
    pdf.add_page()
    pdf.set_font(FONT, style="B", size=10)
    pdf.multi_cell(0, 6, f"Annexe : relevé des factures ({statement.filename})", **_NEXT_LINE)
    pdf.set_font(FONT, size=7)
    for line in statement.text_lines():
        pdf.cell(0, 3.5, line, **_NEXT_LINE)
