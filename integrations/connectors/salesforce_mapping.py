"""Salesforce Contacts to and from the hub: the SOQL the connector sends, a Contact as a
`CustomerRecord`, and a hub `Contact` as the fields of a Salesforce Contact.

- Country: with state and country picklists on, a Contact has `MailingCountryCode` (an ISO code
  from the org's picklist) beside `MailingCountry` (the picklist's label); with them off it has only
  `MailingCountry`, free text. The describe of Contact says which: the code is read and written
  when it exists, the text field otherwise (read only when it holds a two-letter code).
- Order figures go to five custom fields (`CUSTOM_FIELDS`) that the org's admin creates; the ones
  missing (or not writable by the integration user) are left out.
- Only what the hub knows is written: an empty name, phone or country never blanks Salesforce's. A
  new Contact needs a LastName, so one the hub has no last name for gets the email's local part; an
  existing one keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from commerce.exports import Contact
from commerce.records import CustomerRecord

from . import values

CUSTOM_FIELDS = (
    "Hub_Orders_Count__c",
    "Hub_Total_Spent__c",
    "Hub_Currency__c",
    "Hub_Last_Order_Date__c",
    "Hub_First_Order_Date__c",
)
TAG_PREFIX = "salesforce-campaign:"
CAMPAIGNS = "hub_campaigns"  # the key the connector adds to a Contact's payload: its campaigns' names
READ_FIELDS = (
    "Id",
    "Email",
    "FirstName",
    "LastName",
    "Phone",
    "MailingCountry",
    "HasOptedOutOfEmail",
    "LastModifiedDate",
    "CreatedDate",
)
COUNTRY_CODE = "MailingCountryCode"
# Keeps each query's text well under the length of URL Salesforce takes (it goes in a GET's query).
MAX_LIST_CHARS = 6000


# --- SOQL ---------------------------------------------------------------------------------------------


def quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_time(value: str) -> str:
    """A dateTime literal (YYYY-MM-DDThh:mm:ssZ, unquoted) for a time as Salesforce writes it."""
    moment = values.iso_time(value)
    if moment is None:
        raise ValueError("no time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def contact_query(fields: Iterable[str], cursor: dict[str, Any]) -> str:
    """Contacts changed after the cursor's (LastModifiedDate, Id), oldest first; ties broken by Id,
    so a page that ends inside a second full of changes resumes after its last Contact."""
    where = ""
    if cursor.get("modified"):
        moment = soql_time(cursor["modified"])
        where = f" WHERE LastModifiedDate > {moment}"
        if cursor.get("id"):
            where = (
                f" WHERE (LastModifiedDate > {moment} OR (LastModifiedDate = {moment} AND Id > {quote(cursor['id'])}))"
            )
    return f"SELECT {', '.join(fields)} FROM Contact{where} ORDER BY LastModifiedDate, Id"


def campaign_query(contact_ids: list[str]) -> str:
    ids = ", ".join(quote(i) for i in contact_ids)
    return f"SELECT ContactId, Campaign.Name FROM CampaignMember WHERE ContactId IN ({ids})"


def email_query(emails: list[str]) -> str:
    """The Contacts with these emails (SOQL compares text without regard to case), oldest first."""
    listed = ", ".join(quote(e) for e in emails)
    return f"SELECT Id, Email FROM Contact WHERE Email IN ({listed}) ORDER BY CreatedDate, Id"


def chunked(items: list[str], limit: int = MAX_LIST_CHARS) -> list[list[str]]:
    """`items` in runs whose quoted list stays under `limit` characters."""
    runs: list[list[str]] = []
    size = limit
    for item in items:
        length = len(quote(item)) + 2
        if size + length > limit:
            runs.append([])
            size = 0
        runs[-1].append(item)
        size += length
    return runs


# --- Salesforce to the hub -----------------------------------------------------------------------------


def campaign_names(members: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Contact Id → the names of its campaigns, sorted, from CampaignMember rows."""
    names: dict[str, set[str]] = {}
    for member in members:
        campaign = member.get("Campaign") if isinstance(member.get("Campaign"), dict) else {}
        name = str(campaign.get("Name") or "").strip()
        if member.get("ContactId") and name:
            names.setdefault(str(member["ContactId"]), set()).add(name)
    return {contact_id: sorted(found) for contact_id, found in names.items()}


