"""summary.md and injonction_de_payer.md (first step: still built in Python)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal

from handlers.calendar import zone
from handlers.dossier.data import MessageData
from handlers.dossier.proofs import status_view as _status_view
from handlers.money import format_money, format_rate
from handlers.policy import FORMAL_NOTICE
from handlers.render import helpers

PROCEDURES = {
    "injonction_de_payer": "Injonction de payer (CPC art. 1405 et s.)",
    "procedure_simplifiee": "Procédure simplifiée de recouvrement des petites créances (CPCE art. L125-1)",
    "assignation_en_paiement": "Assignation en paiement",
    "declaration_de_creance": "Déclaration de créance au mandataire judiciaire (C. com. art. L622-24)",
    "refere_provision": "Référé-provision (CPC art. 835 / 873)",
}
STEPS = {
    "pre_due": "Rappel avant échéance",
    "due": "Rappel d'échéance",
    "notice": "Avis d'impayé",
    "reminder_1": "1re relance",
    "reminder_2": "2e relance",
    "reminder_3": "3e relance",
    FORMAL_NOTICE: "Mise en demeure",
}
CHANNELS = {"email": "e-mail", "letter": "lettre simple", "registered_letter": "lettre recommandée avec AR"}
CASE_STATUSES = {"open": "ouvert", "handed_over": "transmis", "paid": "payé", "closed": "clos"}
KINDS = {
    "escalation": "escalade après mise en demeure",
    "claim_declaration": "déclaration de créance (procédure collective)",
}
MESSAGE_STATUSES = {
    "sent": "envoyé",
    "pending": "en attente d'envoi",
    "failed": "échec",
    "cancelled": "annulé",
}
DELIVERY_STATUSES = {
    "delivered": "distribué",
    "bounced": "rejeté (adresse invalide)",
    "acknowledged": "accusé de réception signé",
    "refused": "refusé",
    "unclaimed": "non réclamé",
}
MOVEMENTS = {"payment": "paiement", "credit_note": "avoir", "plan_payment": "paiement (échéancier)"}


def _summary_md(data: dict[str, Any]) -> str:
    case, debtor, creditor = data["case"], data["debtor"], data["creditor"]
    currency, tz = case["currency"], debtor["timezone"]
    out: list[str] = [
        f"# Dossier de recouvrement n° {case['id']} — {_text(debtor['name'])}",
        "",
        f"Dossier établi le {_when(data['generated_at'], tz)}.",
        "",
        "## Dossier",
        "",
        f"- Type : {KINDS.get(case['kind'], case['kind'])}",
        f"- Statut : {CASE_STATUSES.get(case['status'], case['status'])} (`{case['status']}`)",
        f"- Ouvert le : {_when(case['opened_at'], tz)}",
        f"- Date limite : {_day(case['deadline']) if case['deadline'] else '—'}",
        f"- Procédure recommandée : {_procedure(case['recommended_procedure'])} "
        f"(`{case['recommended_procedure']}`)",
    ]
    out += [f"  - motif : {_text(r)}" for r in case["reasons"]]
    alternatives = ", ".join(f"{_procedure(a)} (`{a}`)" for a in case["alternatives"])
    out.append(f"- Alternatives : {alternatives or 'aucune'}")
    out.append("- Notes :" if case["notes"] else "- Notes : aucune")
    out += [f"  - {_text(n)}" for n in case["notes"]]
    out += [
        "",
        "## Créancier",
        "",
        f"{_text(creditor['name'])}  ",
        *(f"{_text(line)}  " for line in creditor["address"]),
    ]
    if creditor["siren"]:
        out.append(f"SIREN : {creditor['siren']}  ")
    if creditor["email"]:
        out.append(f"E-mail : {_text(creditor['email'])}")
    kind = "professionnel" if debtor["kind"] == "business" else "consommateur"
    out += [
        "",
        "## Débiteur",
        "",
        f"{_text(debtor['name'])} (`{_text(debtor['id'])}`), {kind}  ",
        *(f"{_text(line)}  " for line in debtor["address_lines"]),
        f"SIREN : {debtor['siren'] or 'non renseigné'}  ",
        f"E-mail : {_text(debtor['email']) if debtor['email'] else 'aucun'}",
    ]
    if debtor["insolvency_procedure"]:
        out.append(
            f"\nProcédure collective : {_text(debtor['insolvency_procedure'])}, jugement "
            f"d'ouverture du {_day(debtor['insolvency_judgment_date'])}."
        )
    computed_on = case["amounts_computed_on"]
    why = (
        "jugement d'ouverture : les pénalités s'arrêtent à cette date"
        if case["kind"] == "claim_declaration"
        else "date d'ouverture ou de mise à jour du dossier"
    )
    out += ["", "## Factures", "", f"Montants calculés au {_day(computed_on)} ({why}).", ""]
    for invoice in data["invoices"]:
        out += _invoice_md(invoice)
    totals = data["totals"]
    out += [
        "## Montant réclamé",
        "",
        "| | montant |",
        "|---|---:|",
        f"| Principal restant dû (TTC) | {_money(case['principal'], currency)} |",
        f"| Pénalités de retard (C. com. L441-10 II) | {_money(case['late_interest'], currency)} |",
        f"| Indemnités forfaitaires (C. com. D441-5) | {_money(case['indemnities'], currency)} |",
        f"| **Total réclamé** | **{_money(case['amount_claimed'], currency)}** |",
        "",
    ]
    if totals["amount_claimed"] != case["amount_claimed"]:
        out += [
            f"Total du calcul ci-dessus au {_day(computed_on)} : "
            f"{_money(totals['amount_claimed'], currency)} (voir les notes).",
            "",
        ]
    update = data["update"]
    if update is not None:
        out += [f"### Actualisation au {_day(update['day'])}", ""]
        if update["problem"]:
            out += [f"Actualisation impossible : {_text(update['problem'])}.", ""]
        elif update["invoices"]:
            out += [
                "Les pénalités courent jusqu'au complet paiement ; à la date de l'export :",
                "",
                "| facture | principal | pénalités | indemnité | total |",
                "|---|---:|---:|---:|---:|",
            ]
            for row in update["invoices"]:
                flag = (
                    " (taux non confirmé : " + ", ".join(row["unconfirmed_rates"]) + ")"
                    if row["unconfirmed_rates"]
                    else ""
                )
                out.append(
                    f"| {_cell(row['number'])} | {_money(row['balance'], currency)} | "
                    f"{_money(row['late_interest'], currency)}{flag} | "
                    f"{_money(row['indemnity'], currency)} | "
                    f"{_money(row['claimed'], currency)} |"
                )
            out += [f"| **Total** | | | | **{_money(update['total'], currency)}** |", ""]
        else:
            out += ["Plus aucune facture ouverte.", ""]
    out += ["## Messages et lettres envoyés", ""]
    if data["messages"]:
        out += ["| date | étape | canal | objet | statut | fichier |", "|---|---|---|---|---|---|"]
        for m in data["messages"]:
            status = MESSAGE_STATUSES.get(m["status"], m["status"])
            delivered = [DELIVERY_STATUSES.get(s, s) for s in m["delivery_statuses"]]
            if delivered:
                status += " ; " + ", ".join(delivered)
            out.append(
                f"| {_day(m['day'])} | {_cell(STEPS.get(m['step'], m['step']))} | "
                f"{CHANNELS.get(m['channel'], _cell(m['channel']))} | {_cell(m['subject'])} | "
                f"{_cell(status)} | `{m['file']}` |"
            )
    else:
        out.append("Aucun message n'a été envoyé au sujet de ces factures.")
    check = data["verification"]
    result = (
        f"chaîne intègre, {check['records']} enregistrements recalculés"
        if check["ok"]
        else f"chaîne ROMPUE à l'enregistrement {check['broken_seq']} : {check['reason']}"
    )
    out += [
        "",
        "## Preuves",
        "",
        f"- Vérification de la chaîne de preuves : {result} (`verification.txt`).",
        f"- Tête de chaîne : n° {check['head_seq']}, empreinte `{check['head_hash']}`.",
        "- Enregistrements du dossier : `evidence.jsonl` ; statuts de distribution : "
        "`deliveries.json` ; empreintes SHA-256 de chaque fichier : `manifest.json`.",
        "- Mode d'emploi : docs/dossier.md.",
        "",
    ]
    return "\n".join(out)


def _invoice_md(invoice: dict[str, Any]) -> list[str]:
    currency = invoice["currency"]
    out = [
        f"### Facture {_text(invoice['number'])}",
        "",
        f"- Émise le {_day(invoice['issue_date'])}, échue le {_day(invoice['due_date'])}"
        + (f", livrée le {_day(invoice['delivered_on'])}" if invoice["delivered_on"] else ""),
        f"- Montant TTC : {_money(invoice['amount_due'], currency)}",
    ]
    if invoice["late_penalty_rate"]:
        out.append(
            f"- Taux de pénalité contractuel : {format_rate(Decimal(invoice['late_penalty_rate']), 'fr')}"
        )
    if invoice["ever_disputed"]:
        out.append(
            "- Facture contestée"
            + (" (contestation en cours)" if invoice["disputed"] else " (contestation tranchée)")
        )
    if invoice["payments"]:
        out.append("- Paiements et avoirs reçus :")
        for p in invoice["payments"]:
            reference = f" (réf. {_text(p['reference'])})" if p["reference"] else ""
            later = " — reçu après la date de calcul" if p["after_computation"] else ""
            out.append(
                f"  - {_day(p['on_day'])} : {MOVEMENTS.get(p['kind'], p['kind'])} de "
                f"{_money(p['amount'], currency)}{reference}{later}"
            )
    else:
        out.append("- Paiements et avoirs reçus : aucun")
    out.append(
        f"- Statut actuel : `{invoice['status']}`, solde actuel {_money(invoice['balance_today'], currency)}"
    )
    if invoice["problem"]:
        return [*out, f"- Calcul impossible : {_text(invoice['problem'])}", ""]
    out.append(f"- Principal restant dû à la date de calcul : {_money(invoice['balance'], currency)}")
    interest = invoice["interest"]
    if interest is None:
        out.append(
            "- Pénalités de retard : aucune (débiteur consommateur, facture non échue "
            "ou devise hors pénalités)"
        )
    elif not interest["segments"]:
        out.append("- Pénalités de retard : aucune (rien n'était dû en retard)")
    else:
        out += [
            "",
            "Pénalités de retard (C. com. L441-10 II) : intérêts simples sur le montant TTC "
            "impayé, jours exacts / 365, un taux par semestre civil ; chaque segment est "
            "calculé sans arrondi, le total est arrondi au centime une seule fois.",
            "",
            "| semestre | du | au | jours | base | taux | montant |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for s in interest["segments"]:
            rate = format_rate(Decimal(s["rate"]), "fr") + (
                " (non confirmé)" if s["rate_unconfirmed"] else ""
            )
            out.append(
                f"| {s['half_year']} | {_day(s['first_day'])} | {_day(s['last_day'])} | "
                f"{s['days']} | {_money(s['balance'], currency)} | {rate} | "
                f"{_precise(s['amount'], currency)} |"
            )
        out += [f"| **Total arrondi** | | | | | | **{_money(interest['accrued'], currency)}** |", ""]
        if Decimal(interest["paid_by_payments"]) > 0:
            out.append(
                f"- Pénalités déjà réglées par imputation des paiements (C. civ. 1343-1) : "
                f"{_money(interest['paid_by_payments'], currency)}"
            )
        out.append(f"- Pénalités dues : {_money(invoice['late_interest'], currency)}")
    out += [
        f"- Indemnité forfaitaire pour frais de recouvrement (C. com. D441-5) : "
        f"{_money(invoice['indemnity'], currency)}",
        f"- **Total pour cette facture : {_money(invoice['claimed'], currency)}**",
        "",
    ]
    return out


def _injonction_md(data: dict[str, Any], messages: list[tuple[MessageData, str]]) -> str:
    case, debtor, creditor = data["case"], data["debtor"], data["creditor"]
    currency, tz = case["currency"], debtor["timezone"]
    computed_on = case["amounts_computed_on"]
    count = sum(1 for i in data["invoices"] if i["indemnity"] and Decimal(i["indemnity"]) > 0)
    out = [
        f"# Requête en injonction de payer — dossier n° {case['id']}",
        "",
        "Éléments prêts à reporter dans la requête (CPC art. 1405 et s.), établis le "
        f"{_when(data['generated_at'], tz)}. La requête est déposée auprès de la juridiction du "
        "lieu où demeure le débiteur (CPC art. 1406).",
        "",
        "## Créancier (requérant)",
        "",
        f"{_text(creditor['name'])}  ",
        *(f"{_text(line)}  " for line in creditor["address"]),
    ]
    if creditor["siren"]:
        out.append(f"SIREN : {creditor['siren']}  ")
    out += [
        "",
        "## Débiteur",
        "",
        f"{_text(debtor['name'])}  ",
        *(f"{_text(line)}  " for line in debtor["address_lines"]),
        f"SIREN : {debtor['siren'] or 'non renseigné'}",
        "",
        "## Montant demandé",
        "",
        "| | montant |",
        "|---|---:|",
        f"| Principal : factures TTC restant dues | {_money(case['principal'], currency)} |",
        f"| Pénalités de retard au {_day(computed_on)} (C. com. L441-10 II) | "
        f"{_money(case['late_interest'], currency)} |",
        f"| Indemnité forfaitaire pour frais de recouvrement, 40 € par facture "
        f"({count} facture{'s' if count > 1 else ''}) (C. com. L441-10 II et D441-5) | "
        f"{_money(case['indemnities'], currency)} |",
        f"| **Total** | **{_money(case['amount_claimed'], currency)}** |",
        "",
        "Outre les pénalités de retard qui continuent de courir du lendemain de cette date "
        "jusqu'au complet paiement (C. com. L441-10 II). Le détail du calcul, par semestre, "
        "est dans `summary.md`.",
        "",
        "## Fondement",
        "",
        "- Créance contractuelle d'un montant déterminé (CPC art. 1405) : les factures "
        "ci-dessous, émises en exécution du contrat ou des conditions générales de vente.",
        "- Pénalités de retard : C. com. art. L441-10 II, exigibles sans rappel, au taux "
        "indiqué pour chaque semestre dans `summary.md`.",
        "- Indemnité forfaitaire pour frais de recouvrement : C. com. art. L441-10 II et "
        "D441-5 (40 € par facture payée en retard).",
        "- Mise en demeure préalable restée sans effet : C. civ. art. 1344.",
        "",
        "## Factures",
        "",
        "| n° | date | échéance | montant TTC | restant dû |",
        "|---|---|---|---:|---:|",
    ]
    for i in data["invoices"]:
        out.append(
            f"| {_cell(i['number'])} | {_day(i['issue_date'])} | {_day(i['due_date'])} | "
            f"{_money(i['amount_due'], currency)} | "
            f"{_money(i['balance'] or i['balance_today'], currency)} |"
        )
    out += ["", "## Pièces", ""]
    pieces = [
        f"Facture {_text(i['number'])} du {_day(i['issue_date'])} : copie de la facture "
        "(à joindre, elle n'est pas contenue dans ce dossier)."
        for i in data["invoices"]
    ]
    pieces.append(
        "Contrat ou conditions générales de vente acceptées par le débiteur, avec la "
        "clause de pénalités de retard et l'indemnité de 40 € (à joindre)."
    )
    notices = [(m, file) for m, file in messages if m.step == FORMAL_NOTICE]
    letters = [(m, f) for m, f in notices if m.channel == "registered_letter"] or [
        (m, f) for m, f in notices if m.channel == "letter"
    ]
    for m, file in letters:
        pieces.append(
            f"Mise en demeure du {_day(m.local_day.isoformat())} "
            f"({CHANNELS.get(m.channel, m.channel)}) : `{file}`."
        )
        receipts = [
            _status_view(r) for r in m.statuses if json.loads(r.payload).get("status") == "acknowledged"
        ]
        if receipts:
            for receipt in receipts:
                signed = receipt["status_at"] or receipt["at"]
                pieces.append(
                    f"Accusé de réception de la mise en demeure, signé le "
                    f"{_when(signed, tz)} : statut `acknowledged` dans `deliveries.json` "
                    f"(enregistrement n° {receipt['seq']} de la chaîne de preuves, "
                    f"`evidence.jsonl`) ; joindre l'avis de réception original."
                )
        else:
            pieces.append(
                "Accusé de réception de la mise en demeure : non enregistré à ce jour "
                "(joindre l'avis de réception du prestataire)."
            )
    for m, file in notices:
        if (m, file) not in letters:
            pieces.append(
                f"Copie de la mise en demeure ({CHANNELS.get(m.channel, m.channel)}"
                f") du {_day(m.local_day.isoformat())} : `{file}`."
            )
    if not notices:
        pieces.append("Mise en demeure : aucune n'a été envoyée par relance (à joindre).")
    earlier = [file for m, file in messages if m.step != FORMAL_NOTICE]
    if earlier:
        pieces.append("Relances préalables : " + ", ".join(f"`{file}`" for file in earlier) + ".")
    pieces.append(
        "Décompte des sommes réclamées (principal, pénalités par semestre, indemnités) : `summary.md`."
    )
    pieces.append(
        "Preuve des envois et de leur intégrité : `evidence.jsonl`, "
        "`verification.txt`, `deliveries.json`, `manifest.json`."
    )
    out += [f"{n}. {p}" for n, p in enumerate(pieces, start=1)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- formatting


_DAY = helpers("fr")["day"]


def _day(text: str) -> str:
    return _DAY(date.fromisoformat(text))


def _when(text: str, tz: str) -> str:
    """An instant as a French date and time in ``tz`` (the debtor's time zone)."""
    instant = datetime.fromisoformat(text).astimezone(zone(tz))
    return f"{_DAY(instant.date())} à {instant:%H:%M} ({tz})"


def _money(amount: str | Decimal, currency: str) -> str:
    return format_money(Decimal(amount), currency, "fr")


def _precise(amount: str, currency: str) -> str:
    """An unrounded segment amount, to 5 decimals, in French."""
    value = Decimal(amount).quantize(Decimal("0.00001"))
    text = format_decimal(value, format="#,##0.00000", locale="fr_FR")
    return f"{text} {currency if currency != 'EUR' else '€'}".replace("\u202f", " ").replace("\xa0", " ")


def _procedure(name: str) -> str:
    return PROCEDURES.get(name, _text(name))


def _text(value: str) -> str:
    """Stored text on one line (it comes from events: no line breaks into the layout)."""
    return " ".join(str(value).split())


def _cell(value: str) -> str:
    return _text(value).replace("|", "\\|")
