"""Turn rendered text into the exact bytes that leave: an RFC 5322 e-mail or a PDF letter."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from handlers.policy import Creditor


def new_email(*, sender: str, recipient: str, subject: str, message_id: str, at: datetime,
              **extra_headers: str) -> EmailMessage:
    """An e-mail with relance's headers; ``extra_headers`` as X_Relance_Step="due" etc."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id
    for name, value in extra_headers.items():
        message[name.replace("_", "-")] = value
    message["Auto-Submitted"] = "auto-generated"
    return message


def email_bytes(*, sender: str, recipient: str, subject: str, body_text: str,
                message_id: str, at: datetime, step: str, body_html: str | None = None) -> bytes:
    """A plain-text e-mail, or multipart/alternative (text first, HTML second) with body_html."""
    message = new_email(sender=sender, recipient=recipient, subject=subject,
                        message_id=message_id, at=at, X_Relance_Step=step)
    message.set_content(body_text, charset="utf-8")
    if body_html is not None:
        message.add_alternative(body_html, subtype="html", charset="utf-8")
    return message.as_bytes()


_NEXT_LINE = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}


def _safe(text: str) -> str:
    """Text the PDF core font can draw (Windows-1252), unknown characters replaced."""
    return text.encode("windows-1252", "replace").decode("windows-1252")


def letter_pdf(*, creditor: Creditor, recipient_lines: list[str], subject: str, body_text: str,
               reference: str, at: datetime, place_date: str, registered: bool) -> bytes:
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creation_date(at)
    pdf.set_title(_safe(subject))
    pdf.set_author(_safe(creditor.name))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    sender = [creditor.name, *creditor.address]
    if creditor.siren:
        sender.append(f"SIREN {creditor.siren}")
    pdf.multi_cell(90, 5, _safe("\n".join(sender)), **_NEXT_LINE)
    pdf.set_xy(110, 50)
    pdf.multi_cell(80, 5, _safe("\n".join(recipient_lines)), **_NEXT_LINE)
    pdf.set_xy(110, pdf.get_y() + 8)
    pdf.multi_cell(80, 5, _safe(place_date), **_NEXT_LINE)
    pdf.set_y(max(pdf.get_y() + 8, 100))
    if registered:
        pdf.set_font("helvetica", style="B", size=10)
        pdf.multi_cell(0, 5, _safe("Lettre recommandée avec accusé de réception"), **_NEXT_LINE)
    pdf.set_font("helvetica", style="B", size=11)
    pdf.multi_cell(0, 6, _safe(f"Objet : {subject}"), **_NEXT_LINE)
    pdf.set_font("helvetica", size=8)
    pdf.multi_cell(0, 4, _safe(f"Réf. {reference}"), **_NEXT_LINE)
    pdf.ln(4)
    pdf.set_font("helvetica", size=10)
    pdf.multi_cell(0, 5, _safe(body_text), **_NEXT_LINE)
    return bytes(pdf.output())
