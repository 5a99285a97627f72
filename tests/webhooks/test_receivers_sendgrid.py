"""The SendGrid receiver: the signed Event Webhook (ECDSA P-256 / SHA-256 over timestamp + raw body)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Rejected
from webhooks.receivers.sendgrid import SendGridReceiver

# SendGrid's own example (sendgrid-python, test/unit/test_eventwebhook.py), trailing CRLF included.
DOC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc"
    "6wEA3F+g=="
)
DOC_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
DOC_TIMESTAMP = "1600112502"
DOC_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)

# Shaped like the events in SendGrid's Event Webhook reference.
BATCH = json.dumps(
    [
        {
            "email": "ana@example.com",
            "timestamp": 1700000000,
            "event": "delivered",
            "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "response": "250 OK",
        },
        {
            "email": "ana@example.com",
            "timestamp": 1700000060,
            "event": "open",
            "sg_event_id": "b3Blbi0wLTI0",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "useragent": "Mozilla/5.0",
        },
        {
            "email": "bo@example.com",
            "timestamp": 1700000120,
            "event": "bounce",
            "sg_event_id": "Ym91bmNlLTAtMjQ",
            "sg_message_id": "24c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "type": "bounce",
        },
    ]
).encode()

PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(
    PRIVATE.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def sign(body: bytes, timestamp: str, key: ec.EllipticCurvePrivateKey = PRIVATE) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def signed_headers(body: bytes, timestamp: str | None = None, key: ec.EllipticCurvePrivateKey = PRIVATE) -> dict:
    timestamp = timestamp or str(int(time.time()))
    return {
        "x-twilio-email-event-webhook-signature": sign(body, timestamp, key),
        "x-twilio-email-event-webhook-timestamp": timestamp,
    }


def delivery(connection, body: bytes, headers: dict[str, str]) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=f"https://hub.example.com/webhooks/sendgrid/{connection.uuid}/",
        headers=headers,
        body=body,
        content_type="application/json",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    credentials = {"api_key": "SG.x", "from_email": "shop@example.com", "webhook_public_key": PUBLIC}
    return make_connection(tenant_a, "sendgrid", credentials=credentials)


def refusal(connection, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(Rejected) as caught:
        SendGridReceiver().verify(delivery(connection, body, headers))
    return caught.value.reason


def test_sendgrids_documented_example_verifies(make_connection, tenant_a, settings):
    settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 10**10  # the example was signed in 2020
    doc = make_connection(tenant_a, "sendgrid", credentials={"api_key": "SG.x", "webhook_public_key": DOC_KEY})
    headers = {
        "x-twilio-email-event-webhook-signature": DOC_SIGNATURE,
        "x-twilio-email-event-webhook-timestamp": DOC_TIMESTAMP,
    }
    SendGridReceiver().verify(delivery(doc, DOC_BODY, headers))
    [event] = SendGridReceiver().parse(delivery(doc, DOC_BODY, headers))
    assert (event.event_id, event.topic) == ("ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA", "dropped")


def test_a_signed_batch_becomes_one_event_per_sendgrid_event(connection):
    arrived = delivery(connection, BATCH, signed_headers(BATCH))
    SendGridReceiver().verify(arrived)
    events = SendGridReceiver().parse(arrived)
    assert [(e.event_id, e.topic) for e in events] == [
        ("ZGVsaXZlcmVkLTAtMjQ", "delivered"),
        ("b3Blbi0wLTI0", "open"),
        ("Ym91bmNlLTAtMjQ", "bounce"),
    ]
    assert events[2].resource_id == "24c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    assert events[1].payload["useragent"] == "Mozilla/5.0"


def test_a_tampered_body_is_refused(connection):
    headers = signed_headers(BATCH)
    tampered = BATCH.replace(b'"bounce"', b'"delivered"')
    assert "does not match the timestamp and body" in refusal(connection, tampered, headers)


def test_a_signature_made_with_another_key_is_refused(connection):
    other = ec.generate_private_key(ec.SECP256R1())
    assert "verification key" in refusal(connection, BATCH, signed_headers(BATCH, key=other))


def test_a_stale_timestamp_is_refused_even_with_a_good_signature(connection):
    stale = str(int(time.time()) - 301)
    assert "stale or replayed" in refusal(connection, BATCH, signed_headers(BATCH, timestamp=stale))


@pytest.mark.parametrize("stamp", ["yesterday", "9" * 400])
def test_a_timestamp_that_is_not_a_unix_time_is_refused(connection, stamp):
    assert "not a Unix time" in refusal(connection, BATCH, signed_headers(BATCH, timestamp=stamp))


def test_a_missing_signature_header_is_refused(connection):
    headers = signed_headers(BATCH)
    del headers["x-twilio-email-event-webhook-signature"]
    assert refusal(connection, BATCH, headers) == "The X-Twilio-Email-Event-Webhook-Signature header is missing."


def test_a_missing_timestamp_header_is_refused(connection):
    headers = signed_headers(BATCH)
    del headers["x-twilio-email-event-webhook-timestamp"]
    assert refusal(connection, BATCH, headers) == "The X-Twilio-Email-Event-Webhook-Timestamp header is missing."


def test_a_verification_key_that_is_not_a_public_key_is_refused_with_what_to_fix(make_connection, tenant_a):
    broken = make_connection(tenant_a, "sendgrid", credentials={"webhook_public_key": "not-a-key"})
    assert "not the base64 public key SendGrid shows" in refusal(broken, BATCH, signed_headers(BATCH))


def test_the_endpoint_stores_each_event_of_a_verified_batch_and_answers_200(client, connection):
    headers = signed_headers(BATCH)
    response = client.post(
        f"/webhooks/sendgrid/{connection.uuid}/",
        data=BATCH,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=headers["x-twilio-email-event-webhook-signature"],
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=headers["x-twilio-email-event-webhook-timestamp"],
    )
    assert response.status_code == 200
    stored = WebhookEvent.objects.filter(connection=connection).order_by("topic")
    assert [(e.event_id, e.topic) for e in stored] == [
        ("Ym91bmNlLTAtMjQ", "bounce"),
        ("ZGVsaXZlcmVkLTAtMjQ", "delivered"),
        ("b3Blbi0wLTI0", "open"),
    ]
    assert stored[0].data["type"] == "bounce"


def test_the_endpoint_answers_401_to_a_forged_batch(client, connection):
    headers = signed_headers(BATCH, key=ec.generate_private_key(ec.SECP256R1()))
    response = client.post(
        f"/webhooks/sendgrid/{connection.uuid}/",
        data=BATCH,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=headers["x-twilio-email-event-webhook-signature"],
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=headers["x-twilio-email-event-webhook-timestamp"],
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False