def map_contact(payload: dict[str, Any]) -> CustomerRecord:
    if not payload.get("Id"):
        raise ValueError("the Contact has no Id")
    return CustomerRecord(
        external_id=str(payload["Id"]),
        email=str(payload.get("Email") or "").strip(),
        first_name=str(payload.get("FirstName") or "")[:100],
        last_name=str(payload.get("LastName") or "")[:100],
        phone=str(payload.get("Phone") or "")[:32],
        country=country_of(payload),
        accepts_marketing=not payload.get("HasOptedOutOfEmail"),
        tags=[f"{TAG_PREFIX}{name}" for name in payload.get(CAMPAIGNS) or []],
        created_at=values.iso_time(payload.get("CreatedDate")),
        updated_at=values.iso_time(payload.get("LastModifiedDate")),
        raw=payload,
    )


def country_of(payload: dict[str, Any]) -> str:
    for name in (COUNTRY_CODE, "MailingCountry"):
        value = str(payload.get(name) or "").strip()
        if len(value) == 2 and value.isalpha():
            return value.upper()
    return ""


# --- The hub to Salesforce -----------------------------------------------------------------------------


def contact_values(contact: Contact, fields: dict[str, dict[str, Any]], *, creating: bool) -> dict[str, Any]:
    """The fields to write for a hub contact, of those the org's Contact has (`fields`: name → its
    describe) and the integration user may set."""
    flag = "createable" if creating else "updateable"

    def writable(name: str) -> bool:
        return bool(fields.get(name, {}).get(flag))

    record: dict[str, Any] = {}
    if creating:
        record["Email"] = contact.email
        record["LastName"] = contact.last_name or contact.email.split("@", 1)[0] or contact.email
    elif contact.last_name:
        record["LastName"] = contact.last_name
    if contact.first_name:
        record["FirstName"] = contact.first_name
    if contact.phone:
        record["Phone"] = contact.phone
    if contact.country:
        record[COUNTRY_CODE if COUNTRY_CODE in fields else "MailingCountry"] = contact.country.upper()
    figures = {
        "Hub_Orders_Count__c": contact.orders_count,
        "Hub_Total_Spent__c": float(contact.total_spent),
        "Hub_Currency__c": contact.currency or None,
        "Hub_Last_Order_Date__c": moment(contact.last_order_at, fields.get("Hub_Last_Order_Date__c")),
        "Hub_First_Order_Date__c": moment(contact.first_order_at, fields.get("Hub_First_Order_Date__c")),
    }
    record.update(figures)
    return {name: value for name, value in record.items() if writable(name)}


def moment(value: datetime | None, field: dict[str, Any] | None) -> str | None:
    """A time for a custom field made as Date (YYYY-MM-DD) or Date/Time (ISO, UTC)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if (field or {}).get("type") == "date":
        return value.date().isoformat()
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def refusal(result: dict[str, Any]) -> str:
    """Why Salesforce refused one record of a collection, in its words."""
    errors = [e for e in result.get("errors") or [] if isinstance(e, dict)]
    if any(e.get("statusCode") == "DUPLICATES_DETECTED" for e in errors):
        said = next(str(e.get("message") or "") for e in errors if e.get("statusCode") == "DUPLICATES_DETECTED")
        return (
            f"A Salesforce duplicate rule blocked it (DUPLICATES_DETECTED: {said}). Merge the duplicates in "
            "Salesforce, or let the rule allow saving."
        )
    words = [
        f"{e.get('statusCode') or 'ERROR'}: {e.get('message') or ''}".strip(": ")
        + (f" ({', '.join(map(str, e['fields']))})" if e.get("fields") else "")
        for e in errors
    ]
    return "; ".join(words) or "Salesforce refused it without saying why."
