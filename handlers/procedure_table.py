"""The procedures a case may be recommended, as data: one row per procedure.

Each row says what the procedure is (code, French and English names), its legal basis,
when it applies (the debtor's kind, whether the debtor and the creditor are merchants, an
amount limit and its currency, a contested claim or not, a debtor in insolvency
proceedings or not), who acts, before which court, and what the creditor supplies.
``handlers.procedures`` selects among the rows; docs/policy.md prints the same table.

The table is a frozen value of the core rather than a file of the operator: it is the law
as relance reads it, its conditions are facts the core computes (a contested claim, an
opening judgment), and changing it goes with a release, its tests and docs/policy.md. The
one figure an operator may set, the small-claims limit, stays in the policy file
(``escalation.small_claims_limit``) and replaces the row's figure (``with_limit``). The
table is checked when the module is imported (``check_table``).

The rows are in the order of recommendation: the first row whose conditions hold is
recommended; every other row whose conditions hold, or may hold, is an alternative.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

BUSINESS, CONSUMER, PUBLIC = "business", "consumer", "public"
KINDS = frozenset({BUSINESS, CONSUMER, PUBLIC})
PRIVATE = frozenset({BUSINESS, CONSUMER})

DECLARATION = "declaration_de_creance"
ASSIGNATION = "assignation_en_paiement"
RECOURS_AU_FOND = "recours_au_fond_administratif"
COMPTABLE_PUBLIC = "demande_au_comptable_public"
REFERE_ADMINISTRATIF = "refere_provision_administratif"
CREANCES_COMMERCIALES = "recouvrement_creances_commerciales"
PROCEDURE_SIMPLIFIEE = "procedure_simplifiee"
INJONCTION = "injonction_de_payer"
REFERE = "refere_provision"

_CODE = re.compile(r"^[a-z][a-z_]{0,39}$")  # cases.recommended_procedure is 40 characters
_PIECES = "les factures, le contrat ou les conditions générales de vente"
_NOTICE = "la mise en demeure et son avis de réception"


@dataclass(frozen=True)
class Procedure:
    """One procedure: what it is, its basis, when it applies, who acts, where, with what.

    A condition left at None holds whatever the fact; ``insolvent`` is always a condition
    (every individual action stops under an opening judgment, C. com. L622-21).
    """

    code: str
    name_fr: str
    name_en: str
    basis: str
    debtor_kinds: frozenset[str]
    acts: str  # who acts, in French
    court: str  # before which court, or none, in French
    supply: tuple[str, ...]  # what the creditor supplies, in French
    insolvent: bool = False
    contested: bool | None = None
    debtor_merchant: bool | None = None
    creditor_merchant: bool | None = None
    amount_limit: Decimal | None = None  # the total claimed, at most
    limit_currency: str | None = None  # the limit is an amount in this currency
    note: str = ""


def with_limit(rows: Iterable[Procedure], code: str, limit: Decimal) -> tuple[Procedure, ...]:
    """The rows with ``limit`` as the amount limit of the row ``code`` (the policy's figure)."""
    return tuple(replace(r, amount_limit=limit) if r.code == code else r for r in rows)


def check_table(rows: tuple[Procedure, ...]) -> tuple[Procedure, ...]:
    """The rows, once checked: raises ValueError naming the row and the field at fault."""
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"procedure table, row {index + 1} ({row.code!r})"
        if not _CODE.match(row.code):
            raise ValueError(f"{where}: code: lower-case letters and '_', at most 40 characters")
        if row.code in seen:
            raise ValueError(f"{where}: code: appears twice")
        seen.add(row.code)
        for name in ("name_fr", "name_en", "basis", "acts", "court"):
            if not getattr(row, name).strip():
                raise ValueError(f"{where}: {name}: must not be empty")
        if not row.debtor_kinds or not row.debtor_kinds <= KINDS:
            raise ValueError(f"{where}: debtor_kinds: one or more of {', '.join(sorted(KINDS))}")
        if (row.amount_limit is None) != (row.limit_currency is None):
            raise ValueError(f"{where}: amount_limit and limit_currency go together")
        if row.amount_limit is not None and row.amount_limit <= 0:
            raise ValueError(f"{where}: amount_limit: must be above zero")
    if not rows:
        raise ValueError("procedure table: no row")
    return rows


TABLE: tuple[Procedure, ...] = check_table(
    (
        Procedure(
            code=DECLARATION,
            name_fr="Déclaration de créance au mandataire judiciaire",
            name_en="Proof of claim to the creditors' representative",
            basis="C. com. art. L622-24, L622-25, R622-24",
            debtor_kinds=KINDS,
            insolvent=True,
            acts="le créancier, ou tout préposé ou mandataire de son choix (L622-24)",
            court="aucune saisine : la déclaration est adressée au mandataire judiciaire (au "
            "liquidateur en liquidation) ; le juge-commissaire du tribunal de la procédure "
            "statue sur une contestation",
            supply=(
                "le montant dû au jour du jugement d'ouverture, les sommes à échoir et leurs dates",
                "la nature du privilège ou de la sûreté éventuels (L622-25)",
                f"{_PIECES}, qui prouvent l'existence et le montant de la créance",
            ),
            note="dans les 2 mois de la publication du jugement au BODACC (4 mois hors de "
            "France métropolitaine, R622-24) ; aucune action individuelle sur une créance "
            "antérieure au jugement (L622-21)",
        ),
        Procedure(
            code=ASSIGNATION,
            name_fr="Assignation en paiement (action au fond)",
            name_en="Summons to pay (action on the merits)",
            basis="CPC art. 750 et s.",
            debtor_kinds=PRIVATE,
            contested=True,
            acts="un commissaire de justice délivre l'assignation ; avocat obligatoire au-delà "
            "de 10 000 € (CPC art. 761, 853)",
            court="le tribunal compétent ci-dessous (CPC art. 42 : lieu où demeure le défendeur ; "
            "art. 46 : lieu de la livraison ou de la prestation, au choix du demandeur)",
            supply=(_PIECES, _NOTICE, "les échanges sur la contestation et leur issue"),
            note="débat contradictoire : la voie d'une créance contestée",
        ),
        Procedure(
            code=RECOURS_AU_FOND,
            name_fr="Requête au fond devant le tribunal administratif",
            name_en="Action on the merits before the administrative court",
            basis="CJA art. R421-1, R431-2",
            debtor_kinds=frozenset({PUBLIC}),
            contested=True,
            acts="le créancier, représenté par un avocat (demande de paiement d'une somme d'argent, R431-2)",
            court="le tribunal administratif compétent ci-dessous",
            supply=(
                "la demande préalable de paiement adressée à l'acheteur public et sa décision "
                "(R421-1 ; son silence gardé deux mois vaut rejet, R421-2)",
                "le marché ou le bon de commande, les factures",
                "les échanges sur la contestation",
            ),
        ),
        Procedure(
            code=COMPTABLE_PUBLIC,
            name_fr="Demande de paiement à l'acheteur public et à son comptable",
            name_en="Request for payment to the public buyer and its public accountant",
            basis="CCP art. L2192-13, R2192-31 et s., D2192-35 ; loi n° 80-539 du 16 juillet "
            "1980, art. 1er II",
            debtor_kinds=frozenset({PUBLIC}),
            contested=False,
            acts="le créancier, auprès de l'ordonnateur (le service acheteur) et du comptable "
            "public assignataire ; une fois la somme fixée par une décision de justice, le "
            "préfet mandate d'office une collectivité locale ou un établissement public qui ne "
            "l'a pas mandatée dans les deux mois (loi n° 80-539, art. 1er II)",
            court="aucune saisine",
            supply=(
                "les factures telles que déposées (Chorus Pro), le marché ou le bon de commande",
                "les intérêts moratoires (taux BCE + 8 points, R2192-31) et l'indemnité de "
                "40 € par facture (D2192-35)",
                _NOTICE,
            ),
            note="pas d'injonction de payer contre une personne publique ; ses biens sont "
            "insaisissables (CG3P art. L2311-1) : une condamnation s'exécute par mandatement "
            "ou paiement d'office (loi n° 80-539)",
        ),
        Procedure(
            code=REFERE_ADMINISTRATIF,
            name_fr="Référé-provision devant le tribunal administratif",
            name_en="Interim payment order from the administrative court",
            basis="CJA art. R541-1",
            debtor_kinds=frozenset({PUBLIC}),
            contested=False,
            acts="le créancier, en principe représenté par un avocat (R431-2)",
            court="le juge des référés du tribunal administratif compétent ci-dessous",
            supply=(
                "le marché ou le bon de commande, les factures",
                "la demande de paiement restée sans suite",
                "ce qui montre que l'obligation n'est pas sérieusement contestable",
            ),
            note="même sans demande au fond ; l'ordonnance fixe la somme, que la loi n° 80-539 "
            "fait ensuite mandater",
        ),
        Procedure(
            code=CREANCES_COMMERCIALES,
            name_fr="Procédure de recouvrement des créances commerciales incontestées",
            name_en="Recovery procedure for uncontested commercial claims",
            basis="CPCE art. L126-1 et s.",
            debtor_kinds=frozenset({BUSINESS}),
            contested=False,
            debtor_merchant=True,
            creditor_merchant=True,
            acts="un commissaire de justice signifie un commandement de payer ; le greffier de "
            "la juridiction commerciale rend exécutoire le procès-verbal de non-contestation",
            court="le greffe du tribunal de commerce (ou des activités économiques) compétent "
            "ci-dessous, sans audience",
            supply=(
                "les factures (créance facturée entre commerçants, certaine, liquide et exigible)",
                _NOTICE,
            ),
            note="tout montant ; le débiteur a un mois pour payer ou contester, toute contestation y met fin",
        ),
        Procedure(
            code=PROCEDURE_SIMPLIFIEE,
            name_fr="Procédure simplifiée de recouvrement des petites créances",
            name_en="Simplified recovery of small claims",
            basis="CPCE art. L125-1, R125-1 et s.",
            debtor_kinds=PRIVATE,
            contested=False,
            amount_limit=Decimal("5000.00"),
            limit_currency="EUR",
            acts="un commissaire de justice, à la demande du créancier (plateforme Credicys) ; "
            "il délivre un titre exécutoire si le débiteur accepte",
            court="aucune saisine",
            supply=(_PIECES, _NOTICE),
            note="il faut l'accord du débiteur ; les frais sont à la charge du créancier",
        ),
        Procedure(
            code=INJONCTION,
            name_fr="Injonction de payer",
            name_en="Order for payment",
            basis="CPC art. 1405 et s.",
            debtor_kinds=PRIVATE,
            contested=False,
            acts="le créancier (requête, sans audience) ; un commissaire de justice signifie l'ordonnance",
            court="le juge du lieu où demeure le débiteur (CPC art. 1406), ci-dessous",
            supply=(
                _PIECES,
                _NOTICE,
                "le décompte : principal, pénalités de retard et indemnité forfaitaire",
            ),
            note="pas contre une personne publique",
        ),
        Procedure(
            code=REFERE,
            name_fr="Référé-provision",
            name_en="Interim payment order in summary proceedings",
            basis="CPC art. 835 al. 2, 873 al. 2",
            debtor_kinds=PRIVATE,
            contested=False,
            acts="le créancier, par une assignation en référé délivrée par un commissaire de justice",
            court="le président du tribunal compétent ci-dessous : tribunal judiciaire (835) ou "
            "tribunal de commerce (873)",
            supply=(_PIECES, _NOTICE, "ce qui montre que l'obligation n'est pas sérieusement contestable"),
        ),
    )
)
