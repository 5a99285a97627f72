"""Pushing the hub's contacts to HubSpot: one batch upsert by email per batch (integrations.crm).

- `POST /crm/v3/objects/contacts/batch/upsert`, up to 100 inputs, each
  `{"id": <email>, "idProperty": "email", "properties": {...}}`: HubSpot creates the contacts it
  does not have and updates the others, matching the email without regard to case. The same batch
  sent twice leaves the same contacts, so a batch that timed out or met a 5xx or 429 is simply
  sent again (HttpClient's retries) and a run that died is resumed without duplicates.
- Each result says whether the contact is `new` (created) or not (updated). HubSpot does not say
  when nothing changed, so nothing is counted unchanged.
- A contact HubSpot refuses (an invalid email, a value a property does not take): HubSpot either
  answers 207 with `errors` beside the results, or, as its documentation warns for upserts keyed
  by email, refuses the whole batch (400). Then the contacts its message names are set aside and
  the rest sent again; when it names none, the batch is halved until each refusal is alone. The
  refused contacts are counted failed with HubSpot's reason and the push goes on. A batch of
  which every contact is refused for the same reason is a problem of the connection (a property of
  the wrong type, say), not of the contacts: it stops the run with that reason.
- The custom properties (`hubspot_mapping.CUSTOM_PROPERTIES`) are looked up once per run, before
  the first batch, and the missing ones created (scope `crm.schemas.contacts.write`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..crm import PushOutcome
from ..errors import BadResponse, NotFound
from .hubspot_client import HubSpotApi, body_of, error_reason
from .hubspot_mapping import CUSTOM_PROPERTIES, contact_input, property_definition

if TYPE_CHECKING:
    from commerce.exports import Contact

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
# Anything shaped like an address in HubSpot's words (an invalid one too: that is often the point).
EMAIL = re.compile(r"[^\s@\"'<>(),;:\[\]]+@[^\s@\"'<>(),;:\[\]]+")
UNCONFIRMED = "HubSpot's answer did not include this contact."


def ensure_properties(api: HubSpotApi) -> list[str]:
    """Create the hub's custom contact properties HubSpot does not have yet; their names."""
    created = []
    for name in CUSTOM_PROPERTIES:
        try:
            api.send("GET", f"{PROPERTIES_PATH}/{name}")
            continue
        except NotFound:
            pass
        try:
            api.send("POST", PROPERTIES_PATH, json=property_definition(name))
        except BadResponse as error:
            if error.status != 409:  # 409: it exists (a retried create that had gone through)
                raise
        created.append(name)
    return created


def push_contacts(api: HubSpotApi, contacts: list[Contact]) -> PushOutcome:
    outcome = PushOutcome()
    inputs = [contact_input(contact) for contact in contacts if contact.email]
    upsert(api, inputs, outcome)
    reasons = {reason for _, reason in outcome.failed}
    if len(inputs) > 1 and len(outcome.failed) == len(inputs) and len(reasons) == 1:
        raise BadResponse(f"HubSpot refused every contact of the batch: {reasons.pop()}")
    return outcome


def upsert(api: HubSpotApi, inputs: list[dict[str, Any]], outcome: PushOutcome) -> None:
    if not inputs:
        return
    try:
        response = api.send("POST", UPSERT_PATH, json={"inputs": inputs})
    except BadResponse as error:
        if not error.status or not 400 <= error.status < 500:
            raise
        refuse(api, inputs, error_reason(error), outcome)
        return
    count(inputs, body_of(response), outcome)


def refuse(api: HubSpotApi, inputs: list[dict[str, Any]], reason: str, outcome: PushOutcome) -> None:
    """HubSpot refused the whole batch: find which contacts it means."""
    if len(inputs) == 1:
        outcome.failed.append((inputs[0]["id"], reason))
        return
    named = emails_in(reason)
    culprits = [item for item in inputs if item["id"] in named]
    if culprits and len(culprits) < len(inputs):
        outcome.failed.extend((item["id"], reason) for item in culprits)
        upsert(api, [item for item in inputs if item["id"] not in named], outcome)
        return
    middle = len(inputs) // 2
    upsert(api, inputs[:middle], outcome)
    upsert(api, inputs[middle:], outcome)


def count(inputs: list[dict[str, Any]], body: Any, outcome: PushOutcome) -> None:
    """Created and updated from the results, refused from the errors (a 207)."""
    body = body if isinstance(body, dict) else {}
    pending = {item["id"] for item in inputs}
    for result in body.get("results") or []:
        if not isinstance(result, dict):
            continue
        key = str(result.get("objectWriteTraceId") or (result.get("properties") or {}).get("email") or "").lower()
        if key not in pending:
            continue
        pending.discard(key)
        if result.get("new") is True:
            outcome.created += 1
        else:
            outcome.updated += 1
    unattributed = ""
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        reason = str(error.get("message") or error.get("category") or "refused")[:300]
        named = inputs_named(error) & pending
        unattributed = unattributed or ("" if named else reason)
        for email in sorted(named):
            outcome.failed.append((email, reason))
            pending.discard(email)
    # Neither confirmed nor refused by name: not pushed, with the reason of an error that named no input.
    outcome.failed.extend((email, unattributed or UNCONFIRMED) for email in sorted(pending))


def inputs_named(error: dict[str, Any]) -> set[str]:
    """The emails (our trace ids and upsert ids) a batch error is about."""
    named: set[str] = set()
    context = error.get("context") if isinstance(error.get("context"), dict) else {}
    for key in ("objectWriteTraceId", "ids", "id", "email", "emails"):
        value = context.get(key)
        for item in value if isinstance(value, list) else [value] if value else []:
            named.add(str(item).lower())
    return named | emails_in(str(error.get("message") or ""))


def emails_in(text: str) -> set[str]:
    return {found.rstrip(".").lower() for found in EMAIL.findall(text)}
