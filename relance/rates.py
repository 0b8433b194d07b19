"""``relance rates``: the half-year rate table as the service reads it, and what it lacks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from handlers.calendar import local_date
from handlers.policy import HalfYearRate, RateField, RateTable
from handlers.rates import HalfYearWithoutRate, gaps, half_year_start, missing_ahead

UNCONFIRMED_MARK = "*"
COLUMNS = ("half-year", "ECB", "penalty", "legal, other cases", "legal, private creditor", "source")


def percent(rate: Decimal | None) -> str:
    """``Decimal("0.124")`` -> ``12.40 %``; an absent rate is ``-``."""
    return "-" if rate is None else f"{(rate * 100).quantize(Decimal('0.01'))} %"


def entry_row(half_year: str, entry: HalfYearRate, margin: Decimal) -> dict[str, object]:
    """One half-year as plain values (rates as decimal strings, like the rate file)."""
    return {
        "half_year": half_year,
        "ecb_rate": str(entry.ecb_rate),
        "penalty_rate": str(entry.ecb_rate + margin),
        "legal_rate_other": None if entry.legal_rate_other is None else str(entry.legal_rate_other),
        "legal_rate_private_creditor": (
            None if entry.legal_rate_private_creditor is None else str(entry.legal_rate_private_creditor)
        ),
        "unconfirmed": list(entry.unconfirmed_fields),
        "source": entry.source,
    }


def missing_rows(table: RateTable, now: datetime, timezone: str) -> list[dict[str, object]]:
    """Gaps inside the table, then the half-years without a rate up to the next one."""
    today = local_date(now, timezone)
    rows = [_missing_row(HalfYearWithoutRate.seen_on(key, today), "gap") for key in gaps(table)]
    return rows + [_missing_row(m, "ahead") for m in missing_ahead(table, now, timezone)]


def _missing_row(missing: HalfYearWithoutRate, where: str) -> dict[str, object]:
    return {
        "half_year": missing.half_year,
        "missing": where,
        "starts_on": missing.starts_on.isoformat(),
        "days_left": missing.days_left,
    }


def jsonl_lines(table: RateTable, margin: Decimal, now: datetime, timezone: str) -> Iterator[str]:
    """One JSON object per half-year of the table, then one per half-year missing."""
    for key in sorted(table.rates, key=half_year_start):
        yield json.dumps(entry_row(key, table.rates[key], margin), ensure_ascii=False)
    for row in missing_rows(table, now, timezone):
        yield json.dumps(row, ensure_ascii=False)


def table_lines(table: RateTable, margin: Decimal, now: datetime, timezone: str) -> Iterator[str]:
    """The table for reading: one line per half-year, marks on unconfirmed figures, then
    what is missing."""
    cells = [COLUMNS]
    for key in sorted(table.rates, key=half_year_start):
        entry = table.rates[key]
        cells.append(
            (
                key,
                _marked(entry, "ecb_rate", entry.ecb_rate),
                _marked(entry, "ecb_rate", entry.ecb_rate + margin),
                _marked(entry, "legal_rate_other", entry.legal_rate_other),
                _marked(entry, "legal_rate_private_creditor", entry.legal_rate_private_creditor),
                entry.source,
            )
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS) - 1)]
    for row in cells:
        yield "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
    yield f"{UNCONFIRMED_MARK} unconfirmed; penalty = ECB + {percent(margin)} (the default policy's margin)"
    yield from _missing_lines(table, now, timezone)


def _marked(entry: HalfYearRate, name: RateField, rate: Decimal | None) -> str:
    flagged = rate is not None and entry.is_unconfirmed(name)
    return percent(rate) + (f" {UNCONFIRMED_MARK}" if flagged else "")


def _missing_lines(table: RateTable, now: datetime, timezone: str) -> Iterator[str]:
    holes = gaps(table)
    yield "gaps in the table: " + (", ".join(holes) if holes else "none")
    ahead = missing_ahead(table, now, timezone)
    if not ahead:
        yield "missing ahead: none"
    for missing in ahead:
        yield f"missing ahead: {missing.describe()}"
