"""A statement's lines read back as they were written, one line at a time."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from handlers.statement import Statement, StatementBuilder


def test_a_statement_reads_back_its_lines_with_quoted_line_ends_and_accents():
    builder = StatementBuilder("D-1-2026-04-14", "EUR")
    view = {
        "number": "F-1\r\nbis; «été»",  # a number with a line end and a separator, quoted
        "issue_date": date(2026, 2, 18),
        "due_date": date(2026, 3, 20),
        "currency": "EUR",
        "balance": Decimal("100.10"),
        "late_interest": Decimal("0.50"),
        "indemnity": Decimal("40.00"),
    }
    builder.claim(view)
    builder.claim(view | {"number": "F-2"})
    statement = builder.finish()
    expected = Statement.of_lines(
        "statement-D-1-2026-04-14.csv",
        [
            (
                "invoice",
                "issue_date",
                "due_date",
                "currency",
                "balance",
                "late_interest",
                "indemnity",
                "demanded",
                "section",
            ),
            (
                "F-1\r\nbis; «été»",
                "2026-02-18",
                "2026-03-20",
                "EUR",
                "100.10",
                "0.50",
                "40.00",
                "140.60",
                "claimed",
            ),
            ("F-2", "2026-02-18", "2026-03-20", "EUR", "100.10", "0.50", "40.00", "140.60", "claimed"),
            ("total", "", "", "EUR", "200.20", "1.00", "80.00", "281.20", "claimed"),
        ],
    )
    assert statement == expected  # the same bytes as the lines written at once
    assert statement.lines[1][0] == "F-1\r\nbis; «été»" and statement.line_count == 4
    assert list(statement.text_lines())[3] == "total; ; ; EUR; 200.20; 1.00; 80.00; 281.20; claimed"
