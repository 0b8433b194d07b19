"""A pooled PostgreSQL connection is checked at checkout without a round trip, and one the
server closed is replaced before a unit of work uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from adapters.store import make_engine

pytestmark = pytest.mark.postgres


def _admin(postgres_admin_url: str):
    import psycopg

    return psycopg.connect(
        postgres_admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )


def _last_statement(postgres_admin_url: str, pid: int) -> str:
    with _admin(postgres_admin_url) as admin:
        return admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


def test_a_healthy_pooled_connection_is_checked_out_without_a_statement(postgres_url, postgres_admin_url):
    engine = make_engine(postgres_url, pool_size=1)
    try:
        with engine.begin() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        for _ in range(3):
            with engine.connect() as connection:  # checked out again: the server hears nothing
                assert _last_statement(postgres_admin_url, pid) == "COMMIT"
                assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
                connection.commit()
    finally:
        engine.dispose()


def test_a_connection_the_server_closed_is_replaced_at_checkout(postgres_url, postgres_admin_url):
    engine = make_engine(postgres_url, pool_size=2)
    try:
        with engine.begin() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with _admin(postgres_admin_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for its end
        with engine.begin() as connection:
            again = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert again != pid
    finally:
        engine.dispose()
