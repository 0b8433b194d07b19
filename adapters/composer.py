"""The message composer of the reminder path (``handlers.dunning.Composer``): MIME and PDF."""

from __future__ import annotations

from datetime import datetime

from adapters.compose import email_bytes, letter_fonts
from handlers.policy import Creditor
from handlers.statement import Statement


class DocumentComposer:
    """E-mails as RFC 5322 bytes by ``adapters.compose``, letters as PDF by ``adapters.letter``
    (imported by the first letter, if the process has not loaded it at start as the workers
    do: a process that never draws a letter does not load fpdf2)."""

    def __init__(self) -> None:
        letter_fonts()  # at start-up: FontMissing says which package to install

    def email(
        self,
        *,
        sender: str,
        recipient: str,
        subject: str,
        body_text: str,
        message_id: str,
        at: datetime,
        step: str,
        body_html: str | None = None,
        statement: Statement | None = None,
        reply_to: str | None = None,
    ) -> bytes:
        return email_bytes(
            sender=sender,
            recipient=recipient,
            subject=subject,
            body_text=body_text,
            message_id=message_id,
            at=at,
            step=step,
            body_html=body_html,
            statement=statement,
            reply_to=reply_to,
        )

    def letter(
        self,
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
        from adapters.letter import letter_pdf

        return letter_pdf(
            creditor=creditor,
            recipient_lines=recipient_lines,
            subject=subject,
            body_text=body_text,
            reference=reference,
            at=at,
            place_date=place_date,
            registered=registered,
            statement=statement,
        )
