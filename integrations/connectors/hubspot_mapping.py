"""HubSpot contacts ↔ the hub: a CRM contact (CRM API v3) as a `CustomerRecord`, and a hub
`Contact` (commerce.exports) as the properties of a batch upsert.

Pulled contacts
    HubSpot's `id` is the external id; `lastmodifieddate` the version. Times arrive as ISO 8601
    strings (milliseconds since the epoch are read too). `country` is free text in HubSpot ("United
    States"): the hub keeps two-letter codes, so HubSpot's `hs_country_region_code` is used, or
    `country` when it is itself a code; the rest stays in `raw`. A contact without an email still
    lands (it can be texted, not emailed).

    The connector adds what the search does not carry under the `_hub` key of a payload, so a
    payload kept with a failed record maps again on its own: `_hub.lists`, the names of the lists
    (segments) the contact is in, which become tags `hubspot-list:<name>`, and `_hub.listed_at`,
    when it was last added to one. A contact added to a list is a newer version of it (HubSpot
    may not move its `lastmodifieddate` for that), so the version is the later of the two.

Pushed contacts
    Standard properties (email, names, phone, country) and the hub's order figures as custom
    properties (`CUSTOM_PROPERTIES`, created by the connector when missing). An empty hub value is
    left out, never sent: it would blank what a person typed in HubSpot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from commerce.exports import Contact
from commerce.records import CustomerRecord

from . import values

HUB = "_hub"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
LIST_TAG = "hubspot-list:"
# What the search asks for (HubSpot returns only the properties it is asked for, plus a few).
PULLED_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "country",
    "hs_country_region_code",
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
)
GROUP = "contactinformation"
# name → (label, type, fieldType): the custom contact properties the push writes.
CUSTOM_PROPERTIES: dict[str, tuple[str, str, str]] = {
    "hub_orders_count": ("Orders (commerce hub)", "number", "number"),
    "hub_total_spent": ("Total spent (commerce hub)", "number", "number"),
    "hub_currency": ("Currency of total spent (commerce hub)", "string", "text"),
    "hub_first_order_date": ("First order date (commerce hub)", "date", "date"),
    "hub_last_order_date": ("Last order date (commerce hub)", "date", "date"),
    "hub_platforms": ("Platforms (commerce hub)", "string", "text"),
}


def map_contact(payload: dict[str, Any]) -> CustomerRecord:
    properties = payload.get("properties") or {}
    hub = payload.get(HUB) or {}
    modified = modified_at(payload)
    if modified is None:
        raise ValueError("the contact has no lastmodifieddate")
    listed = hubspot_time(hub.get("listed_at"))
    return CustomerRecord(
        external_id=str(payload["id"]),
        email=text(properties.get("email")),
        first_name=text(properties.get("firstname")),
        last_name=text(properties.get("lastname")),
        phone=text(properties.get("phone")),
        country=country_code(properties),
        tags=[f"{LIST_TAG}{name}" for name in sorted(hub.get("lists") or [])],
        created_at=hubspot_time(properties.get("createdate")) or hubspot_time(payload.get("createdAt")),
        updated_at=max(modified, listed) if listed else modified,
        raw={key: value for key, value in payload.items() if key != HUB},
    )


def contact_input(contact: Contact) -> dict[str, Any]:
    """One input of a batch upsert by email. The email is also the trace id, which HubSpot echoes
    in the result (and may in an error) for that input."""
    properties = {
        "email": contact.email,
        "firstname": contact.first_name,
        "lastname": contact.last_name,
        "phone": contact.phone,
        "country": contact.country,
        "hub_orders_count": str(contact.orders_count),
        "hub_total_spent": number(contact.total_spent),
        "hub_currency": contact.currency,
        "hub_first_order_date": day(contact.first_order_at),
        "hub_last_order_date": day(contact.last_order_at),
        "hub_platforms": ", ".join(contact.platforms),
    }
    return {
        "id": contact.email,
        "idProperty": "email",
        "objectWriteTraceId": contact.email,
        "properties": {name: value for name, value in properties.items() if value},
    }


def property_definition(name: str) -> dict[str, Any]:
    label, kind, field_type = CUSTOM_PROPERTIES[name]
    return {
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "groupName": GROUP,
        "description": "Kept up to date by the commerce hub from the person's orders on every platform.",
    }


# --- Values ---------------------------------------------------------------------------------------


def hubspot_time(value: Any) -> datetime | None:
    """A HubSpot time: ISO 8601 ("2024-05-01T12:00:00.123Z") or milliseconds since the epoch."""
    if value in (None, ""):
        return None
    raw = str(value).strip()
    if raw.isdigit():
        return EPOCH + int(raw) * MILLISECOND
    return values.iso_time(raw)


def modified_at(payload: dict[str, Any]) -> datetime | None:
    properties = payload.get("properties") or {}
    return (
        hubspot_time(properties.get("lastmodifieddate"))
        or hubspot_time(properties.get("hs_lastmodifieddate"))
        or hubspot_time(payload.get("updatedAt"))
    )


def millis(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def country_code(properties: dict[str, Any]) -> str:
    for value in (properties.get("hs_country_region_code"), properties.get("country")):
        code = text(value)
        if len(code) == 2 and code.isalpha():
            return code.upper()
    return ""


def number(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def day(moment: datetime | None) -> str:
    """A HubSpot date property's value: the UTC day, YYYY-MM-DD."""
    return moment.astimezone(UTC).date().isoformat() if moment else ""


def text(value: Any) -> str:
    return str(value).strip() if value is not None else ""
