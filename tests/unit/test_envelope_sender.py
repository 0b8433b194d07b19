"""The envelope sender (MAIL FROM) read from a message's From field: the From field alone,
parsed once per distinct field, gives the address the whole header block gives."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapters.compose import email_bytes
from adapters.transports import _sender_of, envelope_sender
from tests.flowtime import T0

LINES = st.sampled_from(
    [
        b"From: Relance <relance@creancier.example>",
        b"FROM: other@creancier.example",
        b"from: =?utf-8?b?U29jacOpdMOp?= <soc@creancier.example>",
        b"From:",
        b"From: \xc3\xa9l\xc3\xa8ve <eleve@ecole.example>",
        b"From x@y.example Mon Jan  1 00:00:00 2026",
        b"From : spaced@creancier.example",
        b" <folded@creancier.example>",
        b"\t(comment)",
        b"To: compta@acme.example",
        b"Subject: Rappel",
        b"X-Odd:",
        b":no-name",
        b"no colon at all",
        b"",
        b"Subject: \xff\xfe",
    ]
)


def parsed_whole(content: bytes) -> str:
    return _sender_of(content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])


@settings(max_examples=500)
@given(st.lists(LINES, max_size=8), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_any_header_block_gives_the_sender_the_whole_parse_gives(lines, line_end):
    content = line_end.join(lines) + b"\r\n\r\nbody\r\n"
    assert envelope_sender(content) == parsed_whole(content)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_a_written_message_gives_the_address_its_whole_header_block_gives(name):
    try:
        content = email_bytes(
            sender=f"{name} <relance@creancier.example>",
            recipient="compta@acme.example",
            subject="Rappel",
            body_text="Bonjour\n",
            message_id="<m-1@creancier.example>",
            at=T0,
            step="reminder_2",
        )
    except Exception:  # a name no From header can carry: nothing to send
        assume(False)
    assert envelope_sender(content) == parsed_whole(content)


ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)
ADDRESS_PARTS = st.text(alphabet="aZ09.-_@<>()\" ,:;[]\\é\t'", max_size=16)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(ATOM, min_size=1, max_size=3).map(".".join),
    st.lists(st.text(alphabet="ab09-", min_size=1, max_size=5), min_size=1, max_size=3).map(".".join),
    ADDRESS_PARTS,
)
def test_an_address_is_quoted_for_smtp_as_smtplib_quotes_it(local, domain, odd):
    # A plain address is put within angle brackets without parsing it; the others are
    # parsed by smtplib.quoteaddr: the same text either way
    import smtplib

    from adapters.transports import _quoted

    for address in (f"{local}@{domain}", odd, f"{local}{odd}@{domain}", f"Name <{local}@{domain}>"):
        assert _quoted(address) == smtplib.quoteaddr(address)
