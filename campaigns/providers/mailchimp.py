"""Mailchimp campaigns to one audience over the Marketing API 3.0 (no `mailchimp_marketing` package).

- The API key is the HTTP Basic password (any user name); its suffix is the data center
  (`…-us21` → https://us21.api.mailchimp.com/3.0). The connection's base URL replaces that host (a
  local fake in tests). Mailchimp's error answers are problem documents ({type, title, status,
  detail, instance}): their title and detail are carried in the error.
- Audience sync upserts at most 500 members per `POST /lists/{id}` with `update_existing`. That
  endpoint also applies the `status` sent to existing members ("whether this batch operation will
  change existing members' subscription status"), so sending `subscribed` for everyone would
  re-subscribe people who unsubscribed. Before the first batch, the hub therefore reads the
  audience's unsubscribed, cleaned, pending and transactional members once (`GET
  /lists/{id}/members?status=…`, 1,000 a page, addresses and statuses only; subscribers, usually
  the bulk of an audience, are not read). Unsubscribed and cleaned people are left out of the
  batch entirely (`skipped_unsubscribed`); pending and transactional ones are sent with the
  status they hold, so their merge fields change and their status does not; everyone else is sent
  `subscribed`, which subscribes a new address and changes nothing for a subscriber. An archived
  contact counts as new: archiving is the account's housekeeping, not the person's choice. The
  gap left: someone who unsubscribes in the seconds between that read and their batch would be
  re-subscribed. `PUT /lists/{id}/members/{hash}` with `status_if_new` closes it, at one request
  per person, which a sync of thousands cannot afford against 10 connections.
- A campaign goes to a new static segment of exactly the given addresses, filled 500 at a time
  through `members_to_add`. An address the audience does not hold is refused before anything is
  created but that segment, which is deleted again (`NotInAudience`): the caller syncs first.
  Then a regular campaign to the segment, its content (html and plain_text) and `actions/send`.
- The send action is a POST sent once, never retried: after a timeout or a 5xx it may have gone
  out, so `SendUnconfirmed` carries the campaign id for a person to look it up in Mailchimp.
- Mailchimp Marketing sends no single transactional email (Mailchimp Transactional, formerly
  Mandrill, is another product): `send_email` refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, ConfigurationError, IntegrationError, NotFound, Unavailable
from integrations.http import Hints

from .base import EmailMessage, MessagingProvider, SendResult

BATCH = 500  # members per batch upsert and addresses per segment update: Mailchimp's limit
PAGE = 1000  # members per page read: Mailchimp's largest `count`
NEVER_RESUBSCRIBED = ("unsubscribed", "cleaned")
KEPT = ("pending", "transactional")  # sent back with the status they hold
DATA_CENTER = re.compile(r"[a-z]+\d+")
HINTS = {
    401: "Check the API key in Mailchimp (Profile → Extras → API keys): it may have been disabled.",
    403: "The Mailchimp account or API key may not do this (a disabled account, or a user role without access).",
    429: "Mailchimp allows 10 simultaneous connections per account; try again shortly.",
}
HINT_AUDIENCE = "Copy the Audience ID from Mailchimp: Audience → Settings → Audience name and defaults."


@dataclass(frozen=True)
class AudienceMember:
    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    tags: tuple[str, ...] = ()
    merge_fields: dict[str, str] = field(default_factory=dict)  # extra, e.g. {"ORDERS": "3"}


@dataclass
class AudienceResult:
    created: int = 0
    updated: int = 0
    skipped_unsubscribed: int = 0  # existing members who unsubscribed in Mailchimp: never re-subscribed
    failed: list[tuple[str, str]] = field(default_factory=list)  # (email, Mailchimp's reason)


@dataclass(frozen=True)
class CampaignSend:
    subject: str
    html: str
    text: str
    emails: tuple[str, ...]  # exactly who gets it (already filtered for consent by the caller)
    title: str = ""  # campaign title in Mailchimp
    from_name: str = ""
    reply_to: str = ""  # empty: the audience's default from email


class NotInAudience(ConfigurationError):
    """Recipients the audience does not hold; nothing was sent. `emails` lists them."""

    def __init__(self, message: str, *, emails: list[str], hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.emails = emails


class SendUnconfirmed(Unavailable):
    """The send action got no answer (a timeout, a 5xx): the campaign may have gone out."""

    def __init__(self, message: str, *, campaign_id: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint=hint, status=status)
        self.campaign_id = campaign_id


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 of the lower-case address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def describe(response: requests.Response) -> str:
    """A problem document's title and detail, and its field errors when it has some."""
    problem = response.json()
    if not isinstance(problem, dict):
        return ""
    said = ": ".join(str(problem[key]) for key in ("title", "detail") if problem.get(key))
    fields = "; ".join(
        f"{item.get('field')}: {item.get('message')}" if item.get("field") else str(item.get("message"))
        for item in problem.get("errors") or []
        if isinstance(item, dict)
    )
    return f"{said} ({fields})" if fields else said


