"""Pushing the hub's contacts to Salesforce (the `contacts` push stream, integrations.crm).

Email is not an external ID on Contact, so Salesforce cannot upsert by it. Each batch (up to 200,
the most one sObject Collections request takes) is looked up by email with one SOQL query, which
compares text without regard to case; the Contacts found are updated (PATCH /composite/sobjects)
and the others created (POST), each record on its own (allOrNone=false), so one Salesforce refuses
is counted as failed with its reason and the rest are saved. Where an org already holds several
Contacts with one email, the oldest is updated.

A create is not idempotent: when its answer is lost (a timeout, a dropped connection, a 5xx) the
Contacts may exist all the same. So it is never sent again blindly: the batch's emails are looked
up again and only those still missing are created, once more; failing again, the batch fails, and
the next run starts with the lookup too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from commerce.exports import Contact

from ..crm import PushOutcome
from ..errors import Unavailable
from . import salesforce_mapping as mapping

if TYPE_CHECKING:
    from .salesforce import SalesforceConnector
    from .salesforce_client import SalesforceApi

logger = logging.getLogger(__name__)

CONTACT = {"type": "Contact"}
Pair = tuple[Contact, dict[str, Any]]


def push(connector: SalesforceConnector, contacts: list[Contact]) -> PushOutcome:
    outcome = PushOutcome()
    contacts = [contact for contact in contacts if contact.email]
    if not contacts:
        return outcome
    api = connector.api
    fields = connector.contact_fields()
    existing = find(api, [contact.email for contact in contacts])
    updates: list[Pair] = []
    creates: list[Pair] = []
    for contact in contacts:
        contact_id = existing.get(contact.email.lower())
        if contact_id is None:
            values = mapping.contact_values(contact, fields, creating=True)
            creates.append((contact, {"attributes": CONTACT, **values}))
            continue
        values = mapping.contact_values(contact, fields, creating=False)
        if not values:
            outcome.unchanged += 1  # nothing the org lets the hub write
            continue
        updates.append((contact, {"attributes": CONTACT, "id": contact_id, **values}))
    if updates:
        # An update is idempotent: sent again after a lost answer, it changes nothing more.
        results = api.save("PATCH", [record for _, record in updates], retry=True)
        tally(outcome, updates, results, "updated")
    if creates:
        tally(outcome, creates, create(api, creates), "created")
    return outcome


def find(api: SalesforceApi, emails: list[str]) -> dict[str, str]:
    """Lower-case email → the Id of the oldest Contact with it, for those Salesforce has."""
    found: dict[str, str] = {}
    for run in mapping.chunked(sorted({email.lower() for email in emails})):
        for record in api.query_all(mapping.email_query(run)):
            email = str(record.get("Email") or "").lower()
            if email and record.get("Id"):
                found.setdefault(email, str(record["Id"]))
    return found


def create(api: SalesforceApi, creates: list[Pair]) -> list[dict[str, Any]]:
    """One SaveResult per contact to create."""
    try:
        return api.save("POST", [record for _, record in creates], retry=False)
    except Unavailable as error:
        logger.warning("Creating %d Salesforce contacts got no answer (%s); looking them up again", len(creates), error)
    made = find(api, [contact.email for contact, _ in creates])
    missing = [(contact, record) for contact, record in creates if contact.email.lower() not in made]
    retried = iter(api.save("POST", [record for _, record in missing], retry=False) if missing else [])
    # The ones found were made by the request whose answer was lost.
    return [
        {"id": made[contact.email.lower()], "success": True} if contact.email.lower() in made else next(retried)
        for contact, _ in creates
    ]


def tally(outcome: PushOutcome, pairs: list[Pair], results: list[dict[str, Any]], done: str) -> None:
    for (contact, _), result in zip(pairs, results, strict=True):
        if result.get("success") is True:
            setattr(outcome, done, getattr(outcome, done) + 1)
        else:
            outcome.failed.append((contact.email, mapping.refusal(result)))
