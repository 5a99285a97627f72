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

Consent (campaigns.consent), for the connection's tenant, after the message's status:
- Twilio incoming messages (topic `message.inbound`): STOP, STOPALL, UNSUBSCRIBE, CANCEL, END and
  QUIT (the whole body, any case) suppress the sender's number; START, YES and UNSTOP lift that
  (unless a person added it by hand); HELP and INFO are only recorded, Twilio answers them. With
  Advanced Opt-Out, Twilio's `OptOutType` names the kind for custom keywords too. The latest word
  from a number decides: an earlier one processed late changes nothing.
- Twilio status callbacks with ErrorCode 21610 (the person had replied STOP) suppress the number.
- SendGrid `unsubscribe`/`group_unsubscribe`, `spamreport`, a hard `bounce`, and a `dropped` whose
  reason is a bounced, unsubscribed or spam-reporting address suppress the address; a soft bounce
  (type `blocked`) does at the third since the address's last delivery (`soft_bounces`).
A suppression is counted against the campaign whose message the event is about.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent

from .consent import normalise, suppress, unsuppress
from .messaging import E164, NOT_ARRIVED, move, record_engagement
from .models import Channel, Message, MessageStatus, Recipient, Suppression, SuppressionReason

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


# --- Consent -----------------------------------------------------------------------------------------
# What the providers report about a person's consent, applied to the tenant's suppression list
# (campaigns.consent) after the message's own status. Each step is idempotent (an address already
# suppressed stays as it is), so a duplicate or replayed event changes nothing.

OPT_OUT, OPT_IN, HELP = "opt-out", "opt-in", "help"
# Twilio's standard keywords: the whole body, in any case, spaces trimmed ("STOP please" is none).
SMS_KEYWORDS = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), OPT_OUT),
    **dict.fromkeys(("START", "YES", "UNSTOP"), OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), HELP),
}
# With Advanced Opt-Out (a messaging service), Twilio names the kind itself, custom keywords included.
OPT_OUT_TYPES = {"STOP": OPT_OUT, "START": OPT_IN, "HELP": HELP}
TWILIO_UNSUBSCRIBED = "21610"  # "the recipient replied STOP": Twilio refuses to send to the number
SOFT_BOUNCE = "soft_bounce"
SOFT_BOUNCES = 3  # soft bounces (SendGrid's "blocked") since the address's last delivery that suppress it
SOFT_BOUNCE_WINDOW = timedelta(days=30)
# A STOP reply counts against the campaign last sent to the number through the connection this recently.
STOP_ATTRIBUTION = timedelta(days=30)
DROPPED_REASONS = (
    ("bounced address", SuppressionReason.BOUNCED),
    ("unsubscribed address", SuppressionReason.UNSUBSCRIBED),
    ("spam reporting address", SuppressionReason.SPAM_REPORT),
)


def with_consent(handle: Handler, consent: Handler) -> Handler:
    """The message's status first (which may ask for a retry), then the consent the event carries."""

    def both(event: WebhookEvent) -> str:
        outcome = handle(event)
        said = consent(event)
        return f"{outcome}; {said}" if said else outcome

    return both


def tenant_of(event: WebhookEvent) -> int:
    if event.tenant_id != event.connection.tenant_id:
        raise Unprocessable("The event's tenant is not its connection's.")
    return event.connection.tenant_id


def message_of(event: WebhookEvent, change: Change) -> Message | None:
    scope = Message.objects.for_tenant(tenant_of(event)).filter(connection_id=event.connection_id)
    return find(scope, change)


def campaign_of(message: Message | None) -> int | None:
    if message is None:
        return None
    recipients = Recipient.objects.for_tenant(message.tenant_id).filter(message_id=message.pk)
    return recipients.values_list("campaign_id", flat=True).first()


def sms_keyword(data: dict) -> tuple[str, str]:
    """(the kind of keyword, a label for it), or ("", "") for an ordinary text."""
    word = " ".join(str(data.get("Body") or "").split()).upper()
    if word in SMS_KEYWORDS:
        return SMS_KEYWORDS[word], word
    declared = str(data.get("OptOutType") or "").upper()
    if declared in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[declared], declared
    return "", ""


def inbound_sms(event: WebhookEvent) -> str:
    """An incoming text: STOP and the other opt-out keywords suppress the sender's number for the
    connection's tenant, START/YES/UNSTOP lift that, HELP/INFO are only recorded (Twilio answers
    them), anything else is recorded and left alone."""
    data = event.data
    if not isinstance(data, dict):
        raise Unprocessable("The payload is not a form of Twilio's parameters.")
    tenant_id = tenant_of(event)
    kind, word = sms_keyword(data)
    if not kind:
        return "An incoming message, not an opt-out keyword: recorded."
    if kind == HELP:
        return f"{word}: recorded (Twilio answers it)."
    number = normalise(Channel.SMS, str(data.get("From") or ""))
    if not E164.match(number):
        return f"{word} from a sender that is not a phone number: left alone."
    if said_later(event, tenant_id, str(data.get("From") or "")):
        return f"{word}: a later opt-out or opt-in from the number decides; left alone."
    if kind == OPT_OUT:
        new = suppress(
            tenant_id,
            Channel.SMS,
            number,
            SuppressionReason.STOP,
            detail=f"replied {word}",
            campaign=last_campaign_to(event, tenant_id, number),
        )
        return f"{word}: number suppressed." if new else f"{word}: number already suppressed."
    scope = Suppression.objects.for_tenant(tenant_id).filter(channel=Channel.SMS, address=number)
    held = scope.values_list("reason", flat=True).first()
    if held is None:
        return f"{word}: the number was not suppressed."
    if held == SuppressionReason.MANUAL:
        # A person put it there (a complaint, a legal request); a person takes it off.
        return f"{word}: the number was suppressed by hand and stays so."
    unsuppress(tenant_id, Channel.SMS, number)
    return f"{word}: the number may receive campaigns again."


