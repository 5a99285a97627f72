"""The one small interface every messaging provider implements (Twilio SMS, SendGrid email).

A provider is built from a `Connection` (its encrypted credentials) and offers:

- `send_sms(SmsMessage) -> SendResult` (SMS providers) or `send_email(EmailMessage) -> SendResult`
  (email providers): hand one message to the provider. The answer says whether the provider took
  it (`queued`/`sent`, with its message id) or refused it (`failed`, with its code and reason: a
  number it cannot reach, an unverified sender). Delivery comes later, through the provider's
  status callbacks (the inbound webhook pipeline).
- `check() -> CheckResult`: the admin's Test connection.

Rules every provider keeps:
- The hub's own message id travels with the message (`reference`): Twilio's status callback URL
  carries it, SendGrid's `custom_args` do, so a delivery event finds its message.
- Errors (`integrations.errors`) are for the provider refusing the request itself: AuthError
  (credentials), PermissionDenied, BadResponse (a request it calls invalid, with its message),
  RateLimited and Unavailable (retryable). A recipient the provider refuses is an answer (failed),
  not an exception, where the provider says so per message.
- Requests go through `integrations.http.HttpClient` (or the vendor's package configured to), with
  its timeouts, retries and SSRF guard; `base_url` on the connection points a provider at a fake or
  a Prism mock in tests. A send (a POST that creates a message) is never re-sent blindly after a
  timeout: it may have gone out.
- Message bodies, phone numbers and email addresses are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from integrations.connectors.base import CheckResult
    from integrations.http import HttpClient
    from integrations.models import Connection


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    DROPPED = "dropped", "Dropped"
    SPAM_REPORT = "spam_report", "Reported as spam"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164, e.g. +15005550006 (validated by the caller)
    body: str
    reference: str = ""  # the hub's message id
    status_callback: str = ""  # the hub's address for Twilio's status callbacks
    from_number: str = ""  # empty: the connection's number or messaging service


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    html: str = ""
    text: str = ""  # the plain-text alternative (the caller derives one from the HTML when empty)
    reference: str = ""  # the hub's message id
    from_email: str = ""  # empty: the connection's verified sender
    from_name: str = ""
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe, List-Unsubscribe-Post
    categories: tuple[str, ...] = ()


@dataclass
class SendResult:
    status: str  # a MessageStatus value: queued or sent when taken, failed when refused
    provider_id: str = ""
    failure_code: str = ""
    failure_message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class MessagingProvider:
    """Base for one provider. Subclasses set `platform` and `channel` and implement their send."""

    platform: str = ""
    channel: str = ""  # "sms" or "email"
    # False for a provider that only sends whole campaigns to its own audience (Mailchimp): one-off
    # messages never go through it, and campaigns go through its `send_campaign`.
    sends_one_off: bool = True

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        from django.conf import settings

        from integrations.http import HttpClient, RateBudget

        self.connection = connection
        self.credentials = connection.credentials or {}
        if client is None:
            spec = connection.spec
            cache_id = str(connection.pk) if connection.pk else f"unsaved-{connection.uuid}"
            budget = RateBudget(f"connection:{cache_id}", spec.rate_limit, spec.rate_burst)
            client = HttpClient(budget=budget, allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        self.client = client

    def send_sms(self, message: SmsMessage) -> SendResult:
        raise NotImplementedError(f"{self.platform} does not send SMS.")

    def send_email(self, message: EmailMessage) -> SendResult:
        raise NotImplementedError(f"{self.platform} does not send email.")

    def check(self) -> CheckResult:
        raise NotImplementedError

    def credential(self, name: str) -> str:
        from integrations.errors import ConfigurationError

        value = str(self.credentials.get(name) or "").strip()
        if not value:
            label = next((c.label for c in self.connection.spec.credentials if c.name == name), name)
            raise ConfigurationError(f"The “{label}” credential is missing.", hint="Fill it in on the connection.")
        return value
