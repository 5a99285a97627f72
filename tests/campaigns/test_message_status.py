"""Delivery status from the providers' callbacks through the webhook pipeline: Twilio status
callbacks and SendGrid events move messages forward only, opens and clicks are counted, events
arriving out of order never set a message back, and another tenant's event never touches one."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from campaigns import messaging
from campaigns.models import Message, MessageStatus
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

from .conftest import TWILIO_TOKEN

pytestmark = pytest.mark.django_db

SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
X_MESSAGE_ID = "14c5d75ce93dfd64b469"
T0 = 1_700_000_000  # 2023-11-14: later than every stored state's time below


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def stored(connection, provider_id: str, status=MessageStatus.SENT, channel: str = "sms", **kwargs) -> Message:
    kwargs.setdefault("status_updated_at", datetime(2023, 1, 1, tzinfo=UTC))
    return Message.objects.create(
        tenant=connection.tenant,
        connection=connection,
        channel=channel,
        to="+14155552671" if channel == "sms" else "c@example.com",
        status=status,
        provider_id=provider_id,
        **kwargs,
    )


def deliver(connection, topic: str, payload: dict, event_id: str) -> WebhookEvent:
    """Store the event as the receiver would, and process it as the worker does."""
    event = WebhookEvent.objects.create(
        tenant=connection.tenant,
        connection=connection,
        provider=connection.platform,
        topic=topic,
        event_id=event_id,
        payload=payload,
    )
    processing.process(event.pk)
    event.refresh_from_db()
    return event


def twilio_status(connection, status: str, sid: str = SID, **extra) -> WebhookEvent:
    payload = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": "AC01", **extra}
    return deliver(connection, "message.status", payload, f"{sid}:{status}")


def sendgrid_event(connection, event: str, seconds: int, sg_message_id: str = f"{X_MESSAGE_ID}.filter0001.1", **extra):
    payload = {
        "email": "c@example.com",
        "event": event,
        "timestamp": T0 + seconds,
        "sg_event_id": f"{event}-{seconds}",
        "sg_message_id": sg_message_id,
        **extra,
    }
    return deliver(connection, event, payload, f"{event}-{seconds}")


# --- Twilio -------------------------------------------------------------------------------------------


def test_a_twilio_delivered_callback_delivers_the_message(twilio_a):
    message = stored(twilio_a, SID)
    event = twilio_status(twilio_a, "delivered")
    message.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert message.status == MessageStatus.DELIVERED
    assert f"message {message.pk}: sent → delivered" == event.outcome


def test_a_late_sent_callback_never_takes_a_delivered_message_back(twilio_a):
    message = stored(twilio_a, SID, status=MessageStatus.QUEUED)
    twilio_status(twilio_a, "delivered")
    event = twilio_status(twilio_a, "sent")
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert "left delivered" in event.outcome


def test_an_undelivered_callback_records_twilios_error_code(twilio_a):
    message = stored(twilio_a, SID)
    twilio_status(twilio_a, "undelivered", ErrorCode="30006")
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (MessageStatus.UNDELIVERED, "30006")
    assert "30006" in message.failure_message


def test_a_failed_message_stays_failed_whatever_comes_after(twilio_a):
    message = stored(twilio_a, SID)
    twilio_status(twilio_a, "failed", ErrorCode="30003")
    twilio_status(twilio_a, "queued")
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED


def test_another_tenants_event_never_touches_a_message(twilio_a, twilio_b):
    message = stored(twilio_a, SID)
    event = twilio_status(twilio_b, "delivered")  # the same SID, on tenant B's connection
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert "left alone" in event.outcome


def test_a_callback_before_the_send_answer_is_recorded_is_retried(twilio_a):
    stored(twilio_a, "", status=MessageStatus.QUEUED)
    event = twilio_status(twilio_a, "sent", sid="SMnotrecordedyet")
    assert event.status == EventStatus.RETRYING
    assert "waiting for its provider's answer" in event.error


def test_a_status_twilio_never_documents_is_parked(twilio_a):
    stored(twilio_a, SID)
    event = twilio_status(twilio_a, "teleported")
    assert event.status == EventStatus.PARKED


# --- SendGrid -----------------------------------------------------------------------------------------


def test_sendgrid_events_find_the_message_by_its_x_message_id(sendgrid_a):
    message = stored(sendgrid_a, X_MESSAGE_ID, status=MessageStatus.QUEUED, channel="email")
    sendgrid_event(sendgrid_a, "delivered", 10)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.status_updated_at == at(10)


def test_an_event_finds_an_unconfirmed_message_by_the_hubs_id_and_moves_it_on(sendgrid_a):
    message = stored(sendgrid_a, "", status=MessageStatus.FAILED, channel="email", failure_code=messaging.UNCONFIRMED)
    sendgrid_event(sendgrid_a, "delivered", 10, custom_args={"hub_message_id": str(message.uuid)})
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.provider_id == X_MESSAGE_ID
    assert message.failure_code == ""


def test_opens_and_clicks_are_counted_and_an_early_open_keeps_delivered_behind_it(sendgrid_a):
    message = stored(sendgrid_a, X_MESSAGE_ID, channel="email")
    sendgrid_event(sendgrid_a, "open", 30)
    sendgrid_event(sendgrid_a, "delivered", 10)  # arrives after the open it came before
    sendgrid_event(sendgrid_a, "open", 20)
    sendgrid_event(sendgrid_a, "click", 40, url="https://shop.example.com")
    message.refresh_from_db()
    assert message.status == MessageStatus.CLICKED
    assert (message.opens, message.clicks) == (2, 1)
    assert message.opened_at == at(20) and message.clicked_at == at(40)


def test_a_spam_report_after_opens_is_terminal_and_later_opens_are_still_counted(sendgrid_a):
    message = stored(sendgrid_a, X_MESSAGE_ID, status=MessageStatus.DELIVERED, channel="email")
    sendgrid_event(sendgrid_a, "spamreport", 50)
    sendgrid_event(sendgrid_a, "open", 60)
    message.refresh_from_db()
    assert message.status == MessageStatus.SPAM_REPORT
    assert message.opens == 1


def test_a_bounce_older_than_the_delivery_held_is_left_behind_it(sendgrid_a):
    message = stored(sendgrid_a, X_MESSAGE_ID, status=MessageStatus.QUEUED, channel="email")
    sendgrid_event(sendgrid_a, "delivered", 20)
    event = sendgrid_event(sendgrid_a, "bounce", 10, reason="550 mailbox unavailable", status="5.1.1")
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert "older or behind it" in event.outcome


def test_a_bounce_records_its_reason_and_nothing_moves_it_after(sendgrid_a):
    message = stored(sendgrid_a, X_MESSAGE_ID, status=MessageStatus.QUEUED, channel="email")
    sendgrid_event(sendgrid_a, "bounce", 10, reason="550 mailbox unavailable", status="5.1.1", type="bounce")
    sendgrid_event(sendgrid_a, "delivered", 20)
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (MessageStatus.BOUNCED, "5.1.1")
    assert message.failure_message == "550 mailbox unavailable"


@pytest.mark.parametrize(
    ("event", "status"),
    [("dropped", MessageStatus.DROPPED), ("unsubscribe", MessageStatus.UNSUBSCRIBED)],
)
def test_dropped_and_unsubscribe_are_terminal(sendgrid_a, event, status):
    message = stored(sendgrid_a, X_MESSAGE_ID, channel="email")
    sendgrid_event(sendgrid_a, event, 10)
    sendgrid_event(sendgrid_a, "delivered", 20)
    message.refresh_from_db()
    assert message.status == status


# --- End to end, signed --------------------------------------------------------------------------------


def test_a_signed_twilio_callback_delivers_the_message_end_to_end(client, tenant_a, twilio_a, office):
    message = messaging.send_sms(tenant_a, twilio_a, "+14155552671", "Hi")
    body = urlencode({"MessageSid": message.provider_id, "MessageStatus": "delivered", "AccountSid": "AC01"}).encode()
    url = f"http://testserver/webhooks/twilio/{twilio_a.uuid}/"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, QueryDict(body))
    response = client.post(
        f"/webhooks/twilio/{twilio_a.uuid}/",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 200
    processing.process(WebhookEvent.objects.get(connection=twilio_a).pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_a_signed_sendgrid_batch_moves_the_message_end_to_end(client, tenant_a, make_connection, office):
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    connection = make_connection(tenant_a, "sendgrid", credentials={"api_key": "SG.fake", "webhook_public_key": public})
    message = messaging.send_email(tenant_a, connection, "c@example.com", "Hello", html="<p>Hi</p>")
    now = int(time.time())
    batch = json.dumps(
        [
            {"event": "open", "sg_event_id": "e2", "sg_message_id": f"{message.provider_id}.f1", "timestamp": now},
            {
                "event": "delivered",
                "sg_event_id": "e1",
                "sg_message_id": f"{message.provider_id}.f1",
                "timestamp": now - 5,
            },
        ]
    ).encode()
    stamp = str(now)
    signature = base64.b64encode(key.sign(stamp.encode() + batch, ec.ECDSA(hashes.SHA256()))).decode()
    response = client.post(
        f"/webhooks/sendgrid/{connection.uuid}/",
        data=batch,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=stamp,
    )
    assert response.status_code == 200
    for event in WebhookEvent.objects.filter(connection=connection).order_by("pk"):
        processing.process(event.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.OPENED
    assert message.opens == 1
