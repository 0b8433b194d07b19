"""Fixtures of the chaos tests: throwaway PostgreSQL cluster and Redis, loopback SMTP sink.

Every test here carries the ``chaos`` marker (``make chaos``). A missing server binary skips
them, unless RELANCE_REQUIRE_SERVICES=1: then it fails the run.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import N, PgCluster, RedisServer, Service, Sink, Unavailable
from tests.conftest import REQUIRED


def _unavailable(error: Exception) -> None:
    if REQUIRED:
        pytest.fail(f"chaos tests: {error} (RELANCE_REQUIRE_SERVICES=1)")
    pytest.skip(f"chaos tests: {error}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    # its own folder under the system temp dir: pytest's base temp is private to the test
    # user, and the cluster may run as ``nobody`` (initdb refuses root)
    folder = Path(tempfile.mkdtemp(prefix="relance-chaos-pg-"))
    try:
        cluster = PgCluster(folder).init()
    except Unavailable as exc:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(exc)
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(pg_cluster: PgCluster, tmp_path_factory) -> str:
    """Migrated and fed N invoices once (``relance ingest`` takes a while on 2 cores)."""
    pg_cluster.prepare_template("chaos_template", N, tmp_path_factory.mktemp("template"))
    return "chaos_template"


@pytest.fixture
def database_url(pg_cluster: PgCluster, template_database: str) -> str:
    """A copy of the template: N invoices whose pre_due step is due at T0."""
    return pg_cluster.create_database(f"chaos_{uuid.uuid4().hex[:10]}", template_database)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path / "redis").start()
    except Unavailable as exc:
        _unavailable(exc)
    yield server
    server.kill()


@pytest.fixture
def sink() -> Iterator[Sink]:
    sink = Sink().start()
    yield sink
    sink.stop()


@pytest.fixture
def service(tmp_path, database_url, redis_server, sink) -> Iterator[Service]:
    service = Service(tmp_path / "svc", database_url, redis_server.url, sink.port)
    yield service
    service.close()
