"""The carriers the hub knows, by one code each, and how people write their names.

A person (or a CSV) writes "UPS", "ups", "United Parcel Service" or "Royal Mail"; the hub stores
the code (`ups`, `royal_mail`) and each connector names it the way its platform wants (Shopify's
tracking company, Amazon's carrier code, eBay's shipping carrier code, ...). A name the hub does
not know is refused with the list it accepts, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Carrier:
    code: str
    name: str
    aliases: tuple[str, ...] = ()
    tracking_url: str = ""  # with {number}

    def url_for(self, number: str) -> str:
        return self.tracking_url.format(number=number) if self.tracking_url and number else ""


CARRIERS: dict[str, Carrier] = {
    c.code: c
    for c in [
        Carrier("ups", "UPS", ("united parcel service",), "https://www.ups.com/track?tracknum={number}"),
        Carrier(
            "usps",
            "USPS",
            ("united states postal service", "us postal service"),
            "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
        ),
        Carrier("fedex", "FedEx", ("federal express", "fed ex"), "https://www.fedex.com/fedextrack/?trknbr={number}"),
        Carrier(
            "dhl", "DHL Express", ("dhl", "dhl express"), "https://www.dhl.com/en/express/tracking.html?AWB={number}"
        ),
        Carrier(
            "dhl_ecommerce",
            "DHL eCommerce",
            ("dhl ecommerce", "dhl global mail"),
            "https://webtrack.dhlecs.com/?trackingnumber={number}",
        ),
        Carrier(
            "royal_mail",
            "Royal Mail",
            ("royalmail",),
            "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
        ),
        Carrier(
            "parcelforce",
            "Parcelforce",
            ("parcel force",),
            "https://www.parcelforce.com/track-trace?trackNumber={number}",
        ),
        Carrier(
            "canada_post",
            "Canada Post",
            ("postes canada",),
            "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
        ),
        Carrier(
            "australia_post", "Australia Post", ("auspost",), "https://auspost.com.au/mypost/track/#/details/{number}"
        ),
        Carrier("dpd", "DPD", (), "https://www.dpd.com/tracking?parcelNumber={number}"),
        Carrier("gls", "GLS", (), "https://gls-group.com/track/{number}"),
        Carrier("evri", "Evri", ("hermes", "hermes uk"), "https://www.evri.com/track/parcel/{number}"),
        Carrier("ontrac", "OnTrac", ("on trac",), "https://www.ontrac.com/tracking/?number={number}"),
        Carrier("amazon_logistics", "Amazon Logistics", ("amzl", "amazon shipping"), ""),
        Carrier(
            "japan_post",
            "Japan Post",
            ("jp post",),
            "https://trackings.post.japanpost.jp/services/srv/search/?requestNo1={number}",
        ),
        Carrier("yamato", "Yamato Transport", ("yamato", "kuroneko"), ""),
    ]
}


class UnknownCarrier(ValueError):
    def __init__(self, given: str, accepted: list[str]) -> None:
        self.given = given
        self.accepted = accepted
        names = ", ".join(CARRIERS[code].name for code in accepted if code in CARRIERS)
        super().__init__(f"Unknown carrier “{given}”. Accepted: {names}.")


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


_BY_NAME: dict[str, str] = {}
for _carrier in CARRIERS.values():
    for _name in (_carrier.code, _carrier.name, *_carrier.aliases):
        _BY_NAME[_key(_name)] = _carrier.code
        _BY_NAME[_key(_name).replace(" ", "")] = _carrier.code


def normalise(given: str, accepted: list[str] | None = None) -> str:
    """The hub code for a carrier name as people write it; `UnknownCarrier` (which lists the
    accepted carriers: all the hub knows, or the platform's `accepted` codes) otherwise."""
    key = _key(given or "")
    code = _BY_NAME.get(key) or _BY_NAME.get(key.replace(" ", ""))
    allowed = list(CARRIERS) if accepted is None else accepted
    if code is None or code not in allowed:
        raise UnknownCarrier(given, allowed)
    return code


def tracking_url(code: str, number: str) -> str:
    carrier = CARRIERS.get(code)
    return carrier.url_for(number) if carrier else ""
