"""The worker process's App: installed by the CLI, or built from the environment once."""

from __future__ import annotations

import threading

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
