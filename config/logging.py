"""structlog JSON logs for everything, Dramatiq's and APScheduler's own lines included."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

_SECRET_KEYS = ("password", "secret", "token", "authorization")


_secret_key: dict[str, bool] = {}  # key -> whether it names a secret (keys are few: the code's)


def _is_secret(key: str) -> bool:
    found = _secret_key.get(key)
    if found is None:
        found = any(word in key.lower() for word in _SECRET_KEYS)
        if len(_secret_key) < 4096:  # keys come from the code, not from data: a bound all the same
            _secret_key[key] = found
    return found


def _drop_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    known = _secret_key.get  # a key known to name no secret is passed over without a call
    for key in [key for key in event_dict if known(key) is not False and _is_secret(key)]:
        event_dict[key] = "***"
    return event_dict


class _Dumps:
    """``json.dumps(value, **arguments)`` for the JSON renderer, with the encoder of its
    arguments made once: ``json.dumps`` makes a new ``JSONEncoder`` at each call when it is
    given any (the renderer gives ``ensure_ascii`` and its ``default``)."""

    def __init__(self) -> None:
        self._made: tuple[dict[str, Any], Any] | None = None

    def __call__(self, value: Any, **arguments: Any) -> str:
        made = self._made
        if made is None or made[0] != arguments:
            made = self._made = (arguments, json.JSONEncoder(**arguments).encode)
        text: str = made[1](value)
        return text


_TRACEBACKS_WITHOUT_LOCALS = structlog.processors.ExceptionRenderer(
    ExceptionDictTransformer(show_locals=False)
)
"""Tracebacks as dicts, frames without their local variables: a frame's locals may hold a
password, a key or a debtor's data, and a log line must never carry them."""


class _Line(str):
    """A log line of relance's own, rendered to its JSON by structlog's processors: the
    formatter writes it as it is."""

    __slots__ = ()


def _as_line(_: Any, __: str, rendered: Any) -> _Line:  # the JSON renderer's text
    return _Line(rendered)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """Writes relance's own lines as structlog rendered them; renders the libraries' (and
    any line still carrying its event dict) as ``ProcessorFormatter`` does.

    A line rendered before it reaches the handler skips the formatter's copy of the log
    record and its second pass over the processors; its text is the same."""

    def format(self, record: logging.LogRecord) -> str:
        if type(record.msg) is _Line:
            return str(record.msg)
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after set-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send every log line, ours and the libraries', as one JSON object to stderr.

    A line carries no caller, thread or process fields, so the standard library is told not
    to gather them for each record (``logging._srcfile``, as its own comments document,
    and ``logThreads``, ``logProcesses``, ``logMultiprocessing``): a stack walk and three
    look-ups saved per line, which ``relance ingest`` writes once per event.

    relance's own lines are rendered to JSON by structlog's processors, after a line below
    the level is dropped, and written by the handler as they are (``_Formatter``); the
    libraries' lines go through the same processors in the handler's formatter."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    render: list[Processor] = [
        _TRACEBACKS_WITHOUT_LOCALS,
        structlog.processors.JSONRenderer(serializer=_Dumps(), ensure_ascii=False),
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, *render, _as_line],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = _Formatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_secrets],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )
    logging._srcfile = None  # no findCaller(): no caller is rendered
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler.scheduler", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
