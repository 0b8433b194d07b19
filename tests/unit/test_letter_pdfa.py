"""Letters are archived as PDF/A-2B: what a file declares and what it must not contain.

Without a validator these checks read the structure with pypdf: the output intent and its
ICC profile, the XMP identification, the Info dictionary and the XMP saying the same
things, every font embedded, no encryption, no transparency. When veraPDF is installed
(``verapdf`` on the PATH), the last test has it validate a letter against PDF/A-2B.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject

from adapters.letter import letter_pdf
from handlers.policy import Creditor

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
}
PARIS_SUMMER = timezone(timedelta(hours=2))
SUBJECT = "Mise en demeure de payer – F-1 & F-2 <Łódź>"


def letter(at: datetime = datetime(2026, 4, 14, 10, 30, 15, tzinfo=PARIS_SUMMER), **changes) -> bytes:
    arguments = {
        "creditor": Creditor(name="Dupont & Fils « Outillage »"),
        "recipient_lines": ["Αθηνά Παπαδοπούλου", "ul. Piotrkowska 1", "90-001 Łódź", "PL"],
        "subject": SUBJECT,
        "body_text": "Madame, Monsieur,\n" * 120,  # three pages
        "reference": "ref-1",
        "at": at,
        "place_date": "Paris, le 14 avril 2026",
        "registered": True,
    }
    return letter_pdf(**(arguments | changes))


def reader(content: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(content))


def xmp_tree(document: PdfReader) -> ET.Element:
    stream = document.trailer["/Root"]["/Metadata"].get_object()
    assert "/Filter" not in stream  # the metadata stays readable without decoding
    packet = stream.get_data().decode("utf-8")
    assert packet.startswith("<?xpacket begin=") and packet.rstrip().endswith('<?xpacket end="w"?>')
    return ET.fromstring(packet[packet.index("<x:xmpmeta") : packet.index("</x:xmpmeta>") + 12])


def xmp_value(tree: ET.Element, path: str) -> str:
    found = tree.findall(f".//{path}", NS)
    assert len(found) == 1, path
    return found[0].text or ""


def pdf_date(text: str) -> datetime:
    """An Info date (D:YYYYMMDDHHmmSS followed by Z or +HH'mm')."""
    stamp = datetime.strptime(text[2:16], "%Y%m%d%H%M%S")
    zone = text[16:]
    if zone in ("", "Z"):
        return stamp.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = zone[1:].rstrip("'").split("'")
    return stamp.replace(tzinfo=timezone(sign * timedelta(hours=int(hours), minutes=int(minutes))))


def test_the_letter_is_pdf_1_7_with_an_srgb_output_intent_for_pdfa():
    content = letter()
    assert content.startswith(b"%PDF-1.7\n%")
    (intent,) = [i.get_object() for i in reader(content).trailer["/Root"]["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/OutputConditionIdentifier"] == "sRGB"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    icc = profile.get_data()
    assert icc[36:40] == b"acsp"  # an ICC profile's signature
    assert icc[16:20] == b"RGB "  # of the colour space the text is drawn in
    assert int.from_bytes(icc[:4], "big") == len(icc)


def test_the_xmp_declares_pdfa_2b():
    tree = xmp_tree(reader(letter()))
    assert xmp_value(tree, "pdfaid:part") == "2"
    assert xmp_value(tree, "pdfaid:conformance") == "B"


def test_the_info_dictionary_and_the_xmp_say_the_same_things():
    at = datetime(2026, 4, 14, 10, 30, 15, 999, tzinfo=PARIS_SUMMER)
    document = reader(letter(at=at))
    info, tree = document.metadata, xmp_tree(document)
    assert info["/Title"] == xmp_value(tree, "dc:title/rdf:Alt/rdf:li") == SUBJECT
    assert info["/Author"] == xmp_value(tree, "dc:creator/rdf:Seq/rdf:li") == "Dupont & Fils « Outillage »"
    assert info["/Creator"] == xmp_value(tree, "xmp:CreatorTool") == "relance"
    assert info["/Producer"] == xmp_value(tree, "pdf:Producer")
    assert info["/Producer"].startswith("fpdf2 ")
    created = pdf_date(info["/CreationDate"])
    assert created == at.replace(microsecond=0)
    for name in ("xmp:CreateDate", "xmp:ModifyDate", "xmp:MetadataDate"):
        assert datetime.fromisoformat(xmp_value(tree, name)) == created, name
    assert "/ModDate" not in info  # a date the Info would have to share with xmp:ModifyDate


def test_a_title_with_control_characters_stays_well_formed_xml_and_equal_in_both():
    document = reader(letter(subject="Relance\x07 n°\x1b 2\n – F-9"))
    assert document.metadata["/Title"] == xmp_value(xmp_tree(document), "dc:title/rdf:Alt/rdf:li")
    assert document.metadata["/Title"] == "Relance n° 2 – F-9"


def test_the_same_letter_twice_gives_the_same_bytes():
    assert letter() == letter()


def _fonts(document: PdfReader) -> dict[str, DictionaryObject]:
    fonts = {}
    for page in document.pages:
        for name, ref in page["/Resources"]["/Font"].items():
            fonts[name] = ref.get_object()
    return fonts


def test_every_font_is_embedded_on_every_page():
    document = reader(letter())
    assert len(document.pages) >= 3
    fonts = _fonts(document)
    assert len(fonts) == 2  # regular and bold
    for font in fonts.values():
        assert font["/Subtype"] == "/Type0"
        descendant = font["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        assert descriptor["/FontFile2"].get_object().get_data()[:4] == b"\x00\x01\x00\x00"  # TrueType
        assert "/CIDToGIDMap" in descendant


def _dictionaries(document: PdfReader) -> list[DictionaryObject]:
    """Every dictionary of the file, streams' dictionaries included."""
    found = (document.get_object(IndirectObject(n, 0, document)) for n in range(1, document.trailer["/Size"]))
    return [o for o in found if isinstance(o, DictionaryObject)]


def _opaque(state: DictionaryObject) -> bool:
    """A graphics state or XObject dictionary that brings no transparency."""
    return (
        state.get("/SMask", "/None") == "/None"
        and all(float(state.get(alpha, 1)) == 1.0 for alpha in ("/CA", "/ca"))
        and state.get("/BM", "/Normal") in ("/Normal", "/Compatible")
    )


def test_no_encryption_no_transparency_no_attachment_no_script():
    document = reader(letter())
    assert "/Encrypt" not in document.trailer
    dictionaries = _dictionaries(document)
    assert len(dictionaries) > 20  # pages, fonts, the output intent, the metadata...
    for page in document.pages:
        assert page.get("/Group", {}).get("/S") != "/Transparency"
        for state in page["/Resources"].get("/ExtGState", {}).values():
            assert _opaque(state.get_object())
    for found in dictionaries:
        assert _opaque(found)
        assert found.get("/S") != "/Transparency"
        assert found.get("/Type") not in ("/EmbeddedFile", "/Filespec")
        assert found.get("/S") not in ("/JavaScript", "/Launch")


@pytest.mark.skipif(shutil.which("verapdf") is None, reason="veraPDF is not installed")
def test_verapdf_finds_the_letter_pdfa_2b_compliant(tmp_path):
    path = tmp_path / "letter.pdf"
    path.write_bytes(letter())
    run = subprocess.run(
        ["verapdf", "--flavour", "2b", str(path)], capture_output=True, text=True, timeout=300
    )
    assert 'isCompliant="true"' in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]
