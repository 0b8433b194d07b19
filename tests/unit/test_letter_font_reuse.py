"""The letters' fonts are parsed once per process and lent to each letter
(``adapters.letter._ParsedFonts``), which leans on fpdf2's internals: these tests fail if
a new fpdf2 changes them, and show that a lent font gives the very bytes ``add_font`` gives,
also with letters rendered at once on several threads."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import fpdf
import pytest
from fpdf.fonts import SubsetMap, TTFFont

from adapters import letter as letters
from adapters.compose import FONT, letter_fonts
from adapters.letter import letter_pdf, parsed_fonts
from handlers.policy import Creditor

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


def letter(n: int) -> bytes:
    return letter_pdf(
        creditor=Creditor(name=f"Créancier {n}"),
        recipient_lines=[f"Αθηνά Παπαδοπούλου {n}", "ul. Piotrkowska 1", "90-001 Łódź"],
        subject=f"Relance n° {n} – Żółć",
        body_text=f"Madame, Monsieur,\n{'Ёлка ' * n}Dvořák {n}\n" * (n + 1),
        reference=f"ref-{n}",
        at=datetime(2026, 4, 14, 8, n, tzinfo=UTC),
        place_date="Paris, le 14 avril 2026",
        registered=n % 2 == 0,
    )


class _AddedFonts:
    """What a letter did before: fpdf2's own add_font, parsing the files."""

    def lend_to(self, pdf: fpdf.FPDF) -> None:
        for style, path in letter_fonts().items():
            pdf.add_font(FONT, style, str(path))


def test_fpdf2_is_the_pinned_version_the_lending_was_written_for():
    pinned = re.search(r"^fpdf2==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    assert pinned is not None
    assert fpdf.FPDF_VERSION == pinned[1] == "2.8.9", "check adapters.letter._ParsedFonts against it"


def test_the_ttffont_internals_the_lending_sets_are_still_there():
    for name in ("i", "cw", "desc", "ttfont", "subset", "missing_glyphs", "biggest_size_pt", "fontkey"):
        assert name in TTFFont.__slots__, name
    font = next(iter(parsed_fonts().parsed))[1]
    assert font.color_font is None and font._hbfont is None  # nothing else holds per-document state
    assert SubsetMap(font).font is font


def test_a_lent_font_gives_the_bytes_of_a_font_added_by_fpdf2(monkeypatch):
    lent = [letter(n) for n in (1, 4)]
    monkeypatch.setattr(letters, "parsed_fonts", _AddedFonts)
    assert [letter(n) for n in (1, 4)] == lent


def test_a_letter_parses_no_font_once_the_process_has_parsed_them(monkeypatch):
    parsed = parsed_fonts()

    def no_parsing(*args, **kwargs):
        raise AssertionError("a letter parsed a font file")

    monkeypatch.setattr(fpdf.FPDF, "add_font", no_parsing)
    monkeypatch.setattr(TTFFont, "__init__", no_parsing)
    assert letter(2).startswith(b"%PDF-")
    assert parsed_fonts() is parsed


def test_a_letter_leaves_the_parsed_fonts_as_they_were():
    fonts = [font for _, font, _ in parsed_fonts().parsed]
    before = [(len(f.cw), dict(vars(f.desc)), f.missing_glyphs, len(f.subset)) for f in fonts]
    letter(3)
    letter_pdf(  # characters DejaVu Sans lacks: a width looked up, a glyph missing
        creditor=Creditor(),
        recipient_lines=["中文"],
        subject="S",
        body_text="中",
        reference="r",
        at=datetime(2026, 4, 14, tzinfo=UTC),
        place_date="P",
        registered=False,
    )
    assert [(len(f.cw), dict(vars(f.desc)), f.missing_glyphs, len(f.subset)) for f in fonts] == before


@pytest.mark.parametrize("threads", [4])
def test_letters_rendered_at_once_on_threads_are_those_rendered_one_by_one(threads):
    numbers = list(range(12))
    alone = [letter(n) for n in numbers]
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(2):
            assert list(pool.map(letter, numbers)) == alone
