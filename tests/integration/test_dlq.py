"""Dead letters on the real Redis broker: visible with their error, replayed once fixed."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow
from adapters.publisher import QUEUE
from adapters.store import transaction
from config.bootstrap import attach_publisher, build_app, prepare_store
from config.policy import load_rates
from config.settings import Settings
from handlers.ports import VirtualClock
from relance.cli import main
from scheduler.tick import tick
from tests.flowtime import T0
from tests.integration.test_flow import at
from tests.support import ingest, invoice_issued
from worker.broker import make_broker

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, tmp_path, monkeypatch):
    from relance.service import start_workers
    from worker import broker as broker_setup
    from worker import runtime

    rates = tmp_path / "rates.toml"
    rates.write_text(
        '[rates."2030-H1"]\necb_rate = "0.02"\nsource = "test: 2026 missing"\n', encoding="utf-8"
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        rates_file=rates,
    )
    for name, value in (("RELANCE_REDIS_URL", redis_url), ("RELANCE_REDIS_NAMESPACE", redis_namespace)):
        monkeypatch.setenv(name, value)
    app = build_app(settings, clock=VirtualClock(T0))
    prepare_store(app, auto_migrate=True)
    broker = broker_setup.use(make_broker(settings))
    import worker.actors  # noqa: F401

    attach_publisher(app, broker)
    runtime.install(app)
    workers = start_workers(broker, 2)
    yield app, broker
    workers.stop()
    broker.close()
    app.dispose()


def wait_for(predicate, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_failing_message_is_listed_then_replayed_after_the_fix(running, capsys):
    from relance.dlq import dead_letters

    app, broker = running
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    now = at("2026-04-21 09:00")  # every step up to reminder_2, which states penalties
    app.clock.set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    # five steps are due by 21 April; each actor merges them with reminder_2 and fails
    assert wait_for(lambda: len(list(dead_letters(app.settings))) == 5)
    capsys.readouterr()
    assert main(["dlq"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "5 dead letter(s)"
    assert all("MissingRate: the rate table has no rate for half-year 2026-H1" in line for line in out[:-1])
    assert {line.split("\t")[3] for line in out[:-1]} == {"invoice_due", "invoice_overdue"}

    app.ctx = dataclasses.replace(app.ctx, rates=load_rates())  # the operator fixes the table
    assert main(["dlq", "replay", out[0].split("\t")[1]]) == 0  # by message id
    assert main(["dlq", "replay", "--all"]) == 0
    broker.join(QUEUE, timeout=20_000)
    with transaction(app.sessions) as session:
        steps = session.execute(select(MessageRow.step, MessageRow.channel)).all()
    assert sorted(steps) == [("reminder_2", "email"), ("reminder_2", "letter")]
    assert list(dead_letters(app.settings)) == []


def test_an_unknown_dead_letter_is_one_line_and_exit_2(running, capsys):
    assert main(["dlq", "replay", "no-such-id"]) == 2
    assert capsys.readouterr().err.strip() == "relance: error: no dead letter no-such-id"


def test_dlq_without_redis_explains_why(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("RELANCE_REDIS_URL", raising=False)
    assert main(["dlq", "--data-dir", str(tmp_path)]) == 2
    assert "reads the Redis broker" in capsys.readouterr().err
