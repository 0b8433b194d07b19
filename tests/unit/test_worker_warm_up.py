"""A worker process, once its app is built at boot, has its start-up objects frozen out of
the garbage collector's sight, as the scheduler has; a failed warm-up freezes nothing (the
first message builds the app, and it is retried)."""

from __future__ import annotations

import gc

import pytest

from worker import runtime
from worker.middleware import WarmUp


class Held:  # a container the collector tracks, alive when the worker boots
    pass


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_worker_booted_has_its_start_up_objects_frozen(monkeypatch, unfrozen):
    held = Held()
    monkeypatch.setattr(runtime, "current", lambda: held)
    assert gc.get_freeze_count() == 0
    WarmUp().after_worker_boot(broker=None, worker=None)
    assert gc.get_freeze_count() > 0
    assert id(held) not in {id(o) for o in gc.get_objects()}  # never walked again


def test_a_failed_warm_up_freezes_nothing(monkeypatch, unfrozen):
    def unreachable():
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(runtime, "current", unreachable)
    WarmUp().after_worker_boot(broker=None, worker=None)
    assert gc.get_freeze_count() == 0