def said_later(event: WebhookEvent, tenant_id: int, sender: str) -> bool:
    """Whether the number sent an opt-out or opt-in keyword after this one (stored later): the
    latest word decides, so an earlier one processed late (a retry) changes nothing."""
    later = (
        WebhookEvent.objects.for_tenant(tenant_id)
        .filter(provider="twilio", topic="message.inbound", signature_valid=True, pk__gt=event.pk)
        .filter(payload__From=sender)
        .values_list("payload", flat=True)
    )
    return any(isinstance(data, dict) and sms_keyword(data)[0] in (OPT_OUT, OPT_IN) for data in later[:100])


def last_campaign_to(event: WebhookEvent, tenant_id: int, number: str) -> int | None:
    recipients = Recipient.objects.for_tenant(tenant_id).filter(
        address=number,
        message__connection_id=event.connection_id,
        message__created_at__gte=event.received_at - STOP_ATTRIBUTION,
    )
    return recipients.order_by("-message__created_at").values_list("campaign_id", flat=True).first()


def twilio_consent(event: WebhookEvent) -> str:
    """Twilio's error 21610 on a status callback: the person had replied STOP to the sending number."""
    data = event.data
    if str(data.get("ErrorCode") or "") != TWILIO_UNSUBSCRIBED:
        return ""
    message = message_of(event, read_twilio(data))
    number = normalise(Channel.SMS, message.to if message else str(data.get("To") or ""))
    if not E164.match(number):
        return "error 21610 names no phone number: nothing suppressed"
    new = suppress(
        tenant_of(event),
        Channel.SMS,
        number,
        SuppressionReason.STOP,
        detail=f"twilio error {TWILIO_UNSUBSCRIBED}",
        campaign=campaign_of(message),
    )
    return "number suppressed (error 21610)" if new else "number already suppressed"


def sendgrid_reason(data: dict) -> tuple[str, str]:
    """(the suppression reason, its detail) a SendGrid event carries, or ("", "")."""
    name = str(data.get("event") or "")
    if name in ("unsubscribe", "group_unsubscribe"):
        group = data.get("asm_group_id")
        return SuppressionReason.UNSUBSCRIBED, f"sendgrid {name}" + (f" (group {group})" if group else "")
    if name == "spamreport":
        return SuppressionReason.SPAM_REPORT, "sendgrid spamreport"
    if name == "bounce":
        if str(data.get("type") or "").lower() == "blocked":
            return SOFT_BOUNCE, ""
        code = str(data.get("status") or "")
        return SuppressionReason.BOUNCED, f"sendgrid bounce {code}".strip()
    if name == "dropped":
        said = str(data.get("reason") or "")
        for phrase, reason in DROPPED_REASONS:
            if phrase in said.lower():
                return reason, f"sendgrid dropped: {said}"
    return "", ""


def sendgrid_consent(event: WebhookEvent) -> str:
    data = event.data
    reason, detail = sendgrid_reason(data)
    if not reason:
        return ""
    message = message_of(event, read_sendgrid(data))
    address = normalise(Channel.EMAIL, str(data.get("email") or "") or (message.to if message else ""))
    if not address:
        return "the event names no address: nothing suppressed"
    tenant_id = tenant_of(event)
    if reason == SOFT_BOUNCE:
        count = soft_bounces(event, tenant_id, address)
        if count < SOFT_BOUNCES:
            return f"soft bounce {count} of {SOFT_BOUNCES} before the address is suppressed"
        reason, detail = SuppressionReason.BOUNCED, f"sendgrid: {count} soft bounces"
    new = suppress(tenant_id, Channel.EMAIL, address, reason, detail=detail, campaign=campaign_of(message))
    return f"address suppressed ({reason})" if new else "address already suppressed"


def soft_bounces(event: WebhookEvent, tenant_id: int, address: str) -> int:
    """How many messages to the address SendGrid reported blocked (a soft bounce), across the
    tenant's SendGrid connections, within SOFT_BOUNCE_WINDOW and since the last delivery to it.
    Counted from the stored events (this one included), one per message, so a repeated event
    never counts twice."""
    since = event.received_at - SOFT_BOUNCE_WINDOW
    events = WebhookEvent.objects.for_tenant(tenant_id).filter(
        provider="sendgrid", signature_valid=True, received_at__gte=since, payload__email__iexact=address
    )
    delivered = events.filter(topic="delivered").aggregate(at=Max("received_at"))["at"]
    if delivered is not None:
        events = events.filter(received_at__gt=delivered)
    blocked = events.filter(topic="bounce", payload__type="blocked").order_by().values_list("resource_id", "event_id")
    return len({resource or event_id for resource, event_id in blocked})


# --- The registry ------------------------------------------------------------------------------------

CONSENT_EVENTS = frozenset({"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"})

HANDLERS: dict[tuple[str, str], Handler] = {
    ("twilio", "message.status"): with_consent(handler(read_twilio), twilio_consent),
    ("twilio", "message.inbound"): inbound_sms,
}
HANDLERS.update(
    {
        ("sendgrid", topic): with_consent(handler(read_sendgrid), sendgrid_consent)
        if topic in CONSENT_EVENTS
        else handler(read_sendgrid)
        for topic in SENDGRID_EVENTS
    }
)
