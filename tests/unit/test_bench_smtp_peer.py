"""The benchmarks' SMTP peer (``bench/smtp_peer.py``): which sink runs, and how the messages
``smtp-sink -d`` dumps are read back to be counted and checked."""

from __future__ import annotations

import pytest

from bench.smtp_peer import SinkUnavailable, choose_peer, message_of, tally_of

# A file as ``smtp-sink -d`` writes it (seen with postfix 3.7): the envelope, one Received
# header of the sink's own with a transaction id, then the message as it was sent.
DUMP = (
    b"X-Client-Addr: 127.0.0.1\n"
    b"X-Client-Proto: ESMTP\n"
    b"X-Helo-Args: [127.0.0.1]\n"
    b"X-Mail-Args: <relance@creancier.example>\n"
    b"X-Rcpt-Args: <compta@debiteur.example>\n"
    b"Received: from [127.0.0.1] ([127.0.0.1])\n"
    b"\tby smtp-sink (smtp-sink) with ESMTP id 37d7bf4d;\n"
    b"\tMon,  7 Dec 2026 06:40:00 +0000 (UTC)\n"
    b"Message-ID: <r1@relance>\n"
    b"Subject: Rappel\n"
    b"\n"
    b"Bonjour,\n"
)


def test_auto_takes_smtp_sink_when_it_is_installed() -> None:
    """Given smtp-sink at a path, when nothing is asked, then the compiled sink runs."""
    assert choose_peer("auto", installed=True) == "smtp-sink"


def test_auto_falls_back_to_the_python_sink_on_a_fresh_clone() -> None:
    """Given no smtp-sink, when nothing is asked, then the Python sink runs (make bench works)."""
    assert choose_peer("auto", installed=False) == "python"
    assert choose_peer("", installed=False) == "python"


def test_python_is_kept_when_asked_even_with_smtp_sink_installed() -> None:
    """Given smtp-sink installed, when BENCH_SMTP_SINK=python, then the Python sink runs."""
    assert choose_peer("python", installed=True) == "python"


def test_asking_for_smtp_sink_without_it_says_how_to_install_it() -> None:
    """Given no smtp-sink, when it is asked for, then one line names the package to install."""
    with pytest.raises(SinkUnavailable, match="apt-get install --no-install-recommends postfix"):
        choose_peer("smtp-sink", installed=False)


def test_an_unknown_choice_is_refused_with_the_choices() -> None:
    """Given a typo in BENCH_SMTP_SINK, then the error lists the four accepted values."""
    with pytest.raises(SinkUnavailable, match="auto, smtp-sink, python, postfix"):
        choose_peer("sendmail", installed=True)


def test_asking_for_the_real_mta_without_postfix_says_how_to_install_it() -> None:
    """Given no smtp-sink (postfix's package is missing), when the real MTA is asked for,
    then one line names the package to install instead of a traceback."""
    with pytest.raises(SinkUnavailable, match="apt-get install --no-install-recommends postfix"):
        choose_peer("postfix", installed=False)


def test_the_dump_gives_back_the_message_as_sent() -> None:
    """Given a dump file, then the envelope and the sink's Received header are dropped."""
    assert message_of(DUMP) == b"Message-ID: <r1@relance>\nSubject: Rappel\n\nBonjour,\n"


def test_two_dumps_of_one_resent_message_count_as_a_duplicate() -> None:
    """Given the same message dumped twice (two sink ids) and another id with other bytes,
    then the tally counts 2 unique, 1 identical re-send and no conflict."""
    again = DUMP.replace(b"id 37d7bf4d", b"id 6b3b26cd")
    other = DUMP.replace(b"<r1@relance>", b"<r2@relance>")
    tally = tally_of([message_of(DUMP), message_of(again), message_of(other)])
    assert tally == {
        "received": 3,
        "unique": 2,
        "duplicated": 1,
        "conflicting": 0,
        "missing_message_id": 0,
    }


def test_one_id_with_different_bytes_is_a_conflict() -> None:
    """Given two messages with one Message-ID and different bodies, then 1 conflicting."""
    changed = DUMP.replace(b"Bonjour,", b"Bonsoir,")
    tally = tally_of([message_of(DUMP), message_of(changed)])
    assert (tally["unique"], tally["duplicated"], tally["conflicting"]) == (1, 0, 1)


class _Frame:
    """The few attributes of a pyinstrument frame that the breakdown reads."""

    def __init__(self, file_path, own, children=(), synthetic=False) -> None:
        self.file_path, self.children, self.is_synthetic = file_path, list(children), synthetic
        # pyinstrument counts the time of [self] children in their parent's own time
        self.total_self_time = own + sum(c.total_self_time for c in self.children if c.is_synthetic)


def test_the_profile_is_summed_by_the_deepest_kind_of_work_on_each_stack() -> None:
    """Given a store (1 ms own) calling SQLAlchemy (2 ms own, 0.5 ms of it in a [self] frame)
    calling psycopg (5 ms) and json (1 ms, no kind of its own), then SQL 5 ms, SQLAlchemy
    2 + 0.5 + 1 = 3.5 ms, the store 1 ms, and nothing counted twice (9.5 ms in all)."""
    from bench.breakdown import time_by_kind

    psycopg = _Frame("/venv/site-packages/psycopg/cursor.py", 0.005)
    json = _Frame("/usr/lib/python3.11/json/encoder.py", 0.001)
    synthetic = _Frame(None, 0.0005, synthetic=True)
    sqlalchemy = _Frame("/venv/site-packages/sqlalchemy/orm/session.py", 0.002, [psycopg, json, synthetic])
    store = _Frame("/work/relance/adapters/dunning_store.py", 0.001, [sqlalchemy])
    totals = time_by_kind(store)
    assert round(totals["SQL round trips (psycopg, waiting on PostgreSQL)"], 6) == 0.005
    assert round(totals["SQLAlchemy (ORM, Core, sessions)"], 6) == 0.0035
    assert round(totals["store and unit of work (adapters)"], 6) == 0.001
    assert round(sum(totals.values()), 6) == 0.0095


def test_a_builtin_counts_for_the_kind_of_its_heaviest_caller() -> None:
    """Given cProfile stats where sha256 (a builtin, 2 ms) is called by the evidence module
    (1 ms own) and json's encoder (3 ms, standard library) by the log module (1 ms own),
    then evidence 3 ms and logs 4 ms."""
    from bench.breakdown import cpu_by_kind

    evidence = ("/work/relance/handlers/evidence.py", 10, "append")
    logs = ("/venv/site-packages/structlog/processors.py", 20, "render")
    sha256 = ("~", 0, "<built-in method _hashlib.openssl_sha256>")
    encode = ("/usr/lib/python3.11/json/encoder.py", 30, "encode")
    stats = {  # key: (calls, primitive calls, own time, cumulative time, callers)
        evidence: (1, 1, 0.001, 0.003, {}),
        logs: (1, 1, 0.001, 0.004, {}),
        sha256: (1, 1, 0.002, 0.002, {evidence: (1, 1, 0.002, 0.002)}),
        encode: (1, 1, 0.003, 0.003, {logs: (1, 1, 0.003, 0.003)}),
    }
    totals = cpu_by_kind(stats)
    assert round(totals["evidence records (hashing, JSON, chain)"], 6) == 0.003
    assert round(totals["log lines (structlog)"], 6) == 0.004
