"""``make bench-import``: ``relance import`` of 100 000 e-invoices into PostgreSQL, its speed
and its resident memory as the store grows.

N UBL 2.1 invoices (BENCH_IMPORT_INVOICES, default 100000) are written into one folder, as
an accounting system would drop them: one file each, 1 000 buyers with 100 invoices each
(the buyer of invoice i is i mod 1000), a seller with no SIREN set up (creditor
``default``). ``relance migrate`` then ``relance import FOLDER`` run as their own processes
on a fresh PostgreSQL database (BENCH_POSTGRES_URL, as ``bench/run.py``), like an operator
would run them. While the import runs, the number of invoices stored is read from the
database and the import's resident memory (VmRSS) from ``/proc`` every
BENCH_IMPORT_SAMPLE_SECONDS (default 2). Printed: the invoices/s and RSS at 10 000, 50 000
and 100 000 invoices (the sample nearest each), the peak RSS of the process (its maximum
resident set, from ``getrusage`` once it has ended) and whether memory is flat: the RSS at
the last mark is at most BENCH_IMPORT_GROWTH_MB (default 20) above the RSS at the first.
Exit 1 when the import fails or memory is not flat. The database is dropped at the end.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import TAG, create_database, drop_database

INVOICES = int(os.environ.get("BENCH_IMPORT_INVOICES", "100000"))
SAMPLE_SECONDS = float(os.environ.get("BENCH_IMPORT_SAMPLE_SECONDS", "2"))
GROWTH_MB = float(os.environ.get("BENCH_IMPORT_GROWTH_MB", "20"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "7200"))
BUYERS = 1000
MARKS = tuple(m for m in (10_000, 50_000, 100_000) if m <= INVOICES) or (INVOICES,)

NOTE = "Pénalités de retard : 12 % l'an. Indemnité forfaitaire pour frais de recouvrement : 40 €."
UBL = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
 <cbc:ID>B-{number:06d}</cbc:ID>
 <cbc:IssueDate>2026-09-{day:02d}</cbc:IssueDate>
 <cbc:DueDate>2026-10-{day:02d}</cbc:DueDate>
 <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
 <cbc:Note>{note}</cbc:Note>
 <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party>
  <cac:PostalAddress><cbc:StreetName>1 rue du Bac</cbc:StreetName><cbc:CityName>Paris</cbc:CityName>
   <cbc:PostalZone>75007</cbc:PostalZone>
   <cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country>
  </cac:PostalAddress>
  <cac:PartyLegalEntity><cbc:RegistrationName>Atelier du banc</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party>
  <cac:PartyIdentification><cbc:ID>C{buyer:04d}</cbc:ID></cac:PartyIdentification>
  <cac:PostalAddress><cbc:StreetName>{buyer} avenue des Tests</cbc:StreetName>
   <cbc:CityName>Lyon</cbc:CityName><cbc:PostalZone>69007</cbc:PostalZone>
   <cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country>
  </cac:PostalAddress>
  <cac:PartyLegalEntity>
   <cbc:RegistrationName>Client {buyer:04d} SARL</cbc:RegistrationName>
  </cac:PartyLegalEntity>
  <cac:Contact><cbc:ElectronicMail>compta{buyer}@client.example</cbc:ElectronicMail></cac:Contact>
 </cac:Party></cac:AccountingCustomerParty>
 <cac:LegalMonetaryTotal>
  <cbc:TaxExclusiveAmount currencyID="EUR">{net}</cbc:TaxExclusiveAmount>
  <cbc:TaxInclusiveAmount currencyID="EUR">{gross}</cbc:TaxInclusiveAmount>
  <cbc:PayableAmount currencyID="EUR">{gross}</cbc:PayableAmount>
 </cac:LegalMonetaryTotal>
</Invoice>
"""


def write_invoices(folder: Path, count: int) -> None:
    for number in range(1, count + 1):
        cents = 10_000 + (number * 7919) % 500_000  # 100.00 to 5 099.99, spread
        net = f"{cents // 100}.{cents % 100:02d}"
        gross = f"{cents * 12 // 1000}.{cents * 12 // 10 % 100:02d}"
        buyer, day = number % BUYERS, 1 + number % 28
        text = UBL.format(number=number, day=day, buyer=buyer, net=net, gross=gross, note=NOTE)
        (folder / f"B-{number:06d}.xml").write_text(text, encoding="utf-8")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stored_invoices(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        row = connection.execute("SELECT count(*) FROM invoices").fetchone()
    return int(row[0]) if row else 0


def relance(folder: Path, url: str, *args: str) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")},
        "RELANCE_DATABASE_URL": url,
        "RELANCE_DATA_DIR": str(folder / "var"),
    }
    command = [str(Path(sys.executable).parent / "relance"), *args]
    # the output (a JSON log line per event, then the summary) goes to a file: a pipe
    # nobody reads during the run would fill and stop the import
    with open(folder / f"{args[0]}.out", "w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def last_line(folder: Path, command: str) -> str:
    lines = (folder / f"{command}.out").read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[-1] if lines else ""


def run(folder: Path) -> int:
    invoices = folder / "invoices"
    invoices.mkdir()
    started = time.monotonic()
    write_invoices(invoices, INVOICES)
    print(f"wrote {INVOICES} UBL files in {time.monotonic() - started:.1f} s", flush=True)
    database = f"relance_bench_{TAG}_import"
    url = create_database(database).replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate = relance(folder, url, "migrate")
        if migrate.wait(timeout=300) != 0:
            raise RuntimeError(f"migrate: {last_line(folder, 'migrate')}")
        samples: list[tuple[int, float, float]] = []  # (invoices, seconds, RSS MB)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.monotonic()
        process = relance(folder, url, "import", str(invoices))
        while process.poll() is None and time.monotonic() - start < TIMEOUT:
            time.sleep(SAMPLE_SECONDS)
            rss = rss_mb(process.pid)
            if rss is not None:
                samples.append((stored_invoices(url), time.monotonic() - start, rss))
        process.wait(timeout=60)
        seconds = time.monotonic() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = last_line(folder, "import")
        print(f"relance import: {summary} (exit {process.returncode})", flush=True)
        if summary != f"accepted {INVOICES}, duplicate 0, rejected 0":
            return 1
        done = stored_invoices(url)
    finally:
        drop_database(database)
    return report(samples, done, seconds, (peak if peak > before else 0) / 1024)


def report(samples: list[tuple[int, float, float]], done: int, seconds: float, peak_mb: float) -> int:
    print(f"{done} invoices in {seconds:.1f} s = {done / seconds:.0f} invoices/s", flush=True)
    print("| invoices stored | seconds | invoices/s since the mark before | import RSS MB |")
    print("| --- | --- | --- | --- |")
    at_marks = []
    previous = (0, 0.0)
    for mark in MARKS:
        count, at, rss = min(samples, key=lambda s: abs(s[0] - mark))
        rate = (count - previous[0]) / (at - previous[1]) if at > previous[1] else 0.0
        print(f"| {count} | {at:.0f} | {rate:.0f} | {rss:.1f} |")
        at_marks.append(rss)
        previous = (count, at)
    print(f"peak RSS of the import process (maximum resident set): {peak_mb:.1f} MB")
    growth = at_marks[-1] - at_marks[0]
    verdict = "flat" if growth <= GROWTH_MB else "GROWING"
    print(f"import_rss_growth_mb={growth:.1f} (limit {GROWTH_MB:.0f}) {verdict}", flush=True)
    return 0 if verdict == "flat" else 1


def main() -> int:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relance-bench-import-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
