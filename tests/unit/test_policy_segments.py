"""Policies per segment: loading, validation and which policy governs a debtor or invoice."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from config.errors import ConfigError
from config.policy import load_policy_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "segmented.toml"


def debtor(**attributes: str) -> SimpleNamespace:
    base = {"id": "D-1", "kind": "business", "country": "FR", "language": "fr", "segment": None}
    return SimpleNamespace(**(base | attributes))


@pytest.fixture(scope="module")
def policies():
    return load_policy_set(EXAMPLE)


def test_the_example_file_defines_three_policies(policies):
    # and the shipped consumer policy, which the "consumers" segment leaves to no debtor
    assert policies.names == ("default", "consumers", "key_accounts", "consumer_default")
    assert [s.name for s in policies.named("consumers").steps] == [
        "due",
        "notice",
        "reminder_1",
        "formal_notice",
    ]


@pytest.mark.parametrize(
    ("attributes", "invoice", "expected"),
    [
        ({}, None, "segmented-fr"),  # no segment matches
        ({"kind": "consumer"}, None, "consumers-fr"),  # first segment
        ({"segment": "key_account"}, None, "key-accounts-fr"),  # second segment
        ({"kind": "consumer", "segment": "key_account"}, None, "consumers-fr"),  # first match wins
        ({"id": "CLI-GROUPE-DURAND"}, None, "key-accounts-fr"),  # debtor override
        ({"id": "CLI-GROUPE-DURAND"}, "F-2026-0999", "segmented-fr"),  # invoice override wins
        ({"kind": "consumer"}, "F-2026-0999", "segmented-fr"),
    ],
)
def test_the_policy_of_a_debtor_follows_overrides_then_segments_then_default(
    policies, attributes, invoice, expected
):
    assert policies.for_debtor(debtor(**attributes), invoice).name == expected


def _write(tmp_path: Path, extra: str) -> Path:
    main = tmp_path / "policy.toml"
    main.write_text(EXAMPLE.read_text(encoding="utf-8").split("[[segments]]")[0] + extra, encoding="utf-8")
    (tmp_path / "consumer.toml").write_text(
        (EXAMPLE.parent / "consumer.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return main


def test_an_override_naming_an_unknown_segment_is_a_start_up_error(tmp_path):
    path = _write(tmp_path, '[overrides]\ndebtors = { "D-1" = "vip" }\n')
    with pytest.raises(ConfigError) as caught:
        load_policy_set(path)
    assert str(caught.value) == (
        f"{path}: overrides.debtors.D-1: no segment named 'vip' (known: default, consumer_default)"
    )


def test_a_segment_matching_an_unknown_attribute_is_refused(tmp_path):
    path = _write(
        tmp_path, '[[segments]]\nname = "c"\npolicy_file = "consumer.toml"\nmatch = { revenue = "high" }\n'
    )
    with pytest.raises(
        ConfigError,
        match=r"segments\[0\]: match: Value error, unknown debtor "
        r"attribute\(s\) revenue|unknown debtor attribute",
    ):
        load_policy_set(path)


def test_a_segment_policy_file_with_an_error_is_named(tmp_path):
    path = _write(
        tmp_path, '[[segments]]\nname = "c"\npolicy_file = "consumer.toml"\nmatch = { kind = "consumer" }\n'
    )
    broken = tmp_path / "consumer.toml"
    broken.write_text(
        broken.read_text(encoding="utf-8").replace("offset_days = 7", "offset_days = -900"), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy_set(path)
    assert str(caught.value).startswith(f"{broken}: steps[1].offset_days:")
