"""The ``import_document`` actor's work without the broker, on SQLite: what a message that
gives no event leaves, and a statement for a creditor that does not exist."""

from __future__ import annotations

import base64
import json

from sqlalchemy import select

from adapters.orm import InvoiceRow, RejectedEvent
from adapters.store import transaction
from intake.upload import import_upload
from tests.flowtime import T0
from tests.integration.test_bank_import import camt, entry
from tests.support import make_test_app


def kept(app) -> list[tuple[str, str, dict]]:
    with transaction(app.sessions) as session:
        rows = session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars()
        return [(row.source, row.reason, json.loads(row.raw)) for row in rows]


def test_a_file_over_the_limit_is_kept_as_a_rejection_naming_the_setting(tmp_path):
    """Given RELANCE_IMPORT_MAX_BYTES at 100 and a file of 300 bytes (400 base64
    characters), then nothing is read and one rejection names the setting, with the
    stand-in of the content as sent; sent again, it is a duplicate."""
    app = make_test_app(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, T0, import_max_bytes=100)
    content = base64.b64encode(b"x" * 300).decode()

    first = import_upload(app, "big.xml", content)
    again = import_upload(app, "big.xml", content)

    assert (first["rejected"], again["rejected"], again["duplicate"]) == (1, 0, 1)
    [(source, reason, stand_in)] = kept(app)
    assert (source, reason) == ("broker:big.xml", "file: larger than 100 bytes (RELANCE_IMPORT_MAX_BYTES)")
    assert (stand_in["import_file"], stand_in["base64_size"]) == ("big.xml", 400)


def test_a_name_that_is_no_file_name_is_refused(tmp_path):
    """Given the name ``..``, then the message is kept as a rejection saying so, under the
    name ``document``, and nothing is written."""
    app = make_test_app(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, T0)

    assert import_upload(app, "..", base64.b64encode(b"<Invoice/>").decode())["rejected"] == 1

    [(source, reason, _)] = kept(app)
    assert (source, reason) == ("broker:document", "file: '..' is not a file name")


def test_a_message_of_other_types_is_kept_as_a_rejection_not_retried(tmp_path):
    """Given a producer that sent a number as the name and a list as the content, then the
    message is kept as one rejection instead of failing and being retried."""
    app = make_test_app(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, T0)

    assert import_upload(app, 42, ["PD94"])["rejected"] == 1  # type: ignore[arg-type]

    [(source, reason, _)] = kept(app)
    assert (source, reason) == ("broker:document", "file: '42' is not a file name")


def test_a_statement_for_an_unknown_creditor_is_kept_as_a_rejection(tmp_path):
    """Given a camt.053 statement sent for creditor ``nobody``, which is not configured,
    then it is kept as a rejection naming the file and the creditor, and nothing is paid."""
    app = make_test_app(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, T0)
    statement = camt("08", entry("E-1", "100.00", text="F-1")).encode()

    counts = import_upload(app, "releve.xml", base64.b64encode(statement).decode(), creditor="nobody")

    assert counts == {"accepted": 0, "duplicate": 0, "rejected": 1}
    [(source, reason, stand_in)] = kept(app)
    assert source == "broker:releve.xml" and reason.startswith("file: ") and "nobody" in reason
    assert (stand_in["import_file"], stand_in["size"]) == ("releve.xml", len(statement))
    with transaction(app.sessions) as session:
        assert session.execute(select(InvoiceRow)).first() is None
