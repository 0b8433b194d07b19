"""The worker process's App: installed by the CLI, or built from the environment once."""

from __future__ import annotations

import threading

import adapters.letter  # noqa: F401 - fpdf2 loaded with the worker, not by its first letter
from config.bootstrap import App, attach_publisher, build_app, prepare_store

_lock = threading.Lock()
_app: App | None = None


def install(app: App) -> None:
    """Use this App for the actors of this process (all-in-one mode, simulate, tests)."""
    global _app
    _app = app


def current() -> App:
    """The process's App, built from the environment on first use (dramatiq workers)."""
    global _app
    with _lock:
        if _app is None:
            import dramatiq

            app = build_app()
            prepare_store(app, auto_migrate=False)
            _app = attach_publisher(app, dramatiq.get_broker())
        return _app


# A simulation stops at the first half-year without a rate instead of failing the message
# (relance/simulate.py): the actors note it here, the simulation reads it between ticks.
_missing_rates: list[str] | None = None


def collect_missing_rates(on: bool = True) -> None:
    """From now on (``on``), an actor short of a rate notes its half-year here and does not
    fail; ``on=False`` goes back to failing the message."""
    global _missing_rates
    _missing_rates = [] if on else None


def note_missing_rate(half_year: str) -> bool:
    """Note a half-year without a rate; True when noted (a simulation), False otherwise."""
    if _missing_rates is None:
        return False
    _missing_rates.append(half_year)
    return True


def missing_rates() -> list[str]:
    return list(_missing_rates or [])
