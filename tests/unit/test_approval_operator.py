"""Who acts on a draft (relance/drafts.py): ``--by``, else the login name, else ``$USER``."""

from __future__ import annotations

import getpass

from relance import drafts


def test_by_names_the_operator_trimmed():
    # Given --by with spaces around, Then the name is kept without them
    assert drafts.operator("  marie ") == "marie"


def test_without_by_the_login_name_acts(monkeypatch):
    # Given no --by and a login name, Then the login name acts
    monkeypatch.setattr(getpass, "getuser", lambda: "paul")
    assert drafts.operator(None) == "paul"
    assert drafts.operator("   ") == "paul"


def test_without_a_login_name_user_then_unknown_acts(monkeypatch):
    # Given a process without a login name (no passwd entry, as in a bare container)
    def nobody() -> str:
        raise KeyError("getpwuid(): uid not found: 1234")

    monkeypatch.setattr(getpass, "getuser", nobody)
    # Then $USER acts, and without it "unknown"
    monkeypatch.setenv("USER", "deploy")
    assert drafts.operator(None) == "deploy"
    monkeypatch.delenv("USER")
    assert drafts.operator(None) == "unknown"
