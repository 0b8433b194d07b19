"""The built-in rate table from 2009 on, the renamed legal-rate keys, and its validation."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.logging import configure_logging
from config.policy import load_rates
from handlers.rates import gaps

TABLE = load_rates().rates

# ECB main refinancing rate in force on 1 January / 1 July (C. com. L441-10 II), in %:
# a change during the half-year does not change its rate (e.g. the cut to 2.00 % of
# 21 January 2009 is not in 2009-H1; the rise to 0.50 % of 27 July 2022 not in 2022-H2).
ECB_ON_THE_FIRST_DAY = {
    2009: ("2.50", "1.00"),
    2010: ("1.00", "1.00"),
    2011: ("1.00", "1.25"),
    2012: ("1.00", "1.00"),
    2013: ("0.75", "0.50"),
    2014: ("0.25", "0.15"),
    2015: ("0.05", "0.05"),
    2016: ("0.05", "0.00"),
    **{year: ("0.00", "0.00") for year in range(2017, 2023)},
    2023: ("2.50", "4.00"),
    2024: ("4.50", "4.25"),
    2025: ("3.15", "2.15"),
    2026: ("2.15", "2.40"),
}

# Before 2015, one legal rate per calendar year (décret), for both halves and both kinds
# of creditor; in %.
YEARLY_LEGAL_RATE = {2009: "3.79", 2010: "0.65", 2011: "0.38", 2012: "0.71", 2013: "0.04", 2014: "0.04"}

# From 2015, one arrêté per half-year (C. monétaire et financier L313-2, D313-1-A), in %:
# (creditor who is a private person, all other cases)
HALF_YEAR_LEGAL_RATES = {
    "2015-H1": ("4.06", "0.93"),
    "2015-H2": ("4.29", "0.99"),
    "2016-H1": ("4.54", "1.01"),
    "2016-H2": ("4.35", "0.93"),
    "2017-H1": ("4.16", "0.90"),
    "2017-H2": ("3.94", "0.90"),
    "2018-H1": ("3.73", "0.89"),
    "2018-H2": ("3.60", "0.88"),
    "2019-H1": ("3.40", "0.86"),
    "2019-H2": ("3.26", "0.87"),
    "2020-H1": ("3.15", "0.87"),
    "2020-H2": ("3.11", "0.84"),
    "2021-H1": ("3.14", "0.79"),
    "2021-H2": ("3.12", "0.76"),
    "2022-H1": ("3.13", "0.76"),
    "2022-H2": ("3.15", "0.77"),
    "2023-H1": ("4.47", "2.06"),
    "2023-H2": ("6.82", "4.22"),
    "2024-H1": ("8.01", "5.07"),
    "2024-H2": ("8.16", "4.92"),
    "2025-H1": ("7.21", "3.71"),
    "2025-H2": ("6.65", "2.76"),
    "2026-H1": ("6.67", "2.62"),
    "2026-H2": ("6.84", "2.75"),  # to verify in the JO: flagged unconfirmed
}


def pct(text: str) -> Decimal:
    return Decimal(text) / 100


@pytest.mark.parametrize(
    ("half_year", "ecb"),
    [(f"{y}-H{h}", rates[h - 1]) for y, rates in ECB_ON_THE_FIRST_DAY.items() for h in (1, 2)],
)
def test_the_table_holds_the_ecb_rate_in_force_on_the_first_day_of_each_half_year(half_year, ecb):
    entry = TABLE[half_year]
    assert entry.ecb_rate == pct(ecb)
    assert entry.source.startswith(f"ECB main refinancing rate in force on {half_year[:4]}-")
    assert not entry.is_unconfirmed("ecb_rate")


@pytest.mark.parametrize(("year", "rate"), YEARLY_LEGAL_RATE.items())
def test_before_2015_both_halves_and_both_legal_rates_carry_the_rate_of_the_year(year, rate):
    for half in ("H1", "H2"):
        entry = TABLE[f"{year}-{half}"]
        assert entry.legal_rate_other == entry.legal_rate_private_creditor == pct(rate)


@pytest.mark.parametrize(("half_year", "rates"), HALF_YEAR_LEGAL_RATES.items())
def test_from_2015_each_half_year_has_its_two_legal_rates(half_year, rates):
    private, other = rates
    entry = TABLE[half_year]
    assert (entry.legal_rate_private_creditor, entry.legal_rate_other) == (pct(private), pct(other))


def test_the_table_runs_without_a_gap_from_2009_h1_to_2026_h2():
    assert min(TABLE) == "2009-H1" and max(TABLE) == "2026-H2"
    assert gaps(load_rates()) == []
    assert len(TABLE) == 36  # 18 years x 2


def test_only_the_2026_h2_legal_rates_are_unconfirmed():
    flagged = {key: entry.unconfirmed_fields for key, entry in TABLE.items() if entry.unconfirmed}
    assert flagged == {"2026-H2": ("legal_rate_other", "legal_rate_private_creditor")}


OLD_NAMES = """
[rates."2026-H1"]
ecb_rate = "0.0215"
legal_rate_professional = "0.0262"
legal_rate_consumer = "0.0667"
source = "an operator's file written before the rename"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_operators_file_with_the_old_names_still_loads_under_the_new_names(tmp_path, capsys):
    configure_logging("INFO")
    path = write(tmp_path, OLD_NAMES)
    entry = load_rates(path).rates["2026-H1"]
    # "professional" was the legal rate of all other cases, "consumer" that of a private
    # creditor: 2.62 % and 6.67 % for 2026-H1
    assert entry.legal_rate_other == Decimal("0.0262")
    assert entry.legal_rate_private_creditor == Decimal("0.0667")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    renamed = [
        (w["file"], w["key"], w["use"], w["level"]) for w in lines if w["event"] == "rates.renamed_key"
    ]
    assert renamed == [
        (str(path), "rates.2026-H1.legal_rate_professional", "legal_rate_other", "warning"),
        (str(path), "rates.2026-H1.legal_rate_consumer", "legal_rate_private_creditor", "warning"),
    ]


