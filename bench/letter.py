"""``make bench-letter``: the time to render one PDF letter, alone and on worker threads.

Renders BENCH_LETTERS letters (default 80) of about one page (a registered formal notice
with Polish and Greek names) with ``adapters.letter.letter_pdf``, one after the other,
then the same number on BENCH_LETTER_THREADS threads (default 4) as a Dramatiq worker
would; prints the median, the fastest and the slowest CPU time per letter, the wall-clock
time per letter of the threaded run, and the first letter's CPU time (it loads the fonts).

Figures: docs/benchmarks.md ("Rendering a letter").
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from adapters.letter import letter_pdf
from handlers.policy import Creditor

LETTERS = int(os.environ.get("BENCH_LETTERS", "80"))
THREADS = int(os.environ.get("BENCH_LETTER_THREADS", "4"))
NAMES = ["Łódź Żółć Sp. z o.o.", "Αθηνά Παπαδοπούλου", "ul. Piotrkowska 1", "90-001 Łódź", "PL"]
BODY = "Madame, Monsieur,\n\n" + "\n".join(
    f"Facture F-{n} du 2 mars 2026, échue le 20 mars 2026 : 1 234,56 € restant dus." for n in range(25)
)


def one_letter(n: int) -> float:
    """CPU seconds of this thread to render letter ``n`` (on a shared machine the wall-clock
    time also counts the other processes)."""
    started = time.thread_time()
    letter_pdf(
        creditor=Creditor(name="Exemple SAS", address=("1 rue de la Paix", "75002 Paris")),
        recipient_lines=NAMES,
        subject=f"Mise en demeure de payer – F-{n}",
        body_text=BODY,
        reference=f"ref-{n}",
        at=datetime(2026, 4, 14, 8, 0, tzinfo=UTC),
        place_date="Paris, le 14 avril 2026",
        registered=True,
    )
    return time.thread_time() - started


def report(label: str, times: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(times) * 1000:.1f} ms, "
        f"fastest {min(times) * 1000:.1f} ms, slowest {max(times) * 1000:.1f} ms of CPU per letter"
    )


def main() -> None:
    print(f"first letter of the process: {one_letter(0) * 1000:.1f} ms of CPU")
    report(f"{LETTERS} letters in a row", [one_letter(n) for n in range(1, LETTERS + 1)])
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        times = list(pool.map(one_letter, range(LETTERS)))
    wall = time.perf_counter() - started
    report(f"{LETTERS} letters on {THREADS} threads", times)
    print(f"  {wall / LETTERS * 1000:.1f} ms of wall-clock time per letter")


if __name__ == "__main__":
    main()
