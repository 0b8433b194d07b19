"""The SMTP deadline never outlasts half the lease: a transmission that outlived the
message's lease let the scheduler emit the message again while its first copy was still on
the wire (docs/reliability.md, "time held")."""

from __future__ import annotations

from config.bootstrap import make_transports
from config.settings import Settings


def _settings(tmp_path, **values) -> Settings:
    return Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_tls="none", **values)


def test_the_deadline_is_cut_to_half_a_short_lease(tmp_path):
    # 10 s lease: half is 5 s, below the 120 s default
    settings = _settings(tmp_path, claim_lease_seconds=10)
    assert settings.smtp_deadline == 5.0
    assert make_transports(settings)["email"].deadline == 5.0


def test_a_deadline_below_half_the_lease_is_kept(tmp_path):
    # the defaults: 300 s lease, 120 s deadline (120 < 150)
    settings = _settings(tmp_path)
    assert settings.smtp_deadline == 120.0
    assert make_transports(settings)["email"].deadline == 120.0
    assert _settings(tmp_path, claim_lease_seconds=60, smtp_deadline_seconds=20).smtp_deadline == 20.0