def test_an_old_name_beside_its_new_name_is_an_error_naming_the_file_and_key(tmp_path):
    path = write(tmp_path, OLD_NAMES.replace("source =", 'legal_rate_other = "0.0262"\nsource ='))
    with pytest.raises(ConfigError) as caught:
        load_rates(path)
    assert str(caught.value).startswith(f"{path}: rates.2026-H1.legal_rate_professional: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('legal_rate_other = "abc"', "rates.2026-H1.legal_rate_other"),
        ('legal_rate_private_creditor = "1.5"', "rates.2026-H1.legal_rate_private_creditor"),
        ('unconfirmed = ["ecb"]', "rates.2026-H1.unconfirmed"),
        ('legal_rate = "0.02"', "rates.2026-H1.legal_rate"),
    ],
)
def test_a_bad_key_or_value_is_one_line_naming_the_file_and_the_key(tmp_path, line, key):
    path = write(tmp_path, f'[rates."2026-H1"]\necb_rate = "0.0215"\nsource = "test"\n{line}\n')
    with pytest.raises(ConfigError) as caught:
        load_rates(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}")
    assert "\n" not in message


def test_unconfirmed_may_list_the_figures_not_confirmed(tmp_path):
    path = write(
        tmp_path,
        '[rates."2027-H1"]\necb_rate = "0.0240"\nlegal_rate_other = "0.03"\nsource = "test"\n'
        'unconfirmed = ["legal_rate_other"]\n',
    )
    entry = load_rates(path).rates["2027-H1"]
    assert entry.is_unconfirmed("legal_rate_other") and not entry.is_unconfirmed("ecb_rate")
    assert entry.unconfirmed_fields == ("legal_rate_other",)
