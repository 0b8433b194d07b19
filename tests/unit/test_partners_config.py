"""The partners file: validated at start-up, errors name the file and the key, never a secret;
webhook answers sorted into transient and permanent failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.handover import classify, signature
from config.errors import ConfigError
from config.partners import load_partners
from handlers.ports import PermanentFailure, TransientFailure

KEY = "a-long-enough-hmac-key-0123456789"

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "partners.toml"

GOOD = """
max_attempts = 5

[partners.agence_nord]
kind = "collection_agency"
channel = "webhook"
url = "https://api.agence-nord.example/v1/cases"
secret_env = "TEST_AGENCE_KEY"

[partners.etude_martin]
kind = "commissaire_de_justice"
channel = "email"
email = "dossiers@etude-martin.example"

[procedures]
procedure_simplifiee = "etude_martin"
injonction_de_payer = "agence_nord"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "partners.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_maps_procedures_to_partners_with_their_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_AGENCE_KEY", KEY)
    partners = load_partners(write(tmp_path, GOOD))
    assert partners is not None and partners.max_attempts == 5
    agence = partners.for_procedure("injonction_de_payer")
    assert agence is not None and agence.channel == "webhook"
    assert agence.secret is not None and agence.secret.get_secret_value() == KEY
    assert KEY not in repr(agence) and KEY not in repr(partners)
    assert partners.for_procedure("procedure_simplifiee").email == "dossiers@etude-martin.example"
    assert partners.for_procedure("assignation_en_paiement") is None  # stays with a person


def test_no_file_means_no_hand_over():
    assert load_partners(None) is None


def test_the_example_file_is_valid(monkeypatch):
    monkeypatch.setenv("AGENCE_NORD_HMAC_KEY", KEY)
    partners = load_partners(EXAMPLE)
    assert partners is not None and set(partners.procedures) == {
        "procedure_simplifiee",
        "injonction_de_payer",
        "assignation_en_paiement",
        "declaration_de_creance",
    }


def test_a_key_read_from_a_secret_file_next_to_the_partners_file(tmp_path):
    (tmp_path / "agence.key").write_text(f"  {KEY}\n", encoding="utf-8")
    text = GOOD.replace('secret_env = "TEST_AGENCE_KEY"', 'secret_file = "agence.key"')
    partners = load_partners(write(tmp_path, text))
    assert partners.get("agence_nord").secret.get_secret_value() == KEY


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('procedure_simplifiee = "etude_martin"', 'procedure_simplifiee = "etude"'),
            "procedures.procedure_simplifiee: no partner named 'etude'",
        ),
        (("procedure_simplifiee =", "refere =  "), "procedures.refere: unknown procedure"),
        (('kind = "collection_agency"', 'kind = "avocat"'), "partners.agence_nord.kind: Input should be"),
        (('channel = "email"', 'channel = "fax"'), "partners.etude_martin.channel: Input should be"),
        (
            ('email = "dossiers@etude-martin.example"', 'email = "nobody"'),
            "partners.etude_martin.email: an e-mail address is required",
        ),
        (
            ('url = "https://api.agence-nord.example/v1/cases"', 'url = "ftp://x.example/"'),
            "partners.agence_nord.url: must be an https:// (or http://) URL",
        ),
        (
            ('url = "https://api.agence-nord.example/v1/cases"', 'url = "https://user:pw@x.example/"'),
            "partners.agence_nord.url: must not contain",
        ),
        (
            ('secret_env = "TEST_AGENCE_KEY"', 'secret_env = "UNSET_VARIABLE_FOR_TEST"'),
            "partners.agence_nord.secret_env: the environment variable UNSET_VARIABLE_FOR_TEST is not",
        ),
        (
            ('secret_env = "TEST_AGENCE_KEY"', ""),
            "partners.agence_nord: give exactly one of secret_env and secret_file",
        ),
        (
            ('secret_env = "TEST_AGENCE_KEY"', 'secret_file = "missing.key"'),
            "partners.agence_nord.secret_file: cannot read",
        ),
        (("max_attempts = 5", "max_attempts = 0"), "max_attempts: Input should be greater than"),
        (("max_attempts = 5", "retries = 5"), "retries: Extra inputs are not permitted"),
        (("[partners.etude_martin]", "[partners.Etude]"), "partners.Etude: a partner name is"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, monkeypatch, change, expected):
    monkeypatch.setenv("TEST_AGENCE_KEY", KEY)
    monkeypatch.delenv("UNSET_VARIABLE_FOR_TEST", raising=False)
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_partners(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)
    assert KEY not in str(error.value)


def test_a_short_key_is_refused_without_showing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_AGENCE_KEY", "short-key")
    with pytest.raises(ConfigError, match="at least 16 characters") as error:
        load_partners(write(tmp_path, GOOD))
    assert "short-key" not in str(error.value)


def test_a_wrong_partners_file_stops_the_start_up(tmp_path, capsys):
    from relance.cli import main

    path = write(tmp_path, GOOD.replace('kind = "collection_agency"', "kind = 3"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELANCE_PARTNERS_FILE", str(path))
        assert main(["status", "--data-dir", str(tmp_path)]) == 2
    assert f"relance: error: {path}: partners.agence_nord.kind" in capsys.readouterr().err


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_timeouts_throttling_and_server_errors_are_transient(code):
    with pytest.raises(TransientFailure, match=f"HTTP {code}"):
        classify(code, "")


@pytest.mark.parametrize("code", [301, 400, 401, 403, 404, 409, 410, 413, 422])
def test_other_refusals_are_permanent(code):
    with pytest.raises(PermanentFailure, match=f"HTTP {code}"):
        classify(code, "")


def test_2xx_answers_are_success_and_the_signature_is_hmac_sha256_of_the_body():
    for code in (200, 201, 202, 204):
        classify(code, "OK")
    # the published HMAC-SHA256 test vector
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
