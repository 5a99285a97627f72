"""Provider delivery events applied to messages: `HANDLERS`, by (provider, topic), merged into the
webhooks app's registry (`webhooks.processing.handlers`).

- Twilio's status callbacks (topic `message.status`: MessageSid, MessageStatus, ErrorCode) carry no
  time of their own: the hub's receipt time stands for it.
- SendGrid's Event Webhook gives one event per batch item, its topic the event's name; the message
  is found by `sg_message_id` (which starts with the `X-Message-Id` the send answered) or by the
  hub's own id in the custom args (`hub_message_id`), its time is the event's `timestamp`.

A message is looked for among the connection's own messages only (so within its tenant). Its status
moves by `messaging.move` (forward only); opens and clicks are counted whatever it does. An event
about a message not sent through the hub is left alone; one that may be about a message whose send
answer is still being recorded is retried (`NotYet`); a payload that does not read is parked.
Duplicates never reach here: the pipeline stores each (provider, event id) once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent

from .messaging import NOT_ARRIVED, move, record_engagement
from .models import Message, MessageStatus

Handler = Callable[[WebhookEvent], str]
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, OSError)
# A message stored this recently with no provider id yet may be the one an event names before the
# send's answer is recorded: such an event is retried, not dropped.
IN_FLIGHT = timedelta(minutes=10)

TWILIO_STATUSES = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
    "read": MessageStatus.OPENED,
}
SENDGRID_EVENTS = {
    "delivered": MessageStatus.DELIVERED,
    "open": MessageStatus.OPENED,
    "click": MessageStatus.CLICKED,
    "bounce": MessageStatus.BOUNCED,
    "dropped": MessageStatus.DROPPED,
    "spamreport": MessageStatus.SPAM_REPORT,
    "unsubscribe": MessageStatus.UNSUBSCRIBED,
    "group_unsubscribe": MessageStatus.UNSUBSCRIBED,
}
ENGAGEMENT = (MessageStatus.OPENED, MessageStatus.CLICKED)


class NotYet(LookupError):
    """The event may be about a message whose send answer is still being recorded: retried."""


@dataclass
class Change:
    status: str
    provider_id: str = ""
    hub_id: str = ""
    at: datetime | None = None
    failure_code: str = ""
    failure_message: str = ""


def read_twilio(data: dict) -> Change:
    reported = str(data["MessageStatus"]).lower()
    if reported not in TWILIO_STATUSES:
        raise ValueError(f"unknown MessageStatus {reported!r}")
    code = str(data.get("ErrorCode") or "")
    return Change(
        status=TWILIO_STATUSES[reported],
        provider_id=str(data.get("MessageSid") or data["SmsSid"]),
        failure_code=code,
        failure_message=str(data.get("ErrorMessage") or (f"Twilio error {code}." if code else "")),
    )


def read_sendgrid(data: dict) -> Change:
    status = SENDGRID_EVENTS[str(data["event"])]
    custom = data.get("custom_args") if isinstance(data.get("custom_args"), dict) else {}
    stamp = data.get("timestamp")
    at = datetime.fromtimestamp(int(stamp), tz=UTC) if stamp not in (None, "") else None
    code = str(data.get("status") or data.get("type") or "") if status in (MessageStatus.BOUNCED,) else ""
    return Change(
        status=status,
        # SendGrid's message id is the X-Message-Id the send answered, then a dot and its own suffix.
        provider_id=str(data.get("sg_message_id") or "").split(".")[0],
        hub_id=str(data.get("hub_message_id") or custom.get("hub_message_id") or ""),
        at=at,
        failure_code=code,
        failure_message=str(data.get("reason") or ""),
    )


def handler(read: Callable[[dict], Change]) -> Handler:
    def handle(event: WebhookEvent) -> str:
        data = event.data
        if not isinstance(data, dict):
            raise Unprocessable("The payload is not a JSON object.")
        try:
            change = read(data)
        except MALFORMED as exc:
            raise Unprocessable(f"The {event.topic} payload does not read: {type(exc).__name__}: {exc}") from exc
        return apply(event, change, data)

    return handle


def apply(event: WebhookEvent, change: Change, data: dict) -> str:
    if event.tenant_id != event.connection.tenant_id:
        raise Unprocessable("The event's tenant is not its connection's.")
    scope = Message.objects.for_tenant(event.tenant_id).filter(connection_id=event.connection_id)
    found = find(scope, change)
    if found is None:
        return not_found(scope, change)
    message = scope.select_for_update().get(pk=found.pk)
    at = change.at or event.received_at
    before = message.status
    if not message.provider_id and change.provider_id:  # found by the hub's own id before its answer
        message.provider_id = change.provider_id[:128]
    if change.status in ENGAGEMENT:
        record_engagement(message, change.status, at)
    applied = move(message, change.status, at)
    if applied and change.status in NOT_ARRIVED and (change.failure_code or change.failure_message):
        message.failure_code = change.failure_code[:64]
        message.failure_message = change.failure_message
    message.raw = data
    message.updated_at = timezone.now()
    message.save()
    if not applied:
        return f"message {message.pk} left {message.status}: the {change.status} event is older or behind it"
    if message.status != before:
        return f"message {message.pk}: {before} → {message.status}"
    return f"message {message.pk} {message.status}"


def find(scope, change: Change) -> Message | None:
    if change.provider_id:
        message = scope.filter(provider_id=change.provider_id).first()
        if message is not None:
            return message
    if change.hub_id:
        try:
            return scope.filter(uuid=uuid.UUID(change.hub_id)).first()
        except ValueError:
            return None
    return None


def not_found(scope, change: Change) -> str:
    in_flight = scope.filter(
        status=MessageStatus.QUEUED, provider_id="", created_at__gte=timezone.now() - IN_FLIGHT
    ).exists()
    name = change.provider_id or change.hub_id or "(none)"
    if in_flight:
        raise NotYet(f"No message has the id {name} yet; one is waiting for its provider's answer.")
    return f"No message sent through the hub has the id {name}: left alone."


HANDLERS: dict[tuple[str, str], Handler] = {("twilio", "message.status"): handler(read_twilio)}
HANDLERS.update({("sendgrid", topic): handler(read_sendgrid) for topic in SENDGRID_EVENTS})
