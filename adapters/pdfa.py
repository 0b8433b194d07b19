"""PDF/A-2B for the letters: the parts of ISO 19005-2 a document declares itself.

A letter is kept as the exact bytes sent (their SHA-256 in the evidence), so the file
itself must stay readable for as long as the claim may be argued. What makes it PDF/A is
partly how it is drawn (every font embedded, no transparency, no encryption, no external
content: ``adapters.letter`` draws nothing else) and partly what it declares, set here:

- an output intent ``GTS_PDFA1`` carrying an ICC profile (fpdf2's own sRGB one), which
  gives the device colours of the text a defined meaning;
- XMP metadata naming the part and conformance (``pdfaid:part`` 2, ``pdfaid:conformance``
  B) and repeating, with the same values, what the Info dictionary says (title, author,
  creator, producer, creation date), as the standard requires when both are present;
- PDF version 1.7, the base of PDF/A-2.

fpdf2's own ``enforce_compliance`` mode would write the same declarations but leaves the
Info dictionary out (PDF/A allows that, readers such as ``pdfinfo`` then show no title)
and stamps the XMP with the time of rendering, where a letter's bytes depend only on its
content. What is and is not guaranteed: docs/architecture.md ("Letters as PDF/A").
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from fpdf import FPDF, FPDF_VERSION
from fpdf.enums import OutputIntentSubType
from fpdf.output import PDFICCProfile
from fpdf.util import builtin_srgb2014_bytes

PART, CONFORMANCE = 2, "B"
CREATOR = "relance"
PRODUCER = f"fpdf2 {FPDF_VERSION}"
PDF_VERSION = "1.7"  # PDF/A-2 is based on ISO 32000-1 (PDF 1.7)
# Characters XML 1.0 forbids in the XMP packet (controls other than tab, LF, CR)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def declare_pdfa(pdf: FPDF, *, title: str, author: str, at: datetime) -> None:
    """Make ``pdf`` declare PDF/A-2B, with ``title``, ``author`` and the creation instant
    ``at`` written alike in the Info dictionary and the XMP metadata (call before output)."""
    title, author = plain(title), plain(author)
    created = at.astimezone(UTC).replace(microsecond=0)  # the Info date has whole seconds
    pdf.pdf_version = PDF_VERSION
    # no transparency at all: fpdf2 otherwise gives every page of a PDF past 1.3 a
    # transparency group, in case an image has an alpha channel (a letter has none)
    pdf.allow_images_transparency = False
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator(CREATOR)
    pdf.set_producer(PRODUCER)
    pdf.set_creation_date(created)
    pdf.add_output_intent(
        OutputIntentSubType.PDFA,
        output_condition_identifier="sRGB",
        output_condition="IEC 61966-2-1:1999",
        registry_name="http://www.color.org",
        # a PDF object numbered by the output: one per document, never shared by threads
        dest_output_profile=PDFICCProfile(contents=srgb_profile(), n=3, alternate="DeviceRGB"),
        info="sRGB2014 (v2)",
    )
    pdf.set_xmp_metadata(xmp_metadata(title=title, author=author, created=created))


@functools.cache
def srgb_profile() -> bytes:
    """The sRGB ICC profile (version 2) that fpdf2 ships, read once per process."""
    return builtin_srgb2014_bytes()


def plain(text: str) -> str:
    """``text`` on one line without the control characters XML cannot carry."""
    return " ".join(_NOT_XML.sub("", text).split())


def xmp_metadata(*, title: str, author: str, created: datetime) -> str:
    """The XMP packet's content (fpdf2 wraps it in ``<?xpacket?>``): PDF/A identification,
    then the document's title, author, tool, producer and dates, all fixed by its content
    (the modification and metadata dates are the creation's: a letter is never edited)."""
    when = created.isoformat()
    return "\n".join(
        [
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
            '  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
            f"   <pdfaid:part>{PART}</pdfaid:part>",
            f"   <pdfaid:conformance>{CONFORMANCE}</pdfaid:conformance>",
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">',
            "   <dc:format>application/pdf</dc:format>",
            "   <dc:title><rdf:Alt>",
            f'    <rdf:li xml:lang="x-default">{escape(title)}</rdf:li>',
            "   </rdf:Alt></dc:title>",
            f"   <dc:creator><rdf:Seq><rdf:li>{escape(author)}</rdf:li></rdf:Seq></dc:creator>",
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">',
            f"   <xmp:CreatorTool>{escape(CREATOR)}</xmp:CreatorTool>",
            f"   <xmp:CreateDate>{when}</xmp:CreateDate>",
            f"   <xmp:ModifyDate>{when}</xmp:ModifyDate>",
            f"   <xmp:MetadataDate>{when}</xmp:MetadataDate>",
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
            f"   <pdf:Producer>{escape(PRODUCER)}</pdf:Producer>",
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
        ]
    )
