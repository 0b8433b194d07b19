"""Policy file, rate table and environment settings: validated at start-up with clear errors."""

from __future__ import annotations

import time as pytime
import traceback
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from config.bootstrap import make_clock
from config.errors import ConfigError
from config.policy import load_policy, load_rates
from config.settings import load_settings

DEFAULT_POLICY_TEXT = (Path(__file__).parents[2] / "config" / "policy.toml").read_text(encoding="utf-8")

SMALL_POLICY = """
name = "de-small"
country = "DE"
language = "en"
timezone = "Europe/Berlin"
resume_step = "reminder"

[window]
start = "08:30:00"
end = "17:00:00"

[[steps]]
name = "due"
offset_days = 0
event = "invoice.due"
channels = ["email"]

[[steps]]
name = "reminder"
offset_days = 14
event = "invoice.overdue"
channels = ["email", "letter"]
states_penalties = true

[money]
recovery_indemnity = "40.00"
penalty_margin = "0.09"
"""


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def policy_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    return path, str(caught.value)


def test_a_valid_policy_file_loads_with_its_values(tmp_path):
    policy = load_policy(write(tmp_path, SMALL_POLICY))
    assert (policy.name, policy.country, policy.language, policy.timezone) == (
        "de-small",
        "DE",
        "en",
        "Europe/Berlin",
    )
    assert policy.window.start == time(8, 30)
    assert policy.window.end == time(17, 0)
    assert [(s.name, s.offset_days, s.channels) for s in policy.steps] == [
        ("due", 0, ("email",)),
        ("reminder", 14, ("email", "letter")),
    ]
    assert policy.money.penalty_margin == Decimal("0.09")
    assert policy.resume_step == "reminder"
    assert not policy.has_formal_notice


def test_a_copy_of_the_default_policy_loads_like_the_built_in_one(tmp_path):
    assert load_policy(write(tmp_path, DEFAULT_POLICY_TEXT)) == load_policy()


def test_the_built_in_policy_carries_the_legal_defaults():
    policy = load_policy()
    assert policy.country == "FR"
    assert policy.window.start == time(9, 0) and policy.window.end == time(18, 0)
    assert policy.escalation.deadline_days == 8
    assert policy.escalation.small_claims_limit == Decimal("5000.00")
    assert policy.money.recovery_indemnity == Decimal("40.00")
    assert policy.money.penalty_margin == Decimal("0.10")
    assert policy.step("reminder_2").channels == ("email", "letter")
    assert policy.step("formal_notice").channels == ("registered_letter", "email")
    stating = [s.name for s in policy.steps if s.states_penalties]
    assert stating == ["reminder_2", "reminder_3", "formal_notice"]


def test_a_non_integer_offset_names_the_file_and_the_key(tmp_path):
    text = DEFAULT_POLICY_TEXT.replace("offset_days = -5", 'offset_days = "x"')
    path, message = policy_error(tmp_path, text)
    assert message.startswith(f"{path}: ")
    assert "steps[0].offset_days" in message


def test_a_bad_key_in_a_later_step_names_its_index(tmp_path):
    _, message = policy_error(
        tmp_path, DEFAULT_POLICY_TEXT.replace('channels = ["email", "letter"]', 'channels = ["pigeon"]', 1)
    )
    assert "steps[4].channels[0]" in message  # reminder_2 is the fifth step


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # reminder_3 (offset 30) followed by formal_notice moved to 25: not increasing
        (("offset_days = 40", "offset_days = 25"), "offset_days must increase"),
        # two steps on the same offset
        (("offset_days = 40", "offset_days = 30"), "offset_days must increase"),
        (('name = "reminder_3"', 'name = "reminder_2"'), "repeated: reminder_2"),
        (('end = "18:00:00"', 'end = "08:00:00"'), "window: end must be after start"),
        (('end = "18:00:00"', 'end = "09:00:00"'), "window: end must be after start"),
        (('resume_step = "notice"', 'resume_step = "nope"'), "resume_step"),
        (('country = "FR"', 'country = "France"'), "country"),
        (('name = "default-fr"', 'name = "default-fr"\nsurprise = 1'), "surprise"),
        (("deadline_days = 8", "deadline_days = 0"), "escalation.deadline_days"),
    ],
)
def test_an_invalid_policy_is_an_error_naming_the_file_and_what_is_wrong(tmp_path, change, expected):
    old, new = change
    assert old in DEFAULT_POLICY_TEXT
    path, message = policy_error(tmp_path, DEFAULT_POLICY_TEXT.replace(old, new, 1))
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_invalid_toml_is_an_error_naming_the_file(tmp_path):
    path, message = policy_error(tmp_path, DEFAULT_POLICY_TEXT + "\n[[[broken\n")
    assert message.startswith(f"{path}: ")
    assert "not valid TOML" in message


def test_a_missing_policy_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "policy.toml"
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "cannot read" in str(caught.value)


def test_the_built_in_rate_table_has_2026_h1_confirmed_and_2026_h2_at_the_ecb_rate_of_june_2026():
    table = load_rates().rates
    h1 = table["2026-H1"]
    assert h1.ecb_rate == Decimal("0.0215")
    assert h1.legal_rate_other == Decimal("0.0262")
    assert h1.legal_rate_private_creditor == Decimal("0.0667")
    assert not h1.unconfirmed
    # 2026-H2: the ECB raised its rate to 2.40 % on 11 June 2026, before 1 July, so the
    # half-year's rate is 2.40 % (confirmed); only its legal rates wait for the JO
    h2 = table["2026-H2"]
    assert h2.ecb_rate == Decimal("0.0240") and not h2.is_unconfirmed("ecb_rate")
    assert h2.unconfirmed_fields == ("legal_rate_other", "legal_rate_private_creditor")
    assert "2027-H1" not in table  # never extrapolated


