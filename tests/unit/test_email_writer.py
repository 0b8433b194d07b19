"""The e-mail bytes written directly are the bytes the ``email`` package's generator makes.

``adapters.compose.email_bytes`` writes each message itself; ``generated_email_bytes`` builds
the same message with the MIME classes and the generator, as every message was built before.
What leaves, what the outbox keeps and what the evidence hashes must not change by one byte:
each test builds the same arguments both ways and compares the bytes (or, for arguments
neither can write, the exception).
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.errors import HeaderParseError

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.compose import _subject_words, email_bytes, encoded_words, generated_email_bytes
from config.bootstrap import sample_context
from config.policy import load_policy
from handlers.render import LANGUAGES, Renderer
from handlers.statement import Statement, build_statement
from tests.flowtime import T0

SENDER = "Relance <relance@creancier.example>"
LONG_SENDER = "Société Générale des Eaux de la Ville de Lyon et de sa Région <relance@creancier.example>"
LONG_SUBJECT = (
    "Facture F-00001 à échéance le 1er avril 2026, montant 1 234,56 € (rappel très aimable, "
    "avant la date) — encore des caractères accentués : éèàùç ÉÈÀ œ æ 😀"
)
POLICY = load_policy()
STEPS = [s.template for s in POLICY.steps if not s.manual]


def outcome(build, **arguments) -> bytes | type[BaseException]:
    """The bytes, or the kind of exception when the arguments cannot be written."""
    try:
        return build(**arguments)
    except Exception as error:  # compared, not handled
        return type(error)


def assert_same_bytes(**arguments) -> bytes:
    arguments = {
        "sender": SENDER,
        "recipient": "compta@acme.example",
        "subject": "Rappel",
        "body_text": "Bonjour,\n",
        "message_id": "<m-1@creancier.example>",
        "at": T0,
        "step": "reminder_2",
        **arguments,
    }
    written = outcome(email_bytes, **arguments)
    assert written == outcome(generated_email_bytes, **arguments)
    return written


@functools.cache
def statement(lines: int, reference: str = "F-1") -> Statement:
    invoice = {
        "number": "F-0001",
        "issue_date": T0.date(),
        "due_date": T0.date(),
        "currency": "EUR",
        "balance": Decimal("1234.56"),
        "late_interest": Decimal("12.40"),
        "indemnity": Decimal("40"),
    }
    return build_statement(reference, "EUR", [invoice] * lines)


@pytest.mark.parametrize("html", [None, "<p>Montant dû : 1 234,56 €</p>\n"])
@pytest.mark.parametrize("attached", [None, 1, 20_000])
@pytest.mark.parametrize(
    "subject", ["Rappel", "2e relance pour facture impayée : F-1", LONG_SUBJECT, "x " * 60, "y" * 120]
)
def test_every_shape_of_message_is_written_as_the_generator_writes_it(html, attached, subject):
    content = assert_same_bytes(
        subject=subject,
        body_text="Bonjour,\n\nMontant dû : 1 234,56 €\n",
        body_html=html,
        statement=statement(attached) if attached else None,
    )
    assert content.count(b"Message-ID: <m-1@creancier.example>\r\n") == 1


@pytest.mark.parametrize(
    "sender",
    [SENDER, LONG_SENDER, "relance@creancier.example", "Zażółć Gęślą <z@wierzyciel.example>"],
)
@pytest.mark.parametrize(
    "recipient",
    ["compta@acme.example", "Ελένη Παπαδοπούλου <eleni@παράδειγμα.example>", "a@" + "b" * 90 + ".example"],
)
@pytest.mark.parametrize(
    "reply_to", [None, "", "litiges@creancier.example", "Service Réclamations <r@c.example>"]
)
def test_names_and_addresses_in_any_language_are_written_as_the_generator_writes_them(
    sender, recipient, reply_to
):
    assert_same_bytes(sender=sender, recipient=recipient, reply_to=reply_to, body_html="<p>x</p>")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "plain ASCII\n",
        "no line end at the end",
        "Montant dû\r\nligne Windows\rligne Mac\nligne Unix\n\n",
        "x" * 2000 + " €\n",  # too long for SMTP: quoted-printable
        "é" * 496 + "\n",  # 992 octets: quoted-printable
        "é" * 495 + "\n",  # 990 octets: 8bit
        "a" * 247 + "\u2028" + "b" * 1000,  # a Unicode line separator counts as a line end
        "=?utf-8?q?not_a_word?= =3D\t trailing spaces   \n",
        "Ελληνικά, Polski: zażółć, Русский, 😀\n" * 200,
    ],
)
@pytest.mark.parametrize("html", [None, "same"])
def test_bodies_in_every_encoding_are_written_as_the_generator_writes_them(body, html):
    assert_same_bytes(body_text=body, body_html=body if html else None)


def test_a_statement_with_a_file_name_the_writer_leaves_to_the_generator_is_still_the_same():
    data = statement(3).csv_bytes()
    for filename in ("relevé F-1.csv", 'a "quoted" \\ name.csv', "", "x" * 100 + ".csv"):
        assert_same_bytes(statement=Statement(filename, data), body_html="<p>x</p>")
    assert_same_bytes(statement=Statement("empty.csv", b""))


def test_the_same_instant_in_two_time_zones_gives_two_date_headers():
    paris = assert_same_bytes(at=datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    utc = assert_same_bytes(at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n" in paris
    assert b"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n" in utc


def test_what_cannot_be_written_fails_both_ways_alike():
    assert assert_same_bytes(subject="Rappel\nBcc: x@evil.example") is HeaderParseError
    assert assert_same_bytes(body_text="\ud800") is UnicodeEncodeError


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_in_every_language_is_written_as_the_generator_writes_it(renderer, language):
    ctx = copy.deepcopy(sample_context(POLICY))
    ctx["debtor"]["name"] = "Łukasz Żółkiewski & Ελένη"
    for step in STEPS:
        rendered = renderer.render(step, language, ctx)
        assert_same_bytes(
            subject=rendered.subject,
            body_text=rendered.body_text,
            body_html=rendered.body_html,
            step=step,
            statement=statement(5, reference=f"F-1 {step}"),
            reply_to="litiges@creancier.example",
        )


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=TEXT,
    subject=TEXT,
    body=TEXT,
    html=st.none() | TEXT,
    attached=st.none() | st.binary(max_size=400),
    offset=st.integers(-14 * 60, 14 * 60),
)
def test_any_names_subjects_and_bodies_are_written_as_the_generator_writes_them(
    name, subject, body, html, attached, offset
):
    assert_same_bytes(
        sender=f"{name} <relance@creancier.example>",
        recipient=f"{name} <debiteur@acme.example>",
        subject=subject,
        body_text=body,
        body_html=html,
        statement=None if attached is None else Statement("statement-F-1.csv", attached),
        at=datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(minutes=offset))),
    )


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=600))
def test_subjects_are_cut_into_the_same_encoded_words(subject):
    assert _subject_words(subject) == encoded_words(subject)


@pytest.mark.parametrize("size", [56, 57, 57 * 1024 - 1, 57 * 1024, 57 * 1024 + 1, 3 * 57 * 1024 + 20])
def test_an_attachment_encoded_block_by_block_is_the_generator_s_base64(size):
    # the attachment's base64 is written in blocks of whole lines: any size, at and around a
    # block's end, gives the lines the generator writes of the whole
    data = bytes((i * 7) % 251 for i in range(size))
    assert_same_bytes(statement=Statement("statement-F-1.csv", data))
