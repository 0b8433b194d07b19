"""postfix's ``smtp-sink`` as the benchmarks' SMTP peer, when it is installed."""

from __future__ import annotations

import smtplib

import pytest

from bench.smtp_peer import smtp_sink_binary

pytestmark = pytest.mark.skipif(smtp_sink_binary() is None, reason="postfix's smtp-sink is not installed")


def test_smtp_sink_counts_and_tallies_what_it_received() -> None:
    """Given smtp-sink started by the bench, when one message is sent twice and another once
    on one connection, then it counts 3 received, 2 unique, 1 identical re-send, and its
    process is named for the CPU accounting."""
    from bench.smtp_peer import make_sink

    sink = make_sink("smtp-sink").start()
    try:
        assert set(sink.pids()) == {"smtp sink"}
        first = b"Message-ID: <a@relance>\r\nSubject: Rappel\r\n\r\nBonjour,\r\n"
        second = b"Message-ID: <b@relance>\r\nSubject: Rappel\r\n\r\nBonsoir,\r\n"
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            for raw in (first, first, second):
                client.sendmail("relance@creancier.example", ["compta@debiteur.example"], raw)
        assert sink.count() == 3
        assert len(sink.times()) == 3
        tally = sink.tally()
        assert (tally["unique"], tally["duplicated"], tally["conflicting"]) == (2, 1, 0)
    finally:
        sink.stop()
    assert sink.process is None
