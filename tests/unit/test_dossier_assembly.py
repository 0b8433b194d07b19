"""The dossier built from a snapshot made by hand, without a database (handlers.dossier).

The case: one invoice F-1 of 1 000.00 EUR, issued 5 Dec 2025, due 5 Jan 2026, unpaid, of a
business debtor in Paris. It was escalated on 20 May 2026 (10:00 in Paris), the day its
penalties are computed on. Rates: ECB 2.15 % in 2026-H1 and 2.00 % in 2026-H2 (the latter
not confirmed), plus the policy's 10 points: 12.15 % and 12.00 %.

Penalties on 20 May 2026, one segment (2026-H1), 6 January to 20 May inclusive:
26 (Jan) + 28 (Feb) + 31 (Mar) + 30 (Apr) + 20 (May) = 135 days;
1 000 x 0.1215 x 135 / 365 = 16 402.5 / 365 = 44.938356... -> 44.94 EUR.
Indemnity (D441-5): 40.00. Claimed: 1 000.00 + 44.94 + 40.00 = 1 084.94 EUR.

Brought up to the export day, 1 September 2026:
2026-H1, 6 January to 30 June: 26 + 28 + 31 + 30 + 31 + 30 = 176 days,
1 000 x 0.1215 x 176 / 365 = 21 384 / 365 = 58.586301...;
2026-H2, 1 July to 1 September: 31 + 31 + 1 = 63 days, 1 000 x 0.12 x 63 / 365 = 7 560 / 365
= 20.712328...; together 79.298630... -> 79.30, so 1 000.00 + 79.30 + 40.00 = 1 119.30 EUR.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from config.policy import load_policy
from handlers.context import Context
from handlers.dossier import (
    CaseData,
    DebtorData,
    DossierData,
    InvoiceData,
    MessageData,
    RecordData,
    archive,
    dossier_files,
)
from handlers.dossier.sample import check_templates
from handlers.evidence import ChainCheck
from handlers.policy import HalfYearRate, PolicySet, RateTable
from handlers.render import Renderer, TemplateProblem

ESCALATED = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)  # 10:00 in Paris
EXPORTED = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
RATES = RateTable(
    rates={
        "2026-H1": HalfYearRate(ecb_rate=Decimal("0.0215"), source="ECB rate on 2026-01-01"),
        "2026-H2": HalfYearRate(ecb_rate=Decimal("0.0200"), source="assumed", unconfirmed=True),
    }
)


def _context(renderer: Renderer | None = None) -> Context:
    return Context(
        policies=PolicySet(load_policy()),
        rates=RATES,
        renderer=renderer or Renderer(),
        sender="Créancier <compta@example.fr>",
        message_domain="example.fr",
    )


def _record(seq: int, kind: str, payload: dict, **links) -> RecordData:
    return RecordData(seq, ESCALATED, kind, json.dumps(payload), f"{seq - 1:064x}", f"{seq:064x}", **links)


def _message(message_id: str, day: date, step: str = "reminder_1") -> MessageData:
    content = b"bytes " + message_id.encode()
    sent_day = datetime.combine(day, datetime.min.time(), UTC)
    return MessageData(
        message_id, "email", step, day, "compta@client.example", "Relance", "sent", content, sent_day
    )


def _snapshot(**case_changes) -> DossierData:
    invoice = InvoiceData(1, "F-1", date(2025, 12, 5), date(2026, 1, 5), "EUR", Decimal("1000.00"))
    case = CaseData(
        id=7,
        debtor_id="CLI-1",
        kind="escalation",
        status="open",
        recommended_procedure="injonction_de_payer",
        currency="EUR",
        principal=Decimal("1000.00"),
        late_interest=Decimal("44.94"),
        indemnities=Decimal("40.00"),
        amount_claimed=Decimal("1084.94"),
        opened_at=ESCALATED,
        updated_at=ESCALATED,
        deadline=date(2026, 6, 20),
    )
    debtor = DebtorData(
        "CLI-1", "Client SARL", "business", {"line1": "2 rue Neuve", "postal_code": "69001", "city": "Lyon"}
    )
    records = (_record(1, "case.escalated", {"case_id": 7}, case_id=7, debtor_id="CLI-1"),)
    return DossierData(
        dataclasses.replace(case, **case_changes),
        debtor,
        (invoice,),
        (_message("<r1@example.fr>", date(2026, 2, 1)),),
        records,
        ChainCheck(True, 1),
        (1, f"{1:064x}"),
    )


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dossier_files(_snapshot(), EXPORTED, _context())


def test_the_penalties_are_computed_per_half_year_on_the_escalation_day(files):
    invoice = json.loads(files["summary.json"])["invoices"][0]
    [segment] = invoice["interest"]["segments"]
    assert (segment["half_year"], segment["first_day"], segment["last_day"], segment["days"]) == (
        "2026-H1",
        "2026-01-06",
        "2026-05-20",
        135,
    )
    assert segment["rate"] == "0.1215"
    assert Decimal(segment["amount"]).quantize(Decimal("0.000001")) == Decimal("44.938356")
    assert (invoice["late_interest"], invoice["indemnity"]) == ("44.94", "40.00")
    assert invoice["claimed"] == "1084.94"


def test_the_summary_states_the_total_claimed_and_adds_no_note_when_the_case_agrees(files):
    summary = json.loads(files["summary.json"])
    assert summary["totals"]["amount_claimed"] == "1084.94"
    assert summary["case"]["amounts_computed_on"] == "2026-05-20"
    assert summary["case"]["notes"] == []
    text = files["summary.md"].decode("utf-8")
    assert "| 2026-H1 | 6 janvier 2026 | 20 mai 2026 | 135 | 1 000,00 € | 12,15 % | 44,93836 € |" in text
    assert "| **Total réclamé** | **1 084,94 €** |" in text
    assert "Total du calcul ci-dessus" not in text


def test_the_penalties_are_brought_up_to_the_export_day_with_the_unconfirmed_rate_named(files):
    update = json.loads(files["summary.json"])["update"]
    assert update["day"] == "2026-09-01"
    [row] = update["invoices"]
    assert (row["late_interest"], row["claimed"]) == ("79.30", "1119.30")
    assert row["unconfirmed_rates"] == ["2026-H2"]
    text = files["summary.md"].decode("utf-8")
    assert "| F-1 | 1 000,00 € | 79,30 € (taux non confirmé : 2026-H2) | 40,00 € | 1 119,30 € |" in text


def test_recorded_amounts_that_differ_from_the_computation_are_noted():
    files = dossier_files(_snapshot(amount_claimed=Decimal("1100.00")), EXPORTED, _context())
    [note] = json.loads(files["summary.json"])["case"]["notes"]
    assert note.startswith("the case's recorded amounts differ from the computation shown on 2026-05-20")
    text = files["summary.md"].decode("utf-8")
    assert "Total du calcul ci-dessus au 20 mai 2026 : 1 084,94 € (voir les notes)." in text


def test_the_injonction_request_counts_one_indemnity_and_lists_the_reminder(files):
    request = files["injonction_de_payer.md"].decode("utf-8")
    assert "40 € par facture (1 facture) (C. com. L441-10 II et D441-5) | 40,00 € |" in request
    assert "| **Total** | **1 084,94 €** |" in request
    assert "Mise en demeure : aucune n'a été envoyée par relance (à joindre)." in request
    assert "Relances préalables : `messages/2026-02-01_reminder_1_email_r1_example.fr.eml`." in request


def test_another_procedure_has_no_injonction_request():
    files = dossier_files(_snapshot(recommended_procedure="assignation_en_paiement"), EXPORTED, _context())
    assert "injonction_de_payer.md" not in files


def test_the_manifest_comes_last_and_names_every_other_file_with_its_sha256(files):
    assert list(files)[-1] == "manifest.json"
    manifest = json.loads(files["manifest.json"])
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    others = {name: content for name, content in files.items() if name != "manifest.json"}
    assert listed == {name: hashlib.sha256(content).hexdigest() for name, content in others.items()}
    assert (manifest["case_id"], manifest["generated_at"]) == (7, "2026-09-01T10:00:00+00:00")


def test_message_ids_that_differ_only_in_unsafe_characters_get_distinct_file_names():
    data = dataclasses.replace(
        _snapshot(),
        messages=(_message("<a/b@x>", date(2026, 2, 1)), _message("<a:b@x>", date(2026, 2, 1))),
    )
    names = [m["file"] for m in json.loads(dossier_files(data, EXPORTED, _context())["deliveries.json"])]
    digest = hashlib.sha256(b"<a:b@x>").hexdigest()[:12]
    assert names == [
        "messages/2026-02-01_reminder_1_email_a_b_x.eml",
        f"messages/2026-02-01_reminder_1_email_a_b_x-{digest}.eml",
    ]


def test_a_broken_chain_is_reported_in_verification_txt():
    data = dataclasses.replace(_snapshot(), check=ChainCheck(False, 3, 4, "content does not match its hash"))
    text = dossier_files(data, EXPORTED, _context())["verification.txt"].decode()
    first = text.splitlines()[0]
    assert first == "broken at record 4: content does not match its hash (3 records verified before it)"


def test_the_archive_is_the_same_bytes_for_the_same_instant(files):
    first, second = archive(files, EXPORTED), archive(dict(files), EXPORTED)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as packed:
        assert packed.namelist() == sorted(files)
        assert packed.read("summary.md") == files["summary.md"]


def _override(tmp_path: Path, name: str, text: str) -> Path:
    target = tmp_path / "fr" / "dossier" / name
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_operator_template_replaces_the_summary(tmp_path):
    text = "Dossier {{ d.case.id }} : {{ eur(d.case.amount_claimed, 'EUR') }}\n"
    folder = _override(tmp_path, "summary.md.j2", text)
    files = dossier_files(_snapshot(), EXPORTED, _context(Renderer(folder)))
    assert files["summary.md"].decode("utf-8") == "Dossier 7 : 1 084,94 €\n"


def test_a_broken_operator_template_is_caught_by_the_start_up_check(tmp_path):
    folder = _override(tmp_path, "injonction_de_payer.md.j2", "{{ d.case.no_such_key }}\n")
    with pytest.raises(TemplateProblem, match=r"fr/dossier/injonction_de_payer\.md\.j2"):
        check_templates(Renderer(folder), PolicySet(load_policy()), RATES)


def test_the_summary_shows_each_procedure_as_an_option_with_its_basis_and_conditions():
    # CLI-1 (Lyon 69001) did not say whether it is a merchant: the merchants' procedure is an
    # alternative to check, and both courts are named conditionally
    data = _snapshot(alternatives=("recouvrement_creances_commerciales", "refere_provision"))
    files = dossier_files(data, EXPORTED, _context())
    case = json.loads(files["summary.json"])["case"]
    assert [(p["role"], p["code"], p["basis"]) for p in case["procedures"]] == [
        ("recommended", "injonction_de_payer", "CPC art. 1405 et s."),
        ("alternative", "recouvrement_creances_commerciales", "CPCE art. L126-1 et s."),
        ("alternative", "refere_provision", "CPC art. 835 al. 2, 873 al. 2"),
    ]
    assert case["procedures"][1]["to_check"] == ["le débiteur est-il commerçant ? (non renseigné)"]
    assert case["competent_court"]["kind"] == "commerce_ou_judiciaire"
    text = files["summary.md"].decode("utf-8")
    assert "elles ne constituent pas un conseil juridique" in text
    assert "### Recommandée : Injonction de payer (`injonction_de_payer`)" in text
    assert (
        "### Alternative : Procédure de recouvrement des créances commerciales incontestées "
        "(`recouvrement_creances_commerciales`)\n\n- Base légale : CPCE art. L126-1 et s.\n"
        "- Conditions : débiteur professionnel ; débiteur hors procédure collective, ou créance née "
        "après le jugement d'ouverture ; créance non contestée ; débiteur commerçant ; créancier "
        "commerçant\n"
        "- À vérifier : le débiteur est-il commerçant ? (non renseigné)\n"
    ) in text
    assert "- Base légale : CPC art. 835 al. 2, 873 al. 2" in text
    assert (
        "Pour une procédure devant un juge : **tribunal des activités économiques de Lyon si le "
        "débiteur est commerçant ou artisan, tribunal judiciaire sinon**." in text
    )
    assert "- Lieu pour lequel le chercher : 69001 Lyon" in text


def test_a_merchant_debtor_in_lyon_has_the_tae_de_lyon_named_in_the_summary():
    data = _snapshot()
    data = dataclasses.replace(data, debtor=dataclasses.replace(data.debtor, merchant=True))
    files = dossier_files(data, EXPORTED, _context())
    court = json.loads(files["summary.json"])["case"]["competent_court"]
    assert (court["name"], court["named"]) == ("tribunal des activités économiques de Lyon", True)
    text = files["summary.md"].decode("utf-8")
    assert "Pour une procédure devant un juge : **tribunal des activités économiques de Lyon**." in text
    assert "relance ne connaît pas le ressort" not in text  # the court itself is named


def test_the_injonction_request_names_the_court_and_the_place_to_look_it_up_for(files):
    request = files["injonction_de_payer.md"].decode("utf-8")
    assert (
        "\n\nJuridiction : tribunal des activités économiques de Lyon si le débiteur est commerçant ou "
        "artisan, tribunal judiciaire sinon, pour 69001 Lyon (à rechercher dans l'annuaire des "
        "juridictions).\n" in request
    )


def test_the_lifecycle_statuses_of_an_invoice_are_listed_in_the_summary():
    """Given the evidence records of a 203 and a 205 of F-1, then summary.json lists both
    under the invoice, oldest first, and summary.md names their codes, labels and records."""
    received = {"status_code": "203", "label": "Mise à disposition", "at": "2025-12-05T10:00:00+01:00"}
    approved = {"status_code": "205", "label": "Approuvée", "at": "2025-12-08T15:00:00+01:00"}
    statuses = tuple(
        _record(
            seq, "invoice.status_changed", payload | {"outcome": "evidence only"}, invoice_numbers=("F-1",)
        )
        for seq, payload in ((2, received), (3, approved))
    )
    snapshot = _snapshot()
    snapshot = dataclasses.replace(snapshot, records=snapshot.records + statuses)
    built = dossier_files(snapshot, EXPORTED, _context())
    listed = json.loads(built["summary.json"])["invoices"][0]["lifecycle_statuses"]
    assert [(s["status_code"], s["label"], s["seq"]) for s in listed] == [
        ("203", "Mise à disposition", 2),
        ("205", "Approuvée", 3),
    ]
    text = built["summary.md"].decode("utf-8")
    assert "5 décembre 2025 : 203 Mise à disposition" in text
    assert "8 décembre 2025 : 205 Approuvée — enregistrement n° 3 de la chaîne de preuve" in text
