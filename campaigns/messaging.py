"""Sending one-off messages through a tenant's messaging connections, and the one rule for moving a
message's status (the API, the admin and the status webhooks call these).

- The hub checks before asking: a phone number must be E.164 (`+` and 7 to 15 digits), an email
  address must pass Django's `validate_email`, and the connection must be the tenant's own, enabled
  and of the right channel. What it refuses is raised as `MessageError` (the API's 400).
- The message is stored first (queued), then the provider is asked with the message's uuid as its
  reference and, for SMS, the hub's Twilio webhook address for the connection as the status
  callback. The provider's answer (queued/sent with its id, or failed with its reason) is recorded.
- A provider error is recorded on the message as failed, with the reason, never raised at the
  caller. A passing one (Unavailable, RateLimited, a timeout) is never re-sent by the hub: the
  message may have gone out, so it is marked failed with code `unconfirmed`, and a later delivery
  event that finds it by the hub's id (SendGrid's custom args) still moves it on.
- An HTML email without a text part gets one derived from the HTML (`text_alternative`).
- Statuses only move forward (`move`): queued → sent → delivered → opened → clicked, and the
  terminal ones (undelivered, failed, bounced, dropped, reported as spam, unsubscribed) stay. A
  failure older than a delivery the hub already holds is left behind it. Opens and clicks are
  counted whatever the status.

Bodies, phone numbers and email addresses are never logged.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import requests
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from integrations.errors import IntegrationError, RateLimited, Unavailable
from tenants import audit

from .models import Channel, Message, MessageStatus, Priority
from .providers import PROVIDERS, get_provider
from .providers.base import EmailMessage, SendResult, SmsMessage

if TYPE_CHECKING:
    from integrations.models import Connection
    from tenants.models import Tenant

logger = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SMS_MAX_CHARS = 1600  # Twilio's limit for one message body (it splits it into segments)
SUBJECT_MAX_CHARS = 998  # RFC 5322's line limit
# A failure recorded by the hub itself when the provider did not answer: the message may have gone.
UNCONFIRMED = "unconfirmed"

# How far along a status is; a message never moves to a lower rank.
RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.OPENED: 3,
    MessageStatus.CLICKED: 4,
    MessageStatus.UNDELIVERED: 9,
    MessageStatus.FAILED: 9,
    MessageStatus.BOUNCED: 9,
    MessageStatus.DROPPED: 9,
    MessageStatus.SPAM_REPORT: 9,
    MessageStatus.UNSUBSCRIBED: 9,
}
TERMINAL = frozenset(s for s, rank in RANK.items() if rank == 9)
# Terminal states that say the message did not arrive (as opposed to the recipient's reaction to it).
NOT_ARRIVED = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.BOUNCED, MessageStatus.DROPPED})


class MessageError(Exception):
    """A request the hub refuses before asking the provider, with the field it is about."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- Validation ------------------------------------------------------------------------------------


def check_phone(value: str, *, field: str = "to") -> str:
    number = re.sub(r"[\s\-().]", "", str(value or ""))
    if not E164.match(number):
        raise MessageError(
            "Give the phone number in E.164 form: + then the country code and number, digits only, e.g. +14155552671.",
            field=field,
        )
    return number


def check_email(value: str, *, field: str = "to") -> str:
    address = str(value or "").strip()
    try:
        validate_email(address)
    except ValidationError:
        raise MessageError("Give a valid email address, e.g. customer@example.com.", field=field) from None
    return address


def check_priority(value: str) -> str:
    priority = str(value or Priority.NORMAL)
    if priority not in Priority.values:
        raise MessageError(f"Use one of {', '.join(Priority.values)}.", field="priority")
    return priority


# --- The text alternative ----------------------------------------------------------------------------

BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
HIDDEN = frozenset({"script", "style", "head", "title", "template"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[tuple[str, int]] = []  # (href, where its text starts)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in HIDDEN:
            self.hidden += 1
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self.parts)))
        elif tag == "img" and (alt := dict(attrs).get("alt")):
            self.parts.append(alt)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = " ".join("".join(self.parts[start:]).split())
            if href.startswith(("http://", "https://", "mailto:", "tel:")) and href not in (text, f"mailto:{text}"):
                self.parts.append(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def text_alternative(html: str) -> str:
    """The plain-text part of an HTML email: tags stripped, links kept as "text (URL)", scripts and
    styles dropped, whitespace collapsed within lines and blank lines kept to one."""
    parser = _Text()
    parser.feed(html or "")
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- Connections -------------------------------------------------------------------------------------


def channel_of(platform: str) -> str:
    path = PROVIDERS.get(platform)
    return import_string(path).channel if path else ""


def sends_one_off(platform: str) -> bool:
    """Whether the platform sends a single message (Mailchimp only sends campaigns to its audience)."""
    path = PROVIDERS.get(platform)
    return bool(path) and import_string(path).sends_one_off


def messaging_connections(tenant: Tenant | int | None, channel: str | None = None, *, one_off: bool = False):
    """The tenant's messaging connections (of one channel when given; `one_off`: only those that
    send a single message)."""
    from integrations.models import Connection

    platforms = [
        p for p in PROVIDERS if (channel is None or channel_of(p) == channel) and (not one_off or sends_one_off(p))
    ]
    return Connection.objects.for_tenant(tenant).filter(platform__in=platforms)


def pick_connection(tenant: Tenant, channel: str, connection_id: int | None = None) -> Connection:
    """The connection a message goes through: the one named, or the tenant's only enabled one."""
    from integrations.models import ConnectionStatus

    label = Channel(channel).label
    connections = messaging_connections(tenant, channel, one_off=True)
    if connection_id:
        connection = connections.filter(pk=connection_id).first()
        if connection is None:
            raise MessageError(f"No {label} connection of yours has this id.", field="connection")
    else:
        found = list(connections.filter(enabled=True).exclude(status=ConnectionStatus.DISABLED)[:2])
        if not found:
            raise MessageError(f"You have no enabled {label} connection.", field="connection")
        if len(found) > 1:
            raise MessageError(f"You have several {label} connections: give the connection id.", field="connection")
        connection = found[0]
    return connection


def _check_connection(tenant: Tenant, connection: Connection, channel: str) -> None:
    from integrations.models import ConnectionStatus

    label = Channel(channel).label
    if connection.tenant_id != tenant.pk or channel_of(connection.platform) != channel:
        raise MessageError(f"No {label} connection of yours has this id.", field="connection")
    if not connection.enabled or connection.status == ConnectionStatus.DISABLED:
        raise MessageError(f"The connection “{connection.name}” is disabled.", field="connection")


def status_callback(connection: Connection) -> str:
    """The hub's Twilio webhook address for the connection (empty without PUBLIC_BASE_URL)."""
    from webhooks.registration import webhook_address

    return webhook_address(connection)


# --- Sending -----------------------------------------------------------------------------------------


def send_sms(
    tenant: Tenant,
    connection: Connection,
    to: str,
    body: str,
    priority: str = Priority.NORMAL,
    *,
    request=None,
    purpose: str = "",
    provider=None,
    audited: bool = True,
) -> Message:
    to = check_phone(to)
    body = str(body or "")
    if not body.strip():
        raise MessageError("The message is empty.", field="body")
    if len(body) > SMS_MAX_CHARS:
        raise MessageError(f"An SMS holds at most {SMS_MAX_CHARS} characters.", field="body")
    priority = check_priority(priority)
    _check_connection(tenant, connection, Channel.SMS)
    message, created = _store(
        purpose, tenant=tenant, connection=connection, channel=Channel.SMS, to=to, body=body, priority=priority
    )
    if not created:
        return message
    sms = SmsMessage(to=to, body=body, reference=str(message.uuid), status_callback=status_callback(connection))
    return _send(message, lambda provider: provider.send_sms(sms), request=request, provider=provider, audited=audited)


def send_email(
    tenant: Tenant,
    connection: Connection,
    to: str,
    subject: str,
    html: str = "",
    text: str = "",
    priority: str = Priority.NORMAL,
    *,
    request=None,
    purpose: str = "",
    headers: dict[str, str] | None = None,
    provider=None,
    audited: bool = True,
) -> Message:
    to = check_email(to)
    subject = " ".join(str(subject or "").split())
    if not subject:
        raise MessageError("Give the email a subject.", field="subject")
    if len(subject) > SUBJECT_MAX_CHARS:
        raise MessageError(f"A subject holds at most {SUBJECT_MAX_CHARS} characters.", field="subject")
    html, text = str(html or ""), str(text or "")
    if not html.strip() and not text.strip():
        raise MessageError("Give the email's content: html, text or both.", field="html")
    if html.strip() and not text.strip():
        text = text_alternative(html)
    priority = check_priority(priority)
    _check_connection(tenant, connection, Channel.EMAIL)
    message, created = _store(
        purpose,
        tenant=tenant,
        connection=connection,
        channel=Channel.EMAIL,
        to=to,
        subject=subject,
        body=text,
        html=html,
        priority=priority,
    )
    if not created:
        return message
    email = EmailMessage(
        to=to, subject=subject, html=html, text=text, reference=str(message.uuid), headers=dict(headers or {})
    )
    return _send(
        message, lambda provider: provider.send_email(email), request=request, provider=provider, audited=audited
    )


def _store(purpose: str, **fields) -> tuple[Message, bool]:
    """The new message, stored before the provider is asked; with a `purpose` (what the message is
    for, e.g. one fulfilment's shipping notice), the one already stored for it, never a second."""
    if not purpose:
        return Message.objects.create(**fields), True
    try:
        with transaction.atomic():
            return Message.objects.create(purpose=purpose, **fields), True
    except IntegrityError:
        return Message.objects.for_tenant(fields["tenant"]).get(purpose=purpose), False


def _send(message: Message, call, *, request=None, provider=None, audited: bool = True) -> Message:
    """Ask the provider (`provider`, made for the message's connection, or a new one) and record its
    answer; `audited` False for the messages of a campaign, which is audited once as a whole."""
    connection = message.connection
    try:
        result: SendResult = call(provider or get_provider(connection))
    except (Unavailable, RateLimited, requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        reason = getattr(exc, "message", "") or "The provider did not answer."
        result = SendResult(
            status=MessageStatus.FAILED,
            failure_code=UNCONFIRMED,
            failure_message=f"{reason} The message may have gone out, so the hub did not send it again.",
        )
    except IntegrationError as exc:
        result = SendResult(
            status=MessageStatus.FAILED, failure_code=_code(exc), failure_message=exc.message or str(exc)
        )
    status = result.status if result.status in RANK else MessageStatus.QUEUED
    message.status = status
    message.provider_id = (result.provider_id or "")[:128]
    message.failure_code = (result.failure_code or "")[:64]
    message.failure_message = result.failure_message or ""
    message.raw = result.raw or {}
    message.status_updated_at = message.updated_at = timezone.now()
    message.save()
    if status == MessageStatus.FAILED:
        logger.warning(
            "Message %s not sent: %s",
            message.pk,
            message.failure_code or "refused",
            extra={"connection": connection.pk},
        )
    if not audited:
        return message
    audit.record(
        "message.sent",
        request=request,
        tenant=message.tenant,
        target=message,
        message=message.pk,
        channel=message.channel,
        provider=connection.platform,
        status=message.status,
    )
    return message


def _code(exc: IntegrationError) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()[:64]


# --- Status ------------------------------------------------------------------------------------------


def move(message: Message, status: str, at: datetime | None) -> bool:
    """Move the message to `status` as of the provider's time `at`, if that is forward. Returns
    whether it applied (a repeat of the status held applies, changing nothing)."""
    at = at or timezone.now()
    current = message.status
    held_since = message.status_updated_at
    if current in TERMINAL:
        # Only the hub's own "may have gone out" failure gives way to what the provider reports.
        if not (current == MessageStatus.FAILED and message.failure_code == UNCONFIRMED):
            return current == status
    elif RANK[status] < RANK[current]:
        return False
    elif (
        status in NOT_ARRIVED
        and RANK[current] >= RANK[MessageStatus.DELIVERED]
        and held_since is not None
        and at <= held_since
    ):
        # A failure reported before the delivery the hub holds is behind it.
        return False
    if current != status:
        message.status = status
        message.status_updated_at = at
        if current == MessageStatus.FAILED:
            message.failure_code = message.failure_message = ""
    elif held_since is None or at > held_since:
        message.status_updated_at = at
    return True


def record_engagement(message: Message, status: str, at: datetime | None) -> None:
    """Count an open or a click (the first one's time kept), whatever the status does."""
    at = at or timezone.now()
    if status == MessageStatus.OPENED:
        message.opens += 1
        message.opened_at = min(message.opened_at, at) if message.opened_at else at
    elif status == MessageStatus.CLICKED:
        message.clicks += 1
        message.clicked_at = min(message.clicked_at, at) if message.clicked_at else at
