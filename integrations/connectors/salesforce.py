"""Salesforce (REST API): a CRM connection's contacts, read into the hub and pushed from it.

- Credentials: the connected app's consumer key and secret, and the refresh token and instance URL
  that Connect sets (`integrations.oauth.salesforce.SalesforceOAuth`); `sandbox` signs in at
  test.salesforce.com. A base URL override stands in for the login host (a My Domain login
  address, a test server); API requests go to the instance URL Salesforce's token endpoint names.
- Tokens: `salesforce_tokens`. Requests: `salesforce_client`. Mapping and SOQL: `salesforce_mapping`. Pushes:
  `salesforce_push`.
- `customers` reads Contacts changed since the cursor (their LastModifiedDate and Id), oldest first,
  with the names of their campaigns as tags (one CampaignMember query per page). A campaign joined
  or left does not change a Contact's LastModifiedDate, so it shows once the Contact next changes.
- `contacts` pushes the hub's people as Contacts, by email, with their order figures in custom
  fields the org's admin creates (`salesforce_mapping.CUSTOM_FIELDS`); the check says which are
  missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, ConfigurationError, PermissionDenied
from ..http import Hints
from . import salesforce_client, salesforce_push
from . import salesforce_mapping as mapping
from .base import CheckResult, Connector, Page
from .salesforce_client import API_VERSION, DATA, HINT_RECONNECT, TOKEN_PATH, SalesforceApi
from .salesforce_tokens import SalesforceTokens

if TYPE_CHECKING:
    from commerce.records import Record

    from ..crm import PushOutcome

logger = logging.getLogger(__name__)

LOW_API_SHARE = 0.1  # the check warns when less than this share of the daily API requests is left
HINT_FIELDS = (
    "In Salesforce: Setup → Object Manager → Contact → Fields & Relationships → New, and give the integration user "
    "edit access to them. Hub_Orders_Count__c Number(18, 0), Hub_Total_Spent__c Number(16, 2), Hub_Currency__c "
    "Text(3), Hub_Last_Order_Date__c and Hub_First_Order_Date__c Date/Time (or Date)."
)


class SalesforceConnector(Connector):
    streams = ("customers",)
    push_streams = ("contacts",)
    push_batch_size = 200  # the most records one sObject Collections request takes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._contact: dict[str, Any] | None = None
        self._campaigns_readable = True

    def hints(self) -> Hints:
        salesforce_side = "Salesforce failed on its side; the sync tries again later."
        return Hints(
            by_status={
                400: "Salesforce refused the request.",
                401: HINT_RECONNECT,
                403: "The integration user lacks a permission for this (API Enabled, or access to Contacts).",
                404: "Salesforce does not know this resource: check the instance and the API version "
                f"(v{API_VERSION}).",
                500: salesforce_side,
                503: salesforce_side,
            },
            timeout="Salesforce did not answer in time.",
            connection="Salesforce could not be reached.",
            describe=salesforce_client.salesforce_errors,
        )

    @cached_property
    def api(self) -> SalesforceApi:
        self.credential("client_id")
        self.credential("client_secret")
        if not str(self.credentials.get("refresh_token") or "").strip():
            raise ConfigurationError("The connection has no Salesforce refresh token yet.", hint=HINT_RECONNECT)
        url = salesforce_client.login_url(self.credentials, self.connection.base_url or "") + TOKEN_PATH
        return SalesforceApi(self.client, SalesforceTokens(self.connection, self.client, url, self.cache_id))

    def contact_describe(self, *, retry: bool = True) -> dict[str, Any]:
        """Contact's describe (its fields, and what the user may do), asked once per connector: once a run."""
        if self._contact is None:
            self._contact = self.api.describe("Contact", retry=retry)
        return self._contact

    def contact_fields(self, *, retry: bool = True) -> dict[str, dict[str, Any]]:
        fields = self.contact_describe(retry=retry)["fields"]
        return {str(f["name"]): f for f in fields if isinstance(f, dict) and f.get("name")}

    # --- Check ---

    def _check(self) -> CheckResult:
        session = self.api.tokens.session(retry=False)
        warnings: list[str] = []
        details: dict[str, Any] = {
            "instance_url": session.instance_url,
            "api_version": API_VERSION,
            "sandbox": salesforce_client.is_sandbox(self.credentials),
        }
        limits = self.api.get(f"{DATA}/limits", retry=False)
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        if isinstance(daily, dict) and isinstance(daily.get("Max"), int) and isinstance(daily.get("Remaining"), int):
            details["daily_api_requests"] = {"max": daily["Max"], "remaining": daily["Remaining"]}
            if daily["Remaining"] < daily["Max"] * LOW_API_SHARE:
                warnings.append(
                    f"Only {daily['Remaining']} of the org's {daily['Max']} daily API requests are left: syncs stop "
                    "when they run out."
                )
        describe = self.contact_describe(retry=False)
        fields = self.contact_fields()
        granted, missing, refused = [], [], []
        for stream, allowed, verb in (
            ("customers", describe.get("queryable", True), "read"),
            ("contacts", describe.get("createable", True) and describe.get("updateable", True), "create and edit"),
        ):
            (granted if allowed else missing).append(stream)
            if not allowed:
                refused.append(verb)
        if refused:
            warnings.append(f"The integration user may not {' or '.join(refused)} Contacts: give it that access.")
        absent = [name for name in mapping.CUSTOM_FIELDS if not fields.get(name, {}).get("updateable")]
        details["missing_fields"] = absent
        if absent:
            warnings.append(
                f"Salesforce's Contact lacks the custom field(s) {', '.join(absent)} (or the integration user cannot "
                f"edit them): the hub pushes contacts without those order figures until they exist. {HINT_FIELDS}"
            )
        details["country_field"] = mapping.COUNTRY_CODE if mapping.COUNTRY_CODE in fields else "MailingCountry"
        count = self.api.get(f"{DATA}/query", {"q": "SELECT COUNT() FROM Contact"}, retry=False)
        samples = {"customers": count["totalSize"]} if isinstance(count, dict) and "totalSize" in count else {}
        try:
            self.api.get(f"{DATA}/query", {"q": "SELECT Id FROM CampaignMember LIMIT 1"}, retry=False)
        except (BadResponse, PermissionDenied):
            warnings.append("The integration user cannot read campaign members: contacts come without campaign tags.")
        return CheckResult(
            ok=True,
            message=f"Connected to Salesforce{' (sandbox)' if details['sandbox'] else ''} at {session.instance_url}.",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details=details,
        )

    # --- Read ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in self.streams:
            raise ConfigurationError(f"Salesforce has no “{stream}” stream to read.", hint="Streams: customers.")
        position = {} if full else dict(cursor or {})
        fields = self.contact_fields()
        select = [*mapping.READ_FIELDS, *([mapping.COUNTRY_CODE] if mapping.COUNTRY_CODE in fields else [])]
        for body in self.api.query(mapping.contact_query(select, position)):
            records = [record for record in body["records"] if isinstance(record, dict)]
            if not records:
                continue
            names = self._campaigns([str(record["Id"]) for record in records if record.get("Id")])
            payloads = [{**record, mapping.CAMPAIGNS: names.get(str(record.get("Id")), [])} for record in records]
            last = records[-1]
            if last.get("LastModifiedDate") and last.get("Id"):
                position = {"modified": str(last["LastModifiedDate"]), "id": str(last["Id"])}
            total = body.get("totalSize") if isinstance(body.get("totalSize"), int) else None
            yield Page(self.parse_all(stream, payloads, id_of=lambda p: p.get("Id")), dict(position), total=total)

    def _campaigns(self, contact_ids: list[str]) -> dict[str, list[str]]:
        """Contact Id → its campaigns' names: one CampaignMember query for a page of Contacts."""
        if not self._campaigns_readable or not contact_ids:
            return {}
        members: list[dict[str, Any]] = []
        try:
            for run in mapping.chunked(contact_ids):
                members += self.api.query_all(mapping.campaign_query(run))
        except (BadResponse, PermissionDenied) as error:
            # Campaigns off, or hidden from the user: contacts still sync, without campaign tags.
            self._campaigns_readable = False
            logger.warning("Salesforce campaign members are unreadable: %s", error)
            return {}
        return mapping.campaign_names(members)

    def parse(self, stream: str, payload: Any) -> Record:
        if stream == "customers":
            return mapping.map_contact(payload)
        raise ConfigurationError(f"Salesforce has no “{stream}” stream to read.")

    # --- Push ---

    def push(self, stream: str, contacts: list) -> PushOutcome:
        if stream not in self.push_streams:
            return super().push(stream, contacts)
        return salesforce_push.push(self, contacts)
