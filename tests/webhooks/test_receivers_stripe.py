"""The Stripe receiver: `Stripe-Signature` checked by the stripe package, with the timestamp tolerance."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from webhooks.models import EventStatus, WebhookEvent
from webhooks.receivers.base import Delivery, Rejected
from webhooks.receivers.stripe import StripeReceiver

SECRET = "whsec_test_5f3c9e1a2b"
# Shaped like the event in Stripe's documentation (docs.stripe.com/api/events/object).
EVENT = {
    "id": "evt_3NaYvB2eZvKYlo2C1qhRdd7T",
    "object": "event",
    "api_version": "2024-06-20",
    "created": 1690992000,
    "data": {
        "object": {
            "id": "pi_3NaYvB2eZvKYlo2C1rJXLqPj",
            "object": "payment_intent",
            "amount": 2000,
            "currency": "usd",
            "status": "succeeded",
        }
    },
    "livemode": False,
    "pending_webhooks": 1,
    "request": {"id": None, "idempotency_key": None},
    "type": "payment_intent.succeeded",
}
BODY = json.dumps(EVENT).encode()


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp or int(time.time()))


def delivery(connection, body: bytes = BODY, headers: dict[str, str] | None = None) -> Delivery:
    headers = {"stripe-signature": sign(body)} if headers is None else headers
    return Delivery(
        connection=connection,
        method="POST",
        url=f"https://hub.example.com/webhooks/stripe/{connection.uuid}/",
        headers=headers,
        body=body,
        content_type="application/json",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(tenant_a, "stripe", credentials={"secret_key": "sk_test_x", "webhook_secret": SECRET})


def refusal(connection, **kwargs) -> str:
    with pytest.raises(Rejected) as caught:
        StripeReceiver().verify(delivery(connection, **kwargs))
    return caught.value.reason


def test_a_delivery_signed_with_the_endpoint_secret_is_accepted_and_read(connection):
    receiver = StripeReceiver()
    receiver.verify(delivery(connection))
    [event] = receiver.parse(delivery(connection))
    assert (event.event_id, event.topic, event.resource_id) == (
        "evt_3NaYvB2eZvKYlo2C1qhRdd7T",
        "payment_intent.succeeded",
        "pi_3NaYvB2eZvKYlo2C1rJXLqPj",
    )


def test_a_tampered_body_is_refused(connection):
    tampered = BODY.replace(b"2000", b"1")
    reason = refusal(connection, body=tampered, headers={"stripe-signature": sign(BODY)})
    assert "Stripe-Signature does not hold" in reason


def test_a_signature_made_with_another_secret_is_refused(connection):
    reason = refusal(connection, headers={"stripe-signature": sign(BODY, "whsec_someone_else")})
    assert "signing secret" in reason


def test_a_stale_timestamp_is_refused_even_with_a_good_signature(connection):
    stale = int(time.time()) - 301
    reason = refusal(connection, headers={"stripe-signature": sign(BODY, timestamp=stale)})
    assert "stale or replayed" in reason


def test_a_missing_signature_header_is_refused(connection):
    assert refusal(connection, headers={}) == "The Stripe-Signature header is missing."


def test_a_malformed_signature_header_is_refused(connection):
    assert "Unable to extract timestamp" in refusal(connection, headers={"stripe-signature": "v1=abc"})


def test_a_secret_replaced_within_the_grace_period_still_verifies(connection):
    connection.credentials = {**connection.credentials, "webhook_secret": "whsec_rolled_new"}
    connection.save()
    StripeReceiver().verify(delivery(connection))  # still signed with the old secret
    StripeReceiver().verify(delivery(connection, headers={"stripe-signature": sign(BODY, "whsec_rolled_new")}))


def test_a_connection_without_a_signing_secret_refuses_with_what_to_fix(make_connection, tenant_a):
    bare = make_connection(tenant_a, "stripe", credentials={"secret_key": "sk_test_x"})
    assert "no webhook_secret" in refusal(bare)


def test_the_endpoint_stores_a_verified_event_and_answers_200(client, connection):
    response = client.post(
        f"/webhooks/stripe/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(BODY),
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic, event.status) == (
        "evt_3NaYvB2eZvKYlo2C1qhRdd7T",
        "payment_intent.succeeded",
        EventStatus.RECEIVED,
    )


def test_the_endpoint_answers_401_to_a_forged_event_and_keeps_it_unprocessed(client, connection):
    response = client.post(
        f"/webhooks/stripe/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(BODY, "whsec_forger"),
    )
    assert response.status_code == 401
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.signature_valid, event.status) == (False, EventStatus.REJECTED)
