"""Fixtures for real services: PostgreSQL, Redis and an SMTP server on loopback.

The services are found at RELANCE_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and RELANCE_TEST_REDIS_URL (default
redis://127.0.0.1:6379/15). Without a reachable Redis, a throwaway ``redis-server`` is
started when the binary is on PATH. When a service cannot be had the tests that need it
are skipped, unless RELANCE_REQUIRE_SERVICES=1 (set by CI): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy

import pytest

PG_URL = os.environ.get("RELANCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RELANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("RELANCE_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} unavailable: {error}"
    if REQUIRED:
        pytest.fail(f"{message} (RELANCE_REQUIRE_SERVICES=1: a missing service fails the run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    import psycopg

    from adapters.store import normalise_url

    try:
        with psycopg.connect(
            PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        _unavailable(f"PostgreSQL at {PG_URL}", exc)
    return normalise_url(PG_URL)


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped after the test."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = postgres_admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in postgres_admin_url else "?"
    yield f"{postgres_admin_url}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'relance.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """Run the test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


def _redis_answers(url: str) -> Exception | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        return exc
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """The configured Redis; on a machine without one, a throwaway ``redis-server``."""
    import shutil
    import subprocess
    import time

    error = _redis_answers(REDIS_URL)
    if error is None:
        yield REDIS_URL
        return
    binary = shutil.which("redis-server")
    if REQUIRED or binary is None:
        _unavailable(f"Redis at {REDIS_URL}", error)
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if _redis_answers(url) is None:
            break
        time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    import redis

    namespace = f"relance-test-{uuid.uuid4().hex[:8]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{namespace}*"):
        client.delete(key)
    client.close()


@dataclass
class SmtpSink:
    """What a loopback SMTP server received, and how it should answer."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)  # client address per message
    answer: str = "250 OK"  # the answer to the message (after DATA)
    answers: dict[str, str] = field(default_factory=dict)  # "MAIL" / "RCPT": a refusal to give

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "MAIL" in self.sink.answers:
            return self.sink.answers["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "RCPT" in self.sink.answers:
            return self.sink.answers["RCPT"]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if not self.sink.answer.startswith("2"):
            return self.sink.answer
        self.sink.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.sink.peers.append(tuple(session.peer))
        return self.sink.answer


@pytest.fixture
def sessions(database_url):
    """Sessions on a migrated store (SQLite or PostgreSQL, as ``database_url`` gives)."""
    from adapters.store import make_engine, migrate, session_factory

    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def tls_ca():
    import trustme

    return trustme.CA()


class _PipeliningHandler(_Handler):
    """The same, with PIPELINING (RFC 2920) offered: aiosmtpd reads commands one line at a
    time whether they came together or not, and answers each in order."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


def _start(sink: SmtpSink, *, pipelining: bool = False, **kwargs) -> object:
    from aiosmtpd.controller import Controller

    sink.port = free_port()
    handler = (_PipeliningHandler if pipelining else _Handler)(sink)
    controller = Controller(handler, hostname="127.0.0.1", port=sink.port, ready_timeout=10, **kwargs)
    controller.start()
    return controller


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A plain SMTP server on loopback (no TLS)."""
    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(sink)
    yield sink
    controller.stop()


@pytest.fixture
def smtp_pipelining_server() -> Iterator[SmtpSink]:
    """A plain SMTP server on loopback that offers PIPELINING."""
    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(sink, pipelining=True)
    yield sink
    controller.stop()


@pytest.fixture
def smtp_server_dropping_idle() -> Iterator[SmtpSink]:
    """A plain SMTP server that closes a connection left idle for 0.3 s."""
    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(sink, timeout=0.3)
    yield sink
    controller.stop()


def _tls_sink(tls_ca, tmp_path, mode: str) -> Iterator[tuple[SmtpSink, str]]:
    import ssl

    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    sink = SmtpSink("127.0.0.1", 0)
    if mode == "starttls":
        controller = _start(sink, tls_context=context, require_starttls=True)
    else:
        controller = _start(sink, ssl_context=context)
    yield sink, str(ca_file)
    controller.stop()


@pytest.fixture
def smtp_starttls_server(tls_ca, tmp_path) -> Iterator[tuple[SmtpSink, str]]:
    """An SMTP server on loopback that requires STARTTLS; yields it and the CA file."""
    yield from _tls_sink(tls_ca, tmp_path, "starttls")


@pytest.fixture
def smtp_tls_server(tls_ca, tmp_path) -> Iterator[tuple[SmtpSink, str]]:
    """An SMTP server on loopback speaking implicit TLS; yields it and the CA file."""
    yield from _tls_sink(tls_ca, tmp_path, "tls")


@pytest.fixture
def json_logs(capsys) -> Iterator:
    """The JSON log lines written while the test runs, as the service writes them (the
    logging configured as in production; put back as it was after the test). Unlike
    ``structlog.testing.capture_logs``, it sees loggers already cached by earlier tests."""
    import json
    import logging

    import structlog

    from config.logging import configure_logging

    root = logging.getLogger()
    saved = (structlog.get_config(), list(root.handlers), root.level)
    configure_logging("INFO")
    capsys.readouterr()
    yield lambda: [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    structlog.configure(**saved[0])
    root.handlers[:] = saved[1]
    root.setLevel(saved[2])
