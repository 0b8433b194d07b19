"""The competent court named from the debtor (handlers/courts.py, docs/policy.md "The competent
court"): the kind of court and the place it must be sought for, and the court itself where the
debtor's city is the seat of one of the twelve tribunaux des activités économiques."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from handlers.courts import TAE_SEATS, competent_court

DAY = date(2026, 5, 20)  # within the TAE experiment (1 January 2025 - 31 December 2028)


def debtor(city: str, postal_code: str, kind: str = "business", merchant: bool | None = True, country="FR"):
    address = {"line1": "1 rue Neuve", "postal_code": postal_code, "city": city, "country": country}
    return SimpleNamespace(kind=kind, merchant=merchant, address=address, country=country)


def test_a_merchant_in_lyon_goes_to_the_tribunal_des_activites_economiques_de_lyon():
    court = competent_court(debtor("Lyon", "69007"), DAY)
    assert (court.kind, court.name, court.place, court.named) == (
        "tribunal_des_activites_economiques",
        "tribunal des activités économiques de Lyon",
        "69007 Lyon",
        True,
    )
    assert "arrêté du 5 juillet 2024" in court.basis and "CPC art. 42" in court.basis


def test_a_consumer_in_lille_goes_to_the_tribunal_judiciaire_sought_for_59000_lille():
    court = competent_court(debtor("Lille", "59000", kind="consumer", merchant=None), DAY)
    assert (court.kind, court.name, court.place, court.named) == (
        "tribunal_judiciaire",
        "tribunal judiciaire",
        "59000 Lille",
        False,
    )
    assert court.note == "chercher le tribunal judiciaire dont le ressort couvre 59000 Lille"


def test_a_public_person_goes_to_the_tribunal_administratif():
    court = competent_court(debtor("Lille", "59000", kind="public", merchant=None), DAY)
    assert (court.kind, court.name) == ("tribunal_administratif", "tribunal administratif")
    assert "R312-11" in court.basis and "59000 Lille" in court.note


def test_a_merchant_outside_the_seats_gets_the_kind_of_court_and_the_place_to_look_up():
    court = competent_court(debtor("Villeurbanne", "69100"), DAY)
    assert (court.kind, court.name, court.named) == ("tribunal_de_commerce", "tribunal de commerce", False)
    assert court.note.startswith("chercher le tribunal de commerce dont le ressort couvre 69100 Villeurbanne")


def test_a_business_that_did_not_say_it_is_a_merchant_gets_both_courts_named_conditionally():
    court = competent_court(debtor("Le Havre", "76600", merchant=None), DAY)
    assert court.kind == "commerce_ou_judiciaire" and not court.named
    assert court.name == (
        "tribunal des activités économiques du Havre si le débiteur est commerçant ou artisan, "
        "tribunal judiciaire sinon"
    )


def test_a_business_that_is_not_a_merchant_goes_to_the_tribunal_judiciaire_unless_an_artisan():
    court = competent_court(debtor("Lyon", "69007", merchant=False), DAY)
    assert court.kind == "tribunal_judiciaire"
    assert court.note.endswith("un débiteur artisan relève du tribunal de commerce (C. com. L721-3)")


@pytest.mark.parametrize(
    ("city", "postal_code", "expected"),
    [
        ("Saint-Brieuc", "22000", "tribunal des activités économiques de Saint-Brieuc"),
        ("ST BRIEUC CEDEX 1", "22000", "tribunal des activités économiques de Saint-Brieuc"),
        ("Paris 7e Arrondissement", "75007", "tribunal des activités économiques de Paris"),
        ("LE MANS", "72000", "tribunal des activités économiques du Mans"),
        ("Avignon", "84000", "tribunal des activités économiques d'Avignon"),
        ("Nancy", "54000", "tribunal des activités économiques de Nancy"),
        # not among the twelve designated by the arrêté du 5 juillet 2024
        ("Saint-Étienne", "42000", "tribunal de commerce"),
        ("Orléans", "45000", "tribunal de commerce"),
        # a city of that name elsewhere than in the seat's department is not the seat
        ("Nancy", "75001", "tribunal de commerce"),
    ],
)
def test_the_seat_is_recognised_whatever_the_spelling_of_the_city(city, postal_code, expected):
    assert competent_court(debtor(city, postal_code), DAY).name == expected


def test_there_are_twelve_seats():
    assert len(TAE_SEATS) == 12


@pytest.mark.parametrize("day", [date(2024, 12, 31), date(2029, 1, 1)])
def test_outside_the_experiment_the_commercial_court_is_the_tribunal_de_commerce(day):
    court = competent_court(debtor("Lyon", "69007"), day)
    assert (court.kind, court.name) == ("tribunal_de_commerce", "tribunal de commerce")


def test_after_the_experiment_the_note_says_to_check_whether_the_tae_still_exist():
    assert competent_court(debtor("Lyon", "69007"), date(2029, 1, 1)).note.endswith(
        "l'expérimentation des TAE finissait le 31/12/2028 : vérifier"
    )


def test_a_debtor_abroad_gets_no_court_named():
    court = competent_court(debtor("Bruxelles", "1000", country="BE"), DAY)
    assert (court.kind, court.place) == ("etranger", "1000 Bruxelles (BE)")
