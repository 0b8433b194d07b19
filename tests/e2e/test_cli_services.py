"""Bad or unreachable service URLs: the ``relance`` console command says so in one line, exit 2.

Every case runs the installed ``relance`` command as a process, as an operator would, and
checks the whole of stderr: one ``relance: error: …`` line naming the setting and the
reason, never a traceback, and no stream of connection errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

RELANCE = str(Path(sys.executable).with_name("relance"))
DATABASE_FORMS = "expected postgresql://USER@HOST:PORT/NAME or sqlite:///PATH"
REDIS_FORMS = "expected redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix://PATH"


def relance(tmp_path: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    clean.update({"RELANCE_DATA_DIR": str(tmp_path / "var"), **env})
    return subprocess.run(
        [RELANCE, *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://clerk:hunter2@db.internal/relance",
            "relance: error: RELANCE_DATABASE_URL: unsupported database 'mysql' in "
            f"mysql://clerk:***@db.internal/relance; {DATABASE_FORMS}",
        ),
        (
            "oracle://clerk@db.internal/relance",
            "relance: error: RELANCE_DATABASE_URL: unsupported database 'oracle' in "
            f"oracle://clerk@db.internal/relance; {DATABASE_FORMS}",
        ),
        (
            "postgresql+asyncpg://clerk@db.internal/relance",
            "relance: error: RELANCE_DATABASE_URL: unsupported database 'postgresql+asyncpg' in "
            f"postgresql+asyncpg://clerk@db.internal/relance; {DATABASE_FORMS}",
        ),
        ("nonsense", f"relance: error: RELANCE_DATABASE_URL: not a valid URL; {DATABASE_FORMS}"),
        (
            "postgresql://clerk:hunter2@db.internal:abc/relance",
            f"relance: error: RELANCE_DATABASE_URL: not a valid URL; {DATABASE_FORMS}",
        ),
    ],
)
def test_a_bad_database_url_is_one_line_naming_the_setting_and_exit_2(tmp_path, url, expected):
    result = relance(tmp_path, "status", RELANCE_DATABASE_URL=url)
    assert one_error_line(result) == expected
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "command", [["run"], ["scheduler"], ["worker"], ["migrate"], ["cases"], ["inbox"], ["ingest", "-"]]
)
def test_every_command_using_the_database_rejects_an_unsupported_scheme(tmp_path, command):
    result = relance(
        tmp_path, *command, RELANCE_DATABASE_URL="mysql://clerk@db/relance", RELANCE_REDIS_URL="redis://h/0"
    )
    assert one_error_line(result) == (
        "relance: error: RELANCE_DATABASE_URL: unsupported database 'mysql' in mysql://clerk@db/relance; "
        + DATABASE_FORMS
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://127.0.0.1:6379",
            "relance: error: RELANCE_REDIS_URL: unsupported scheme 'http' in http://127.0.0.1:6379; "
            + REDIS_FORMS,
        ),
        ("nonsense", f"relance: error: RELANCE_REDIS_URL: not a valid URL; {REDIS_FORMS}"),
        ("redis://127.0.0.1:abc/0", f"relance: error: RELANCE_REDIS_URL: not a valid URL; {REDIS_FORMS}"),
    ],
)
def test_a_bad_redis_url_is_one_line_naming_the_setting_and_exit_2(tmp_path, url, expected):
    assert one_error_line(relance(tmp_path, "scheduler", RELANCE_REDIS_URL=url)) == expected


@pytest.mark.parametrize("command", ["run", "worker", "dlq"])
def test_every_command_using_redis_rejects_an_http_url(tmp_path, command):
    assert one_error_line(relance(tmp_path, command, RELANCE_REDIS_URL="http://127.0.0.1:6379")) == (
        "relance: error: RELANCE_REDIS_URL: unsupported scheme 'http' in http://127.0.0.1:6379; "
        + REDIS_FORMS
    )


def test_an_unreachable_database_names_the_setting(tmp_path):
    port = free_port()
    result = relance(
        tmp_path, "status", RELANCE_DATABASE_URL=f"postgresql://nobody:hunter2@127.0.0.1:{port}/none"
    )
    line = one_error_line(result)
    assert line.startswith(
        "relance: error: RELANCE_DATABASE_URL: database "
        f"postgresql+psycopg://nobody:***@127.0.0.1:{port}/none unreachable: connection failed:"
    ), line
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("command", ["scheduler", "worker", "run", "dlq"])
def test_an_unreachable_redis_stops_the_command_at_start_with_one_line(tmp_path, command):
    """Given a current store and a closed Redis port, each command stops before its loop."""
    assert relance(tmp_path, "migrate").returncode == 0
    port = free_port()
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    result = relance(tmp_path, command, RELANCE_REDIS_URL=url, timeout=30)
    assert one_error_line(result) == (
        f"relance: error: RELANCE_REDIS_URL: Redis redis://:***@127.0.0.1:{port}/0 unreachable: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused."
    )


@pytest.mark.redis
@pytest.mark.parametrize("command", ["scheduler", "worker"])
def test_an_unreachable_database_stops_scheduler_and_worker_at_start(tmp_path, command, redis_url):
    port = free_port()
    result = relance(
        tmp_path,
        command,
        RELANCE_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none",
        RELANCE_REDIS_URL=redis_url,
        timeout=30,
    )
    assert one_error_line(result).startswith(
        f"relance: error: RELANCE_DATABASE_URL: database postgresql+psycopg://nobody@127.0.0.1:{port}/none "
        "unreachable: connection failed:"
    )
