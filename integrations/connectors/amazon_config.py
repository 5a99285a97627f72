"""What an Amazon connection is configured with: region, marketplaces, endpoints, secret expiry.

A marketplace ID Amazon does not have, or one of another region, is a configuration error that
names the IDs of the region: nothing is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ..errors import ConfigurationError


def now() -> datetime:
    return datetime.now(UTC)  # looked up when called, so a test can move the clock


@dataclass(frozen=True)
class Marketplace:
    id: str
    country: str
    region: str
    currency: str
    name: str


MARKETPLACES: dict[str, Marketplace] = {
    m.id: m
    for m in [
        Marketplace("ATVPDKIKX0DER", "US", "NA", "USD", "Amazon.com"),
        Marketplace("A2EUQ1WTGCTBG2", "CA", "NA", "CAD", "Amazon.ca"),
        Marketplace("A1AM78C64UM0Y8", "MX", "NA", "MXN", "Amazon.com.mx"),
        Marketplace("A2Q3Y263D00KWC", "BR", "NA", "BRL", "Amazon.com.br"),
        Marketplace("A1F83G8C2ARO7P", "UK", "EU", "GBP", "Amazon.co.uk"),
        Marketplace("A1PA6795UKMFR9", "DE", "EU", "EUR", "Amazon.de"),
        Marketplace("A13V1IB3VIYZZH", "FR", "EU", "EUR", "Amazon.fr"),
        Marketplace("APJ6JRA9NG5V4", "IT", "EU", "EUR", "Amazon.it"),
        Marketplace("A1RKKUPIHCS9HS", "ES", "EU", "EUR", "Amazon.es"),
        Marketplace("A1805IZSGTT6HS", "NL", "EU", "EUR", "Amazon.nl"),
        Marketplace("A2NODRKZP88ZB9", "SE", "EU", "SEK", "Amazon.se"),
        Marketplace("A1C3SOZRARQ6R3", "PL", "EU", "PLN", "Amazon.pl"),
        Marketplace("A33AVAJ2PDY3EV", "TR", "EU", "TRY", "Amazon.com.tr"),
        Marketplace("A2VIGQ35RCS4UG", "AE", "EU", "AED", "Amazon.ae"),
        Marketplace("A21TJRUUN4KGV", "IN", "EU", "INR", "Amazon.in"),
        Marketplace("A1VC38T7YXB528", "JP", "FE", "JPY", "Amazon.co.jp"),
        Marketplace("A39IBJ37TRP1C6", "AU", "FE", "AUD", "Amazon.com.au"),
        Marketplace("A19VAU5U5O7RUS", "SG", "FE", "SGD", "Amazon.sg"),
    ]
}
REGIONS = ("NA", "EU", "FE")
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"  # noqa: S105 (an address, not a password)
TRUE_VALUES = {"1", "true", "yes", "on"}


def endpoint(region: str, *, sandbox: bool = False) -> str:
    host = f"sellingpartnerapi-{region.lower()}.amazon.com"
    return f"https://{'sandbox.' if sandbox else ''}{host}"


@dataclass(frozen=True)
class Config:
    region: str
    marketplaces: tuple[Marketplace, ...]
    sandbox: bool


def parse_config(credentials: dict[str, Any]) -> Config:
    region = parse_region(credentials.get("region"))
    marketplaces = parse_marketplaces(credentials.get("marketplace_ids"), region)
    sandbox = credentials.get("sandbox")
    return Config(region, marketplaces, sandbox is True or str(sandbox).strip().lower() in TRUE_VALUES)


def parse_region(value: Any) -> str:
    region = str(value or "").strip().upper()
    if region not in REGIONS:
        raise ConfigurationError(f"“{region or '(empty)'}” is not an SP-API region.", hint="Use NA, EU or FE.")
    return region


def parse_marketplaces(value: Any, region: str) -> tuple[Marketplace, ...]:
    """The marketplaces of these comma-separated IDs, each a known one of `region`."""
    ids = [i for i in re.split(r"[\s,;]+", str(value or "").strip()) if i]
    if not ids:
        raise ConfigurationError("The “Marketplace IDs” credential is missing.", hint="Fill it in on the connection.")
    known = ", ".join(f"{m.country} {m.id}" for m in MARKETPLACES.values() if m.region == region)
    marketplaces: list[Marketplace] = []
    for marketplace_id in dict.fromkeys(ids):
        marketplace = MARKETPLACES.get(marketplace_id)
        if marketplace is None:
            raise ConfigurationError(
                f"“{marketplace_id}” is not an Amazon marketplace ID.", hint=f"Marketplaces of {region}: {known}."
            )
        if marketplace.region != region:
            raise ConfigurationError(
                f"{marketplace.id} ({marketplace.country}) is a marketplace of the {marketplace.region} region, "
                f"not {region}.",
                hint=f"Set the region to {marketplace.region}, or use marketplaces of {region}: {known}.",
            )
        marketplaces.append(marketplace)
    return tuple(marketplaces)


def invalid_fields(credentials: dict[str, Any]) -> dict[str, str]:
    """Each filled-in credential that `parse_config` or the connection test would refuse, with why
    (field name → message). Empty ones are not judged here: the catalogue says which are required."""
    invalid: dict[str, str] = {}
    region = None
    if credentials.get("region"):
        try:
            region = parse_region(credentials["region"])
        except ConfigurationError as error:
            invalid["region"] = str(error)
    if region and credentials.get("marketplace_ids"):
        try:
            parse_marketplaces(credentials["marketplace_ids"], region)
        except ConfigurationError as error:
            invalid["marketplace_ids"] = str(error)
    expires = credentials.get("lwa_client_secret_expires_at")
    if expires and secret_expiry(expires) is None:
        invalid["lwa_client_secret_expires_at"] = f"“{expires}” is not a date: use YYYY-MM-DD."
    return invalid


def secret_expiry(value: Any) -> date | None:
    """The LWA client secret's rotation deadline, when the connection gives one as a date."""
    try:
        return date.fromisoformat(str(value).strip()[:10]) if value else None
    except ValueError:
        return None
