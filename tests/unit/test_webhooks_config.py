"""The webhooks file: the example loads; every mistake is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.webhooks import load_webhooks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhooks.toml"
KEY = "an-hmac-key-of-the-erp-0123456789"


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("RELANCE_ERP_WEBHOOK_KEY", KEY)
    monkeypatch.setenv("RELANCE_AGENT_WEBHOOK_KEY", KEY[::-1])


def test_the_example_loads_with_its_creditor_filter():
    webhooks = load_webhooks(EXAMPLE)
    assert webhooks is not None and webhooks.max_attempts == 10
    assert [s.name for s in webhooks.for_signal("case.opened", "default")] == ["erp"]
    assert [s.name for s in webhooks.for_signal("case.opened", "atelier")] == ["agent_atelier", "erp"]
    assert [s.name for s in webhooks.for_signal("invoice.settled", "atelier")] == ["erp"]
    erp = webhooks.get("erp")
    assert erp is not None and erp.secret.get_secret_value() == KEY
    assert KEY not in repr(webhooks)


def test_no_file_means_no_subscriber():
    assert load_webhooks(None) is None


GOOD = 'url = "https://erp.example/x"\nsecret_env = "RELANCE_ERP_WEBHOOK_KEY"\nevents = ["case.opened"]'


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            GOOD.replace("https://", "http://"),
            "subscribers.erp.url: http:// only to a loopback host",
        ),
        (
            GOOD.replace("case.opened", "invoice.paid"),
            "subscribers.erp.events: unknown 'invoice.paid'",
        ),
        (
            GOOD.replace("RELANCE_ERP_WEBHOOK_KEY", "NOT_SET_ANYWHERE_42"),
            "subscribers.erp.secret_env: the environment variable NOT_SET_ANYWHERE_42 is not set or empty",
        ),
        (
            GOOD + '\nsecret = "x"',
            "subscribers.erp.secret",
        ),
        (
            GOOD + "\ncreditors = []",
            "subscribers.erp.creditors: empty",
        ),
    ],
)
def test_a_mistake_names_the_file_and_the_key(tmp_path, entry, message):
    path = tmp_path / "webhooks.toml"
    path.write_text(f"[subscribers.erp]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_webhooks(path)
    text = str(raised.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text
    assert KEY not in text
