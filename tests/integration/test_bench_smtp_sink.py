"""postfix's ``smtp-sink`` as the benchmarks' SMTP peer, when it is installed."""

from __future__ import annotations

import os
import smtplib
import time

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


@pytest.mark.skipif(os.geteuid() != 0, reason="the bench's postfix instance is started as root")
def test_the_real_mta_queues_and_relays_every_message_to_the_sink() -> None:
    """Given the bench's throwaway postfix in front of smtp-sink, when two messages are sent
    to postfix, then both reach the sink unchanged (the Message-IDs counted there), postfix
    is accounted as its own process group, and stopping it leaves no folder behind."""
    from bench.smtp_peer import make_sink

    mta = make_sink("postfix").start()
    try:
        assert set(mta.pids()) == {"smtp sink", "mta"}
        with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as client:
            client.ehlo()
            assert client.has_extn("pipelining")
            for n in (1, 2):
                raw = f"Message-ID: <m{n}@relance>\r\nSubject: Rappel\r\n\r\nBonjour,\r\n".encode()
                client.sendmail("relance@creancier.example", ["compta@debiteur.example"], raw)
        deadline = time.monotonic() + 60
        while mta.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        tally = mta.tally()
        assert (tally["received"], tally["unique"], tally["conflicting"]) == (2, 2, 0)
    finally:
        mta.stop()
    assert not mta.folder.exists()
