"""Database engine, sessions and schema migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode and starts every transaction with ``BEGIN IMMEDIATE`` so writers
are serialised (``FOR UPDATE`` is ignored there); PostgreSQL uses row locks and
``SKIP LOCKED``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adapters.connections import server_spoke
from adapters.orm import DEFAULT_CREDITOR
from adapters.outbox import HeldMarkings, SqlMessages, SqlOutbox, mark_sent_alone
from adapters.uow import UnitOfWork
from handlers.outbox import Item
from handlers.ports import Marks, mark_sent_in_a_unit, markings_one_at_a_time


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message says which and why."""


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite files get their folder created."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"database URL is not valid: {redact(url)}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder {folder} of {redact(url)}: {exc.strerror}"
                ) from exc
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _check_on_checkout(engine)
    return engine


def _check_on_checkout(engine: Engine) -> None:
    """A pooled connection is checked as it is checked out, without a round trip when the
    server has said nothing on it since its last answer.

    ``pool_pre_ping`` would send ``SELECT 1`` (in autocommit: one more transaction counted
    by the server) at every checkout, i.e. before every unit of work: as many round trips
    and transactions as units of work. A server that closes a connection (restart, crash,
    ``pg_terminate_backend``, idle timeout) leaves its socket readable (the error it sent,
    or the end of the stream), and a healthy idle connection has nothing to read. So only a
    connection whose socket is readable is pinged; if it does not answer, every connection
    of the pool opened before now is dropped and this one reopened, as a failed pre-ping
    does. A peer gone without closing (a network cut) is found by the first statement, as
    it would be after a ping.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if server_spoke(dbapi_connection) and not _answers(engine, dbapi_connection):
            raise InvalidatePoolError("the server closed the connection")


def _answers(engine: Engine, dbapi_connection: Any) -> bool:
    try:
        return bool(engine.dialect.do_ping(dbapi_connection))
    except Exception:
        return False


def check_connection(engine: Engine) -> None:
    """Raise StoreUnavailable with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(f"database {redact(str(engine.url))} unreachable: {reason}") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that are units of work (``adapters.uow.UnitOfWork``)."""
    return sessionmaker(engine, class_=UnitOfWork, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[UnitOfWork]:
    """One unit of work: commit on success (evidence chained first), roll back on any exception.

    The tasks it collected (``UnitOfWork.after_commit``) are for the caller to publish after
    this block; it reads them with ``take_tasks`` inside it.
    """
    with sessions() as uow:
        if not isinstance(uow, UnitOfWork):
            raise TypeError("transaction() needs sessions made by adapters.store.session_factory")
        try:
            yield uow
            uow.commit()
        except BaseException:
            uow.rollback()
            raise


class SqlUnitsOfWork:
    """The core's factory of units of work (``handlers.ports.UnitsOfWork``) on ``sessions``.

    Each call opens one ``transaction``: the same BEGIN, evidence and COMMIT as before.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        # where a message is marked sent by one statement in autocommit (``mark_sent``)
        self._autocommit = bind if isinstance(bind, Engine) and bind.dialect.name == "postgresql" else None
        self._held = threading.local()  # the thread's block of ``markings``, if one is open

    def __call__(self) -> AbstractContextManager[UnitOfWork]:
        held: HeldMarkings | None = getattr(self._held, "markings", None)
        if held is not None:  # its connection given back: no wait for a second one while holding it
            held.release()
        return transaction(self.sessions)

    @contextmanager
    def markings(self) -> Iterator[Marks]:
        """On PostgreSQL the markings of the block on one connection held between them
        (``adapters.outbox.HeldMarkings``), given back whenever this thread opens a unit of
        work; elsewhere ``mark_sent`` for each."""
        if self._autocommit is None:
            with markings_one_at_a_time(self) as marks:
                yield marks
            return
        held = HeldMarkings(self._autocommit, DEFAULT_CREDITOR)
        outer, self._held.markings = getattr(self._held, "markings", None), held
        try:
            yield held
        finally:
            held.release()
            self._held.markings = outer

    def mark_sent(
        self,
        message_pk: int,
        at: datetime,
        tracking_id: str | None,
        *,
        count_attempt: bool,
        creditor: str | None = None,
    ) -> Item | None:
        """On PostgreSQL one statement in autocommit (``adapters.outbox.mark_sent_alone``);
        elsewhere a unit of work of its own (SQLite serialises its writers by the
        transactions it begins)."""
        if self._autocommit is not None:
            return mark_sent_alone(
                self._autocommit,
                message_pk,
                at,
                tracking_id,
                count_attempt=count_attempt,
                creditor=creditor or DEFAULT_CREDITOR,
            )
        return mark_sent_in_a_unit(
            self, message_pk, at, tracking_id, count_attempt=count_attempt, creditor=creditor
        )


def messages_outbox(session: Session) -> SqlMessages:
    """The leased outbox of recorded messages, in the session's transaction."""
    return SqlMessages(session)


def handovers_outbox(session: Session) -> SqlOutbox:
    """The leased outbox of hand-overs to partners, in the session's transaction."""
    return SqlOutbox(session, "handovers")


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    location = resources.files("adapters").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> str:
    """Create or upgrade the schema to the newest revision; return that revision."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(engine)
    command.upgrade(config, "head")
    head = ScriptDirectory.from_config(config).get_current_head() or ""
    structlog.get_logger("relance.store").info(
        "store.migrated", revision=head, database=redact(str(engine.url))
    )
    return head


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        return MigrationContext.configure(connection).get_current_revision() == head
