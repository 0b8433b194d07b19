"""The creditors file: each creditor's identity and settings, checked when the service is
built; a mistake is one line naming the file, the creditor and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.bootstrap import make_context
from config.errors import ConfigError
from config.settings import Settings
from handlers.context import UnknownCreditor


def context_with(tmp_path: Path, text: str):
    path = tmp_path / "creditors.toml"
    path.write_text(text, encoding="utf-8")
    return make_context(Settings(data_dir=tmp_path, creditors_file=path)), path


def test_each_creditor_gets_its_own_context_over_the_services(tmp_path):
    ctx, _ = context_with(
        tmp_path,
        """
[atelier]
sender = "Atelier Durand <relances@atelier-durand.example>"
[atelier.creditor]
name = "Atelier Durand SARL"
iban = "fr76 3000 6000 0112 3456 7890 189"
bic = "AGRIFRPP"
""",
    )
    atelier = ctx.for_creditor("atelier")
    assert (atelier.creditor, atelier.sender, atelier.message_domain) == (
        "atelier",
        "Atelier Durand <relances@atelier-durand.example>",
        "atelier-durand.example",
    )
    identity = atelier.policy.creditor
    assert (identity.name, identity.iban, identity.bic) == (
        "Atelier Durand SARL",
        "FR7630006000011234567890189",
        "AGRIFRPP",
    )
    # the service's steps, but nothing of the service's identity (another company's)
    assert [s.name for s in atelier.policy.steps] == [s.name for s in ctx.policy.steps]
    assert (identity.siren, identity.vat_number) == (None, None) and ctx.policy.creditor.siren == "123456782"
    assert ctx.for_creditor("default") is ctx and ctx.policy.creditor.iban is None
    with pytest.raises(UnknownCreditor, match="creditor 'other' is not configured"):
        ctx.for_creditor("other")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default]\nsender = 'a@b.example'\n", "[default]: 'default' is the service's own creditor"),
        ("['a b']\nsender = 'a@b.example'\n", "[a b]: a creditor id is 1 to 100 letters"),
        ("[atelier]\nsendr = 'a@b.example'\n", "[atelier].sendr: Extra inputs are not permitted"),
        (
            '[atelier]\nreply_to = "a@b.example\\nBcc: x@y.example"\n',
            "[atelier].reply_to: String should match",
        ),
        (
            "[atelier.creditor]\niban = 'FR7630006000011234567890188'\n",
            "[atelier].creditor.iban: Value error, 'FR7630006000011234567890188' is not a valid IBAN",
        ),
        (
            "[atelier.smtp]\nhost = 'smtp.example'\npassword_env = 'RELANCE_TEST_NO_SUCH_VARIABLE'\n",
            "[atelier].smtp.password_env: the variable RELANCE_TEST_NO_SUCH_VARIABLE is not set",
        ),
    ],
)
def test_a_mistake_in_the_creditors_file_is_one_line_naming_where(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        context_with(tmp_path, text)
    assert message in str(caught.value) and str(tmp_path / "creditors.toml") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_creditor_added_to_the_file_while_the_service_runs_is_found_without_a_restart(tmp_path):
    ctx, path = context_with(tmp_path, '[atelier]\nsender = "a@atelier.example"\n')
    with pytest.raises(UnknownCreditor):
        ctx.for_creditor("nouveau")
    path.write_text(path.read_text() + '[nouveau]\nsender = "n@nouveau.example"\n', encoding="utf-8")
    assert ctx.for_creditor("nouveau").sender == "n@nouveau.example"
    assert ctx.for_creditor("atelier").sender == "a@atelier.example"


def test_a_file_broken_while_the_service_runs_keeps_the_creditors_known(tmp_path, json_logs):
    ctx, path = context_with(tmp_path, '[atelier]\nsender = "a@atelier.example"\n')
    path.write_text('[atelier]\nsender = "a@atelier.example"\n[x y]\n', encoding="utf-8")
    with pytest.raises(UnknownCreditor):
        ctx.for_creditor("nouveau")
    assert [e["event"] for e in json_logs()] == ["creditors.reload_failed"]
    assert ctx.for_creditor("atelier").sender == "a@atelier.example"
