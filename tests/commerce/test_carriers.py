"""Carrier names as people write them, normalised to one hub code; unknown ones refused with the list."""

from __future__ import annotations

import pytest

from commerce.carriers import CARRIERS, UnknownCarrier, normalise, tracking_url


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("UPS", "ups"),
        ("ups", "ups"),
        ("United Parcel Service", "ups"),
        ("FedEx", "fedex"),
        ("Fed Ex", "fedex"),
        ("royal mail", "royal_mail"),
        ("Royal-Mail", "royal_mail"),
        ("RoyalMail", "royal_mail"),
        ("royal_mail", "royal_mail"),
        ("DHL", "dhl"),
        ("Hermes", "evri"),
        ("  usps ", "usps"),
    ],
)
def test_names_people_write_become_one_code(given, code):
    assert normalise(given) == code


@pytest.mark.parametrize("given", ["", "Pony Express", "UPSS", "dhl-ish"])
def test_an_unknown_carrier_is_refused_with_the_accepted_list(given):
    with pytest.raises(UnknownCarrier) as refused:
        normalise(given)
    assert refused.value.accepted == list(CARRIERS)
    assert "Royal Mail" in str(refused.value) and "UPS" in str(refused.value)


def test_a_known_carrier_the_platform_does_not_accept_is_refused_with_its_list():
    with pytest.raises(UnknownCarrier) as refused:
        normalise("Royal Mail", accepted=["ups", "usps", "fedex"])
    assert str(refused.value) == "Unknown carrier “Royal Mail”. Accepted: UPS, USPS, FedEx."


def test_tracking_links():
    assert tracking_url("ups", "1Z999AA10123456784") == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    assert tracking_url("amazon_logistics", "TBA123") == ""  # no public link
    assert tracking_url("ups", "") == ""
    assert tracking_url("nope", "123") == ""
