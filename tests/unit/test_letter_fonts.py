"""Letters print every European name as written, in an embedded Unicode TrueType font."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from adapters.letter import letter_pdf
from handlers.policy import Creditor

NAMES = [
    "Łódź Żółć Sp. z o.o.",
    "Αθηνά Παπαδοπούλου",
    "Dvořák a syn s.r.o.",
    "Šiaulių Ūkis UAB",
    "Őrség Kft.",
]


def letter() -> bytes:
    return letter_pdf(
        creditor=Creditor(),
        recipient_lines=[*NAMES, "ul. Piotrkowska 1", "90-001 Łódź", "PL"],
        subject="Mise en demeure de payer – F-1",
        body_text="Madame, Monsieur,\n" + "\n".join(f"Débiteur : {n}" for n in NAMES),
        reference="ref-1",
        at=datetime(2026, 4, 14, 8, 0, tzinfo=UTC),
        place_date="Paris, le 14 avril 2026",
        registered=True,
    )


def test_polish_greek_czech_lithuanian_and_hungarian_names_print_as_written():
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(letter())).pages)
    assert "?" not in text  # nothing replaced
    for name in NAMES:
        assert name in text, name
    assert "90-001 Łódź" in text


def test_every_font_of_the_letter_is_an_embedded_truetype_font():
    reader = PdfReader(io.BytesIO(letter()))
    fonts = {}
    for page in reader.pages:
        for name, ref in page["/Resources"]["/Font"].items():
            fonts[name] = ref.get_object()
    assert fonts
    for font in fonts.values():
        descendant = font["/DescendantFonts"][0].get_object()
        assert descendant["/Subtype"] == "/CIDFontType2"  # TrueType outlines
        assert "/FontFile2" in descendant["/FontDescriptor"].get_object()  # embedded
        assert "DejaVuSans" in str(font["/BaseFont"])