@pytest.mark.parametrize(
    ("half_year", "ecb"),
    [
        ("2023-H1", "0.0250"),
        ("2023-H2", "0.0400"),
        ("2024-H1", "0.0450"),
        ("2024-H2", "0.0425"),
        ("2025-H1", "0.0315"),
        ("2025-H2", "0.0215"),
    ],
)
def test_the_built_in_rate_table_matches_the_published_ecb_rates(half_year, ecb):
    entry = load_rates().rates[half_year]
    assert entry.ecb_rate == Decimal(ecb)
    assert entry.source and not entry.unconfirmed


def test_a_rate_table_with_a_bad_half_year_key_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, '[rates."2026-H3"]\necb_rate = "0.02"\nsource = "test"\n', "rates.toml")
    with pytest.raises(ConfigError) as caught:
        load_rates(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "2026-H3" in str(caught.value)


@pytest.fixture
def clean_env(monkeypatch):
    """No RELANCE_* variable from the surrounding shell leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("RELANCE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_default_to_the_embedded_mode(clean_env):
    settings = load_settings()
    assert settings.smtp_port == 587
    assert settings.smtp_host is None
    assert settings.now is None


def test_a_non_numeric_smtp_port_is_an_error_naming_the_variable(clean_env):
    clean_env.setenv("RELANCE_SMTP_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("RELANCE_SMTP_PORT:")
    assert "'abc'" in str(caught.value)


def test_an_smtp_port_out_of_range_is_rejected(clean_env):
    clean_env.setenv("RELANCE_SMTP_PORT", "70000")
    with pytest.raises(ConfigError, match=r"^RELANCE_SMTP_PORT:"):
        load_settings()


def test_a_start_instant_without_an_offset_is_rejected(clean_env):
    clean_env.setenv("RELANCE_NOW", "2026-03-02T09:00:00")
    with pytest.raises(ConfigError, match=r"^RELANCE_NOW:.*offset"):
        load_settings()


def test_a_start_instant_with_an_offset_is_accepted(clean_env):
    clean_env.setenv("RELANCE_NOW", "2026-03-02T09:00:00+01:00")
    assert load_settings().now == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_clock_start_dated_without_its_instant_is_rejected(clean_env):
    clean_env.setenv("RELANCE_NOW_SINCE", "1796630400")
    with pytest.raises(ConfigError, match=r"^RELANCE_NOW_SINCE: set without RELANCE_NOW"):
        load_settings()


def test_processes_given_one_dated_start_read_one_clock_whenever_they_start(clean_env):
    # RELANCE_NOW read 09:00 Paris 12.5 s ago: a process starting its clock now reads 09:00:12.5,
    # not 09:00:00 as a clock started at its own start-up would
    clean_env.setenv("RELANCE_NOW", "2026-03-02T09:00:00+01:00")
    clean_env.setenv("RELANCE_NOW_SINCE", repr(pytime.time() - 12.5))
    read = make_clock(load_settings()).now()
    late = (read - datetime(2026, 3, 2, 8, 0, tzinfo=UTC)).total_seconds()
    assert 12.5 <= late < 14.5


def test_the_smtp_password_never_appears_in_a_configuration_error(clean_env):
    secret = "s3cr3t-Pa55word"
    clean_env.setenv("RELANCE_SMTP_PASSWORD", secret)
    clean_env.setenv("RELANCE_SMTP_PORT", "abc")
    clean_env.setenv("RELANCE_SMTP_TLS", "bogus")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert secret not in str(caught.value)
    # nor in the chained traceback a crash report would print
    assert secret not in "".join(traceback.format_exception(caught.value))


def test_an_invalid_password_value_is_named_but_not_shown(clean_env):
    secret = "s3cr3t-Pa55word"
    with pytest.raises(ConfigError) as caught:
        load_settings(smtp_password=["not", "a", "string", secret])
    assert str(caught.value).startswith("RELANCE_SMTP_PASSWORD:")
    assert secret not in str(caught.value)


def test_the_smtp_password_is_readable_only_on_purpose(clean_env):
    clean_env.setenv("RELANCE_SMTP_PASSWORD", "s3cr3t-Pa55word")
    settings = load_settings()
    assert "s3cr3t" not in repr(settings)
    assert settings.smtp_secret() == "s3cr3t-Pa55word"


def test_the_smtp_password_file_is_read_and_stripped(clean_env, tmp_path):
    secret_file = tmp_path / "smtp.secret"
    secret_file.write_text("from-file-secret\n", encoding="utf-8")
    clean_env.setenv("RELANCE_SMTP_PASSWORD_FILE", str(secret_file))
    assert load_settings().smtp_secret() == "from-file-secret"


def test_an_unreadable_password_file_is_an_error_naming_the_variable(clean_env, tmp_path):
    clean_env.setenv("RELANCE_SMTP_PASSWORD_FILE", str(tmp_path / "missing.secret"))
    with pytest.raises(ConfigError, match=r"^RELANCE_SMTP_PASSWORD_FILE:"):
        load_settings().smtp_secret()


def test_a_policy_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_bytes(DEFAULT_POLICY_TEXT.replace("Votre société SAS", "Soci\xe9t\xe9").encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "UTF-8" in str(caught.value)


def test_a_directory_given_as_the_policy_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_policy(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: ")
