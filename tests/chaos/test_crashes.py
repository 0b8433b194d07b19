"""Crashes and outages of the production shape: ``relance scheduler`` + ``relance worker``
(Dramatiq on Redis) + PostgreSQL + loopback SMTP, a few thousand reminders in flight.

Every test counts, by Message-ID at the SMTP server: sent (unique ids), duplicated (the same
id again with the same bytes: the documented worst case after a crash between the SMTP
accept and the commit), conflicting (the same id with other bytes: never allowed) and lost
(expected - unique). It then checks the database: every step done, every message sent.
One JSON line per test goes to the results file (see harness.RESULTS).
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.harness import (
    N,
    PgCluster,
    RedisServer,
    Service,
    Sink,
    database_state,
    done,
    first_after,
    longest_gap,
    record,
    wait_for,
)

pytestmark = pytest.mark.chaos


FINISH = 150  # seconds allowed to finish after the fault is over


def _check(
    test: str,
    fault: str,
    sink: Sink,
    service: Service,
    expected: int,
    timings: dict,
    load: dict,
    **extra: object,
) -> dict:
    tally = sink.tally()
    state = database_state(service.env["RELANCE_DATABASE_URL"])
    line = record(
        test,
        fault,
        load,
        tally,
        expected,
        timings,
        db_steps=state["steps"],
        db_messages=state["messages"],
        max_attempts=state["max_attempts"],
        **extra,
    )
    assert tally["conflicting"] == 0, line  # one Message-ID, one content
    assert tally["missing_message_id"] == 0, line
    assert tally["unique"] == expected, line  # nothing lost, nothing extra
    assert sink.message_ids() == state["email_ids"], line
    assert state["steps"] == {"done": expected}, line
    assert state["messages"] == {"email:sent": expected}, line
    # duplicates are only identical re-sends after a crash; a handful at most
    assert tally["duplicated"] <= extra.get("duplicates_allowed", 0), line
    return line


def _wait_received(sink: Sink, count: int, seconds: float = 90) -> None:
    assert wait_for(lambda: sink.count() >= count, seconds), f"only {sink.count()} received"


def test_kill_9_of_the_worker_process_group_mid_run(service: Service, sink: Sink):
    started = time.monotonic()
    service.start("scheduler", "scheduler")
    service.start("worker", "worker")
    _wait_received(sink, 300)
    fault = time.monotonic()
    at_fault = sink.count()
    killed = service.kill9("worker")
    service.start("worker-2", "worker")
    restored = time.monotonic()
    assert wait_for(done(sink, service.env["RELANCE_DATABASE_URL"], N), FINISH, 0.5)
    finished = time.monotonic()
    times = sink.times()
    line = _check(
        "worker_kill9",
        "kill -9 of the dramatiq worker process group, restarted at once",
        sink,
        service,
        N,
        {
            "received_at_fault": at_fault,
            "processes_killed": killed,
            "recovery_s": first_after(times, restored),
            "stall_s": longest_gap(times, fault, finished),
            "total_s": finished - started,
        },
        {"reminders": N, "schedulers": 1, "worker_processes": 2, "threads": 8},
        duplicates_allowed=16,
    )  # at most one per killed thread
    assert killed >= 3, line  # the dramatiq parent and its two worker processes


def test_redis_killed_and_restarted_mid_run(service: Service, sink: Sink, redis_server: RedisServer):
    started = time.monotonic()
    service.start("scheduler", "scheduler")
    service.start("worker", "worker")
    _wait_received(sink, 300)
    fault = time.monotonic()
    at_fault = sink.count()
    redis_server.kill()  # everything queued in Redis is gone (nothing on disk)
    time.sleep(3)
    redis_server.start()  # same port, empty
    restored = time.monotonic()
    assert wait_for(done(sink, service.env["RELANCE_DATABASE_URL"], N), FINISH, 0.5)
    finished = time.monotonic()
    times = sink.times()
    _check(
        "redis_restart",
        "redis-server SIGKILL, down 3 s, started empty on the same port",
        sink,
        service,
        N,
        {
            "received_at_fault": at_fault,
            "outage_s": restored - fault,
            "recovery_s": first_after(times, restored),
            "stall_s": longest_gap(times, fault, finished),
            "total_s": finished - started,
            "scheduler_alive": service.alive("scheduler"),
            "worker_alive": service.alive("worker"),
        },
        {"reminders": N, "schedulers": 1, "worker_processes": 2, "threads": 8},
        duplicates_allowed=16,
    )
    assert service.alive("scheduler") and service.alive("worker")


def test_postgresql_restarted_immediate_mid_run(service: Service, sink: Sink, pg_cluster: PgCluster):
    started = time.monotonic()
    service.start("scheduler", "scheduler")
    service.start("worker", "worker")
    _wait_received(sink, 300)
    fault = time.monotonic()
    at_fault = sink.count()
    pg_cluster.restart_immediate()  # every connection cut, in-flight transactions lost
    restored = time.monotonic()
    assert wait_for(done(sink, service.env["RELANCE_DATABASE_URL"], N), FINISH, 0.5)
    finished = time.monotonic()
    times = sink.times()
    errors = sum(
        1
        for name in ("scheduler", "worker")
        for e in service.log_events(name)
        if e.get("level") in ("error", "warning", "critical")
    )
    _check(
        "postgres_restart",
        "pg_ctl restart -m immediate of the PostgreSQL cluster",
        sink,
        service,
        N,
        {
            "received_at_fault": at_fault,
            "outage_s": restored - fault,
            "recovery_s": first_after(times, restored),
            "stall_s": longest_gap(times, fault, finished),
            "total_s": finished - started,
            "scheduler_alive": service.alive("scheduler"),
            "worker_alive": service.alive("worker"),
            "errors_logged": errors,
        },
        {"reminders": N, "schedulers": 1, "worker_processes": 2, "threads": 8},
        duplicates_allowed=16,
    )
    assert service.alive("scheduler") and service.alive("worker")
    assert errors > 0  # the outage was seen and logged, not silently swallowed


def test_smtp_server_down_then_up_retries_with_back_off(service: Service, sink: Sink):
    """Real time: a message that failed waits 30 s (back-off), then goes out once."""
    count = N
    started = time.monotonic()
    service.start("scheduler", "scheduler")
    service.start("worker", "worker")
    _wait_received(sink, 100)
    fault = time.monotonic()
    at_fault = sink.count()
    sink.stop()  # connection refused: a temporary failure
    time.sleep(5)
    sink.start()  # same port
    restored = time.monotonic()
    assert wait_for(done(sink, service.env["RELANCE_DATABASE_URL"], count), FINISH, 0.5)
    finished = time.monotonic()
    times = sink.times()
    retries = sum(1 for e in service.log_events("worker") if e.get("event") == "message.retry")
    retried = database_state(service.env["RELANCE_DATABASE_URL"])["retried"]
    seen = sink.first_seen()
    waits = [seen[m] - fault for m in retried]
    line = _check(
        "smtp_outage",
        "SMTP server stopped 5 s then started on the same port",
        sink,
        service,
        count,
        {
            "received_at_fault": at_fault,
            "outage_s": restored - fault,
            "recovery_s": first_after(times, restored),
            "total_s": finished - started,
            "retries_logged": retries,
            "messages_retried": len(retried),
            "retried_delivered_after_s": [round(min(waits), 1), round(max(waits), 1)] if waits else None,
        },
        {"reminders": count, "schedulers": 1, "worker_processes": 2, "threads": 8},
    )
    assert retries > 0 and retried, line
    # a failed message waits for its back-off (30 s after its failure) before going out; the
    # processes share one clock (RELANCE_NOW_SINCE); 29 s allows for the sink's own timing
    assert min(waits) >= 29, line


def test_two_schedulers_and_three_worker_processes_on_one_database(service: Service, sink: Sink):
    started = time.monotonic()
    service.start("scheduler-a", "scheduler")
    service.start("scheduler-b", "scheduler")
    service.start("worker-a", "worker", RELANCE_WORKER_PROCESSES="2", RELANCE_WORKER_THREADS="4")
    service.start("worker-b", "worker", RELANCE_WORKER_PROCESSES="1", RELANCE_WORKER_THREADS="4")
    assert wait_for(done(sink, service.env["RELANCE_DATABASE_URL"], N), FINISH, 0.5)
    finished = time.monotonic()
    ticks = {
        name: sum(
            1 for e in service.log_events(name) if e.get("event") == "scheduler.tick" and e.get("emitted")
        )
        for name in ("scheduler-a", "scheduler-b")
    }
    _check(
        "two_schedulers_three_workers",
        "none (concurrency): 2 schedulers, 3 worker processes",
        sink,
        service,
        N,
        {"total_s": finished - started, "ticks_emitting": ticks},
        {"reminders": N, "schedulers": 2, "worker_processes": 3, "threads": 4},
    )