class MailchimpProvider(MessagingProvider):
    platform = "mailchimp"
    channel = "email"
    sends_one_off = False  # campaigns only, through send_campaign

    def __init__(self, connection, *, client=None) -> None:
        super().__init__(connection, client=client)
        self.client.hints = Hints(
            by_status=HINTS,
            describe=describe,
            timeout="Mailchimp did not answer in time.",
            connection="Mailchimp could not be reached.",
        )

    def send_email(self, message: EmailMessage) -> SendResult:
        raise ConfigurationError(
            "Mailchimp Marketing cannot send a single transactional email.",
            hint="Send one-off email through a SendGrid connection; Mailchimp sends campaigns to its audience.",
        )

    def check(self) -> CheckResult:
        """The key (`/ping`), then the audience when one is set, each read once without retries."""
        started = time.monotonic()
        audience_id = str(self.credentials.get("audience_id") or "").strip()
        try:
            self._json("GET", "/ping", retry=False)
            fields = {"fields": "id,name,stats.member_count"}
            audience = self._audience("GET", params=fields, retry=False) if audience_id else {}
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=_since(started))
        if not audience_id:
            return CheckResult(
                ok=True,
                message="Connected to Mailchimp.",
                warnings=[f"No audience ID is set: campaigns need one. {HINT_AUDIENCE}"],
                latency_ms=_since(started),
            )
        name = str(audience.get("name") or audience_id)
        subscribed = (audience.get("stats") or {}).get("member_count")
        return CheckResult(
            ok=True,
            message=f"Connected to Mailchimp: audience “{name}”, {subscribed} subscribed.",
            latency_ms=_since(started),
            details={"audience_id": audience_id, "audience": name, "subscribed": subscribed},
        )

    def sync_audience(self, members: Iterable[AudienceMember]) -> AudienceResult:
        """Upsert the members, 500 a call: new addresses subscribed, no status Mailchimp holds changed
        (see the module's docstring)."""
        wanted = {subscriber_hash(m.email): m for m in members if m.email.strip()}
        result = AudienceResult()
        if not wanted:
            return result
        held = {
            subscriber_hash(str(member.get("email_address") or "")): status
            for status in NEVER_RESUBSCRIBED + KEPT
            for member in self._members(status=status, fields="members.email_address,total_items")
        }
        batch = []
        for key, member in wanted.items():
            status = held.get(key, "subscribed")
            if status in NEVER_RESUBSCRIBED:
                result.skipped_unsubscribed += 1
            else:
                batch.append(member_body(member, status))
        for start in range(0, len(batch), BATCH):
            answer = self._audience("POST", json={"members": batch[start : start + BATCH], "update_existing": True})
            result.created += int(answer.get("total_created") or len(answer.get("new_members") or []))
            result.updated += int(answer.get("total_updated") or len(answer.get("updated_members") or []))
            result.failed += [
                (str(item.get("email_address") or ""), str(item.get("error") or item.get("error_code") or ""))
                for item in answer.get("errors") or []
                if isinstance(item, dict)
            ]
        return result

    def unsubscribed_since(self, since: datetime | None) -> list[tuple[str, datetime]]:
        """Members who unsubscribed or were cleaned (bounced) since `since`, oldest first, with the time
        Mailchimp last changed them."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        when = since.astimezone(UTC).isoformat(timespec="seconds") if since else None
        found: list[tuple[str, datetime]] = []
        # `unsubscribed_since` filters on the unsubscribe itself but only with status=unsubscribed.
        for status, after in (("unsubscribed", "unsubscribed_since"), ("cleaned", "since_last_changed")):
            params = {"status": status, "fields": "members.email_address,members.last_changed,total_items"}
            if when:
                params[after] = when
            for member in self._members(**params):
                if member.get("email_address"):
                    found.append((str(member["email_address"]), _time(member.get("last_changed"))))
        return sorted(found, key=lambda item: item[1])

    def send_campaign(self, send: CampaignSend) -> str:
        """Send to exactly `send.emails`; returns Mailchimp's campaign id."""
        emails = list({e.strip().lower(): e.strip() for e in send.emails if e.strip()}.values())
        if not emails or not send.subject or not send.html:
            raise ValueError("A campaign needs recipients, a subject and an HTML body.")
        defaults = self._audience("GET", params={"fields": "id,name,campaign_defaults"}).get("campaign_defaults") or {}
        from_name = send.from_name or str(defaults.get("from_name") or "")
        reply_to = send.reply_to or str(defaults.get("from_email") or "")
        if not (from_name and reply_to):
            raise ConfigurationError(
                "The campaign has no from name or reply-to address, and the audience has no default.",
                hint="Set them in Mailchimp: Audience → Settings → Audience name and defaults.",
            )
        segment_id = self._segment_of(send.title or send.subject, emails)
        audience_id = self.credential("audience_id")
        recipients = {"list_id": audience_id, "segment_opts": {"saved_segment_id": segment_id}}
        settings = {"subject_line": send.subject, "title": send.title or send.subject}
        settings |= {"from_name": from_name, "reply_to": reply_to}
        body = {"type": "regular", "recipients": recipients, "settings": settings}
        campaign = self._json("POST", "/campaigns", json=body)
        campaign_id = str(campaign.get("id") or "")
        if not campaign_id:
            raise BadResponse("Mailchimp created the campaign but gave no id.")
        content = {"html": send.html, **({"plain_text": send.text} if send.text else {})}
        self._request("PUT", f"/campaigns/{quote(campaign_id)}/content", json=content)
        try:
            self._request("POST", f"/campaigns/{quote(campaign_id)}/actions/send", retry=False)
        except Unavailable as error:
            raise SendUnconfirmed(
                f"Mailchimp did not confirm sending campaign {campaign_id}: it may have gone out.",
                campaign_id=campaign_id,
                hint="Look the campaign up in Mailchimp before sending it again.",
                status=error.status,
            ) from error
        return campaign_id

    def campaign_report(self, campaign_id: str) -> dict[str, int]:
        try:
            report = self._json("GET", f"/reports/{quote(campaign_id)}")
        except NotFound as error:
            raise NotFound(f"Mailchimp has no report of campaign {campaign_id} (not sent yet?).", status=404) from error
        bounces, opens, clicks = (report.get(key) or {} for key in ("bounces", "opens", "clicks"))
        sent = _int(report.get("emails_sent"))
        bounced = _int(bounces.get("hard_bounces")) + _int(bounces.get("soft_bounces"))
        return {
            "sent": sent,
            "delivered": max(0, sent - bounced),
            "opened": _int(opens.get("unique_opens")),
            "clicked": _int(clicks.get("unique_subscriber_clicks", clicks.get("unique_clicks"))),
            "bounced": bounced,
            "unsubscribed": _int(report.get("unsubscribed")),
            "abuse_reports": _int(report.get("abuse_reports")),
        }

    # --- Requests ---

    def _segment_of(self, title: str, emails: list[str]) -> int:
        """A new static segment of exactly `emails`; refused (and deleted) when one is not a member."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        name = f"{title[:60]} · hub {stamp} {uuid.uuid4().hex[:6]}"
        segment = self._audience("POST", "/segments", json={"name": name, "static_segment": []})
        segment_id = segment.get("id")
        if not isinstance(segment_id, int):
            raise BadResponse("Mailchimp created the segment but gave no id.")
        path = f"/lists/{quote(self.credential('audience_id'))}/segments/{segment_id}"
        missing: list[str] = []
        for start in range(0, len(emails), BATCH):
            chunk = emails[start : start + BATCH]
            answer = self._json("POST", path, json={"members_to_add": chunk})
            added = {str(m.get("email_address") or "").lower() for m in answer.get("members_added") or []}
            missing += [email for email in chunk if email.lower() not in added]
        if missing:
            with contextlib.suppress(IntegrationError):  # an unused segment left behind harms nothing
                self._request("DELETE", path)
            raise NotInAudience(
                f"{len(missing)} of the {len(emails)} recipients are not in the Mailchimp audience: nothing was sent.",
                emails=missing,
                hint="Sync the audience first, or leave them out.",
            )
        return segment_id

    def _members(self, **params: str) -> Iterator[dict[str, Any]]:
        """Every member matching `params`, a page of 1,000 at a time."""
        offset = 0
        while True:
            page = self._audience("GET", "/members", params={**params, "count": PAGE, "offset": offset})
            found = [m for m in page.get("members") or [] if isinstance(m, dict)]
            yield from found
            offset += len(found)
            if not found or offset >= _int(page.get("total_items")):
                return

    def _audience(self, method: str, path: str = "", **kwargs: Any) -> dict[str, Any]:
        """A request about the audience, whose 404 says which audience is unknown."""
        audience_id = self.credential("audience_id")
        try:
            return self._json(method, f"/lists/{quote(audience_id)}{path}", **kwargs)
        except NotFound as error:
            raise ConfigurationError(
                f"Mailchimp has no audience “{audience_id}” for this API key.", hint=HINT_AUDIENCE, status=404
            ) from error

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BadResponse("Mailchimp answered something the hub cannot read.", status=response.status_code)
        return data

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        key = self.credential("api_key")
        data_center = key.rpartition("-")[2] if "-" in key else ""
        if not DATA_CENTER.fullmatch(data_center):
            raise ConfigurationError(
                "The Mailchimp API key has no data center suffix (it ends in something like -us21).",
                hint="Copy the whole key from Mailchimp (Profile → Extras → API keys).",
            )
        base = (self.connection.base_url or "").strip().rstrip("/") or f"https://{data_center}.api.mailchimp.com"
        headers = {"Accept": "application/json"}
        return self.client.request(method, f"{base}/3.0{path}", auth=("anystring", key), headers=headers, **kwargs)


def member_body(member: AudienceMember, status: str) -> dict[str, Any]:
    """One member of a batch upsert; empty names are left out so they never blank Mailchimp's."""
    named = {"FNAME": member.first_name, "LNAME": member.last_name, "PHONE": member.phone}
    merge_fields = {tag: value for tag, value in {**named, **member.merge_fields}.items() if value}
    body: dict[str, Any] = {"email_address": member.email.strip(), "status": status}
    if merge_fields:
        body["merge_fields"] = merge_fields
    if member.tags:
        body["tags"] = list(member.tags)
    return body


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime:
    """Mailchimp's ISO 8601 time; the present when it gives none (a suppression is kept regardless)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
