"""Log lines (config.logging): relance's own lines rendered by structlog before they reach the
handler are the lines the handler's formatter wrote from their event dicts, field for field
and in the same order; the libraries' lines are rendered as before."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
import structlog

from config.logging import _TRACEBACKS_WITHOUT_LOCALS, _drop_secrets, configure_logging

TIMESTAMP = re.compile(r'"timestamp": "[^"]+"')


@pytest.fixture(autouse=True)
def logging_put_back() -> Iterator[None]:
    root = logging.getLogger()
    saved = (structlog.get_config(), list(root.handlers), root.level)
    yield
    structlog.configure(**saved[0])
    root.handlers[:] = saved[1]
    root.setLevel(saved[2])


def formatted_by_the_handler(stream: io.StringIO) -> None:
    """The configuration before: structlog hands its event dict to the standard library and
    the handler's ``ProcessorFormatter`` renders it."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_secrets],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _TRACEBACKS_WITHOUT_LOCALS,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("INFO")


def write_lines() -> None:
    log = structlog.get_logger("relance.reminders")  # a new proxy: bound to the configuration now
    log.info(
        "reminder.sent",
        debtor_id="D-1",
        step="reminder_1",
        channel="email",
        message_id="<a@b.example>",
        invoice_numbers=["F-1", "F-2"],
        mentioned_invoice_numbers=[],
        invoice_count=2,
    )
    log.warning(
        "rate.unconfirmed", half_year="2026-H2", source="Banque de France — relevé", rate=Decimal("0.1")
    )
    log.info("message.transmitted", tracking_id=None, attempts=1, smtp_password="hidden")
    structlog.get_logger("relance.delivery").debug("below.the.level", value=1)
    try:
        raise ValueError("the store is gone")
    except ValueError:
        log.exception("step.failed", step_id=7)
    library = logging.getLogger("dramatiq.worker.WorkerThread")
    library.warning(
        "Failed to process message %s with unhandled %s", "m-1", "ValueError", extra={"token": "x"}
    )
    library.info("plain")


def lines(configure: Callable[[io.StringIO], None]) -> list[str]:
    stream = io.StringIO()
    configure(stream)
    write_lines()
    return [TIMESTAMP.sub('"timestamp": "T"', line) for line in stream.getvalue().splitlines()]


def test_every_line_is_written_as_the_handlers_formatter_wrote_it():
    # Given the lines written with the handler's formatter rendering every event dict
    before = lines(formatted_by_the_handler)
    # When the same lines are written with the service's configuration
    after = lines(lambda stream: configure_logging("INFO", stream=stream))
    # Then they are the same text, line for line, except the time they were written
    assert after == before
    assert len(after) == 6  # the debug line is not written
    events = [json.loads(line)["event"] for line in after]
    assert events[:4] == ["reminder.sent", "rate.unconfirmed", "message.transmitted", "step.failed"]
    assert json.loads(after[2])["smtp_password"] == "***"
    assert json.loads(after[3])["exception"][0]["exc_value"] == "the store is gone"
    assert list(json.loads(after[0])) == [
        "debtor_id",
        "step",
        "channel",
        "message_id",
        "invoice_numbers",
        "mentioned_invoice_numbers",
        "invoice_count",
        "event",
        "level",
        "logger",
        "timestamp",
    ]


def test_a_line_below_the_level_is_not_rendered(monkeypatch):
    # Given the service's configuration at WARNING
    stream = io.StringIO()
    configure_logging("WARNING", stream=stream)
    rendered: list[str] = []
    original = structlog.processors.JSONRenderer.__call__

    def counting(self, logger, name, event_dict):
        rendered.append(event_dict["event"])
        return original(self, logger, name, event_dict)

    monkeypatch.setattr(structlog.processors.JSONRenderer, "__call__", counting)
    # When an info line and a warning line are logged
    log = structlog.get_logger("relance.inbox")
    log.info("event.accepted", event_id="E-1")
    log.warning("event.rejected", event_id="E-2")
    # Then only the warning is rendered and written
    assert rendered == ["event.rejected"]
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["event.rejected"]


def test_the_renderers_encoder_made_once_writes_what_json_dumps_writes():
    from config.logging import _Dumps

    dumps = _Dumps()
    values = [{"event": "é", "n": 1, "d": Decimal("1.50"), "l": [None, True, 1.5]}, {"x": object}]
    for arguments in ({"ensure_ascii": False, "default": repr}, {"default": str}, {"default": repr}):
        for value in values:
            assert dumps(value, **arguments) == json.dumps(value, **arguments)
