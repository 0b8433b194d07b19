"""The e-mail bytes: what a mail client reads back, and what SMTP accepts."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest

from adapters.compose import email_bytes, encoded_words
from tests.flowtime import T0

LONG_NAME = "Société Générale des Eaux de la Ville de Lyon et de sa Région <relance@creancier.example>"


def build(
    subject: str = "Rappel",
    sender: str = "Relance <relance@creancier.example>",
    body_text: str = "Montant dû : 1 234,56 €\n",
    body_html: str | None = "<p>dû</p>\n",
) -> bytes:
    return email_bytes(
        sender=sender,
        recipient="compta@acme.example",
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        message_id="<m-1@creancier.example>",
        at=T0,
        step="reminder_2",
    )


@pytest.mark.parametrize(
    "subject",
    [
        "2e relance pour facture impayée : F-1",
        "Facture F-00001 à échéance le 1er avril 2026, montant 1 234,56 € (rappel très aimable, "
        "avant la date) — encore des caractères accentués : éèàùç ÉÈÀ œ æ 😀",
        "Plain ASCII subject",
        "é",
    ],
)
@pytest.mark.parametrize(
    "sender", [LONG_NAME, "Relance <relance@creancier.example>", "relance@creancier.example"]
)
def test_headers_read_back_exactly_and_no_line_exceeds_78_octets(subject, sender):
    content = build(subject, sender)
    parsed = message_from_bytes(content, policy=default)
    assert parsed["Subject"] == subject
    assert str(parsed["From"]) == sender
    assert parsed["Message-ID"] == "<m-1@creancier.example>"
    assert parsed["X-Relance-Step"] == "reminder_2"
    assert max(len(line) for line in content.split(b"\r\n")) <= 78


def test_bodies_are_utf8_text_then_html_and_read_back_exactly():
    parsed = message_from_bytes(build(), policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(parsed.get_body(("plain",))) == "Montant dû : 1 234,56 €\n"
    assert text_of(parsed.get_body(("html",))) == "<p>dû</p>\n"
    assert b"Content-Transfer-Encoding: 8bit" in build()  # readable in the .eml files


def test_a_line_too_long_for_smtp_is_sent_quoted_printable():
    body = "x" * 2000 + " €\n"
    content = build(body_text=body, body_html=None)
    assert b"Content-Transfer-Encoding: quoted-printable" in content
    assert max(len(line) for line in content.split(b"\r\n")) <= 78
    assert text_of(message_from_bytes(content, policy=default)) == body


def text_of(part) -> str:
    return part.get_content().replace("\r\n", "\n")  # lines end in CRLF on the wire


def test_the_same_message_gives_the_same_bytes():
    assert build() == build()


def test_encoded_words_stay_within_75_characters_and_cut_between_characters():
    words = encoded_words("€" * 100 + "😀" * 30).split(" ")
    assert all(len(word) <= 75 for word in words)
    assert encoded_words("plain") == "plain"
