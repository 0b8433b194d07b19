"""Where a reminder's time goes, by kind of work, from a pyinstrument profile.

Each sample of the profile is given to the kind of work of the deepest frame on its stack
that belongs to one (a psycopg call made by SQLAlchemy made by a store counts as the
driver's round trip; SQLAlchemy's own Python between two calls counts as SQLAlchemy's;
the Babel filter called by a template counts as formatting). Frames of no kind (the
standard library's json, re, datetime…) count for the kind of their caller. Used by
``make profile`` (``bench/profile.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# (kind of work, substrings of a frame's file path), the first that matches names the frame
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQL round trips (psycopg, waiting on PostgreSQL)", ("/psycopg/", "/psycopg_binary/", "/psycopg_pool/")),
    ("SQLAlchemy (ORM, Core, sessions)", ("/sqlalchemy/",)),
    ("formatting amounts and dates (Babel)", ("/babel/",)),
    ("template rendering (Jinja)", ("/jinja2/", "<template>", "/templates/", "handlers/render.py")),
    ("e-mail bytes (MIME, headers)", ("/email/", "adapters/compose.py", "adapters/composer.py")),
    ("SMTP transmission", ("smtplib.py", "/ssl.py", "/socket.py", "adapters/transports.py")),
    ("evidence records (hashing, JSON, chain)", ("handlers/evidence.py", "adapters/chains.py", "hashlib")),
    ("log lines (structlog)", ("/structlog/", "/logging/", "config/logging.py")),
    ("broker (Dramatiq)", ("/dramatiq/", "/redis/")),
    ("store and unit of work (adapters)", ("/adapters/",)),
    ("decision, penalties, messages (handlers)", ("/handlers/",)),
)
OTHER = "other (interpreter, standard library at top level)"


def kind_of(file_path: str | None) -> str | None:
    """The kind of work of a frame's file, or None when it has none of its own."""
    if not file_path:
        return None
    for kind, markers in KINDS:
        if any(marker in file_path for marker in markers):
            return kind
    return None


def _walk(frame, inherited: str) -> Iterable[tuple[str, float]]:
    """(kind, seconds) of each frame's own time; a frame's own time already holds that of its
    synthetic children (pyinstrument's ``[self]`` and ``[await]``), which are not visited."""
    kind = kind_of(frame.file_path) or inherited
    yield kind, frame.total_self_time
    for child in frame.children:
        if not child.is_synthetic:
            yield from _walk(child, kind)


def time_by_kind(root) -> Counter[str]:
    """Seconds of the profile per kind of work, from pyinstrument's root frame."""
    totals: Counter[str] = Counter()
    if root is None:
        return totals
    for kind, seconds in _walk(root, OTHER):
        totals[kind] += seconds
    return totals


def report(totals: Counter[str], reminders: int) -> list[str]:
    """Lines of a table: kind, share of the profiled time, milliseconds per reminder."""
    whole = sum(totals.values()) or 1.0
    lines = [f"{'where the time goes (profiled wall time)':52} {'share':>6} {'ms/reminder':>12}"]
    for kind, seconds in totals.most_common():
        lines.append(f"{kind:52} {seconds / whole:6.1%} {seconds / reminders * 1000:12.2f}")
    return lines


def cpu_by_kind(stats: dict) -> Counter[str]:
    """Seconds of a ``cProfile`` run per kind of work (``pstats.Stats(...).stats``).

    A function's own time goes to its file's kind; a function without one (a builtin, the
    standard library) goes to the kind of its heaviest caller, looked up a few levels up.
    """
    totals: Counter[str] = Counter()
    for key, (_calls, _primitive, own, _cumulative, _callers) in stats.items():
        totals[_kind_of_function(stats, key, 0)] += own
    return totals


def _kind_of_function(stats: dict, key: tuple, depth: int) -> str:
    kind = kind_of(key[0]) if key[0] != "~" else None
    if kind is not None:
        return kind
    callers = stats.get(key, (0, 0, 0.0, 0.0, {}))[4]
    if not callers or depth > 8:
        return OTHER
    heaviest = max(callers.items(), key=lambda item: item[1][3])[0]
    return _kind_of_function(stats, heaviest, depth + 1)
