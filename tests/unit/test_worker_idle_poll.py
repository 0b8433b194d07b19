"""The worker processes poll an empty queue at most every IDLE_POLL_MS, not every second."""

from __future__ import annotations

from relance.service import IDLE_POLL_MS, idle_poll_ms, worker_environment


def test_the_worker_processes_are_started_with_the_short_idle_poll():
    environment = worker_environment({"PATH": "/usr/bin"})
    assert environment == {"PATH": "/usr/bin", "dramatiq_worker_timeout": str(IDLE_POLL_MS)}
    assert IDLE_POLL_MS < 1000  # Dramatiq's own default, a second


def test_an_operator_s_dramatiq_worker_timeout_is_kept():
    environment = worker_environment({"dramatiq_worker_timeout": "2000"})
    assert environment["dramatiq_worker_timeout"] == "2000"
    assert idle_poll_ms({"dramatiq_worker_timeout": ""}) == IDLE_POLL_MS
