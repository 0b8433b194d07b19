"""Alembic environment: the engine is handed in by ``adapters.store.migrate``.

On SQLite, foreign keys are off while the migrations run: a batch migration rebuilds a
table (copy, drop, rename), which a table that others refer to cannot survive with them on
(the procedure of sqlite.org/lang_altertable.html, section 7). They are checked before the
transaction commits, then turned back on.
"""

from alembic import context

from adapters.orm import Base

config = context.config
engine = config.attributes["engine"]


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


def _check_foreign_keys(connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows whose foreign key points nowhere: {broken[:5]}")


if engine.dialect.name == "sqlite":
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction: it has effect
        try:
            with connection.begin():
                _run(connection)
                _check_foreign_keys(connection)
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
else:
    with engine.begin() as connection:
        _run(connection)
