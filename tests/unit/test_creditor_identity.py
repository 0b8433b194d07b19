"""The creditor's legal mentions (C. com. R123-237, L123-1, R123-238): checked at start-up,
printed on every letter, formal notice and e-mail signature, and warned about while they are
still the shipped example's or incomplete.

The example identity of config/policy.toml: SIREN 123 456 782 and VAT FR11123456782.
SIREN Luhn check, by hand: from the right, every second digit doubled (less 9 above 9):
  2 8 7 6 5 4 3 2 1  (digits of 123456782 from the right)
  2 16->7 7 12->3 5 8 3 4 1  -> 2+7+7+3+5+8+3+4+1 = 40, a multiple of 10: valid.
  123456789: 9 + (8*2=16->7) + 7 + (6*2=12->3) + 5 + 8 + 3 + 4 + 1 = 47: not valid.
VAT key, by hand: 123456782 = 97 x 1 272 750 + 32; (12 + 3 x 32) mod 97 = 108 mod 97 = 11.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from adapters.letter import letter_pdf
from config.bootstrap import make_context, sample_context
from config.creditor import warn_about_creditors
from config.errors import ConfigError
from config.policy import load_policy
from config.settings import Settings
from handlers.identity import french_vat_key, legal_mention, missing_mentions, siren_problem, vat_problem
from handlers.policy import Creditor
from handlers.render import Renderer
from relance.cli import main

DEFAULT_POLICY_TEXT = (Path(__file__).parents[2] / "config" / "policy.toml").read_text(encoding="utf-8")
EXAMPLE_MENTIONS = "Votre société SAS, SAS au capital de 10 000 €, RCS Paris 123 456 782, TVA FR11123456782"
REAL = Creditor(
    name="Dupont Outillage",
    address=("8 quai Rambaud", "69002 Lyon"),
    legal_form="SARL",
    share_capital=Decimal("7500.50"),
    rcs_city="Lyon",
    siren="356000000",  # La Poste's SIREN, a public number: 3+(5*2=10->1)+6 = 10, valid
    vat_number="FR39356000000",  # 356000000 mod 97 = 9; (12 + 27) mod 97 = 39
)


def test_a_siren_needs_9_digits_and_its_luhn_check():
    assert siren_problem("123456782") is None
    assert siren_problem("356000000") is None
    assert siren_problem("123456789") == "'123456789' is not a valid SIREN: its check digit (Luhn) is wrong"
    assert siren_problem("12345678") == "a SIREN is 9 digits (got '12345678')"
    assert siren_problem("12345678A") == "a SIREN is 9 digits (got '12345678A')"


def test_the_french_vat_key_is_12_plus_3_times_the_siren_mod_97_mod_97():
    assert french_vat_key("123456782") == "11"
    assert french_vat_key("356000000") == "39"


def test_a_french_vat_number_is_checked_against_its_key_and_the_creditor_s_siren():
    assert vat_problem("FR11123456782", "123456782") is None
    assert vat_problem("FR12123456782", None) == "'FR12123456782': the key should be 11 for SIREN 123456782"
    assert vat_problem("FR39356000000", "123456782") == (
        "'FR39356000000' is not the VAT number of SIREN 123456782 (it holds 356000000)"
    )
    assert vat_problem("FR1112345678", None) == (
        "a French VAT number is FR, a 2-digit key and the 9-digit SIREN (got 'FR1112345678')"
    )
    assert vat_problem("DE123456789", None) is None  # another country: its shape only


def test_spaces_in_the_siren_and_the_vat_number_are_accepted():
    creditor = Creditor(siren="123 456 782", vat_number="fr 11 123 456 782")
    assert (creditor.siren, creditor.vat_number) == ("123456782", "FR11123456782")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'siren = "123456782"',
            "creditor.siren: '123456789' is not a valid SIREN: its check digit (Luhn) is wrong",
        ),
        (
            'vat_number = "FR11123456782"',
            "creditor.vat_number: 'FR12123456782': the key should be 11 for SIREN 123456782",
        ),
        ('share_capital = "10000"', "creditor.share_capital: Input should be a valid decimal"),
    ],
)
def test_a_bad_identity_in_the_policy_is_one_line_naming_the_file_and_the_key(tmp_path, line, expected):
    bad = {
        'siren = "123456782"': 'siren = "123456789"',
        'vat_number = "FR11123456782"': 'vat_number = "FR12123456782"',
        'share_capital = "10000"': 'share_capital = "dix mille"',
    }[line]
    path = tmp_path / "policy.toml"
    assert line in DEFAULT_POLICY_TEXT
    path.write_text(DEFAULT_POLICY_TEXT.replace(line, bad), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    assert str(error.value) == f"{path}: {expected}"


def test_a_bad_siren_stops_the_command_with_exit_2_and_one_line(tmp_path, capsys):
    path = tmp_path / "policy.toml"
    path.write_text(
        DEFAULT_POLICY_TEXT.replace('siren = "123456782"', 'siren = "123456789"'), encoding="utf-8"
    )
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    code = main(["simulate", str(events), "--until", "2026-04-01", "--policy", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    reason = "'123456789' is not a valid SIREN: its check digit (Luhn) is wrong"
    assert err == [f"relance: error: {path}: creditor.siren: {reason}"]


def test_the_legal_mentions_line_names_form_capital_registry_and_vat():
    assert legal_mention(load_policy().creditor) == EXAMPLE_MENTIONS
    assert legal_mention(REAL) == (
        "Dupont Outillage, SARL au capital de 7 500,50 €, RCS Lyon 356 000 000, TVA FR39356000000"
    )
    assert legal_mention(REAL, "en") == (
        "Dupont Outillage, SARL with a share capital of €7,500.50, RCS Lyon 356 000 000, VAT FR39356000000"
    )


def test_the_parts_left_out_are_left_out_of_the_line():
    assert legal_mention(Creditor(name="Atelier Martin")) == "Atelier Martin"
    assert (
        legal_mention(Creditor(name="Atelier Martin", siren="356000000"))
        == "Atelier Martin, SIREN 356 000 000"
    )
    assert legal_mention(Creditor(name="Martin", legal_form="EI", rcs_city="Nantes", siren="356000000")) == (
        "Martin, EI, RCS Nantes 356 000 000"
    )


def test_a_company_s_letters_need_its_form_capital_siren_and_registry_city():
    assert missing_mentions(REAL) == []
    assert missing_mentions(Creditor()) == ["legal_form", "share_capital", "siren", "rcs_city"]
    # an individual entrepreneur has no share capital to state
    assert missing_mentions(Creditor(legal_form="EI", siren="356000000", rcs_city="Nantes")) == []


def test_every_page_of_a_letter_ends_with_the_legal_mentions():
    content = letter_pdf(
        creditor=REAL,
        recipient_lines=["ACME Industrie SAS", "12 rue des Forges", "69007 Lyon"],
        subject="Mise en demeure de payer – F-1",
        body_text="Madame, Monsieur,\n" * 150,  # long enough for three pages
        reference="notice-1@test",
        at=datetime(2026, 5, 11, 7, 0, tzinfo=UTC),
        place_date="Lyon, le 11 mai 2026",
        registered=True,
    )
    pages = PdfReader(BytesIO(content)).pages
    assert len(pages) > 1
    for page in pages:
        text = " ".join(page.extract_text().split())
        assert text.endswith(
            "Dupont Outillage, SARL au capital de 7 500,50 €, RCS Lyon 356 000 000, TVA FR39356000000"
        )


@pytest.mark.parametrize("step", ["formal_notice", "reminder_2", "due"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_e_mail_signature_carries_the_legal_mentions(step, language):
    policy = load_policy()
    context = sample_context(policy) | {"creditor": REAL}
    rendered = Renderer().render(step, language, context)
    words = "au capital de 7 500,50 €" if language == "fr" else "with a share capital of €7,500.50"
    vat = "TVA" if language == "fr" else "VAT"
    line = f"Dupont Outillage, SARL {words}, RCS Lyon 356 000 000, {vat} FR39356000000"
    assert line in rendered.body_text
    assert line in rendered.body_html


# -- the start-up warnings -------------------------------------------------------------------


@pytest.fixture
def log_lines(json_logs):
    """The JSON log lines written while the test runs (``json_logs`` of tests/conftest.py)."""
    return json_logs


def creditor_warnings(lines: list[dict]) -> list[tuple[str, list[str]]]:
    return [(x["event"], x["keys"]) for x in lines if x["event"].startswith("creditor.")]


def test_the_shipped_example_identity_is_warned_about_at_start_up(tmp_path, log_lines):
    warn_about_creditors(make_context(Settings(data_dir=tmp_path)).policies)
    assert creditor_warnings(log_lines()) == [
        ("creditor.example_identity", ["name", "address", "siren", "vat_number"])
    ]


def test_a_real_identity_without_its_mentions_is_warned_about(tmp_path, log_lines):
    block = DEFAULT_POLICY_TEXT[DEFAULT_POLICY_TEXT.index("[creditor]") :]
    own = (
        '[creditor]\nname = "Dupont Outillage"\naddress = ["8 quai Rambaud", "69002 Lyon"]\n'
        'siren = "356000000"\n'
    )
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY_TEXT.replace(block, own), encoding="utf-8")
    warn_about_creditors(make_context(Settings(data_dir=tmp_path, policy_file=path)).policies)
    assert creditor_warnings(log_lines()) == [
        ("creditor.mentions_missing", ["legal_form", "share_capital", "rcs_city"])
    ]


def test_a_complete_identity_of_one_s_own_is_not_warned_about(tmp_path, log_lines):
    block = DEFAULT_POLICY_TEXT[DEFAULT_POLICY_TEXT.index("[creditor]") :]
    own = (
        '[creditor]\nname = "Dupont Outillage"\naddress = ["8 quai Rambaud", "69002 Lyon"]\n'
        'legal_form = "SARL"\nshare_capital = "7500.50"\nrcs_city = "Lyon"\nsiren = "356000000"\n'
    )
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY_TEXT.replace(block, own), encoding="utf-8")
    warn_about_creditors(make_context(Settings(data_dir=tmp_path, policy_file=path)).policies)
    assert creditor_warnings(log_lines()) == []


def test_building_the_context_says_nothing_about_the_creditor(tmp_path, log_lines):
    """Read-only commands and previews build the context too: they stay quiet."""
    make_context(Settings(data_dir=tmp_path))
    assert creditor_warnings(log_lines()) == []
