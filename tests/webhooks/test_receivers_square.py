"""The Square receiver: base64 HMAC-SHA256 of notification URL + raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Rejected
from webhooks.receivers.square import SquareReceiver

# Square's own example (square-python-sdk, tests/utilities/test_webhooks_helper.py).
DOC_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
DOC_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
DOC_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
DOC_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"

# Shaped like Square's payment.updated example (developer.squareup.com/reference/square/payments-api/webhooks).
PAYMENT_UPDATED = json.dumps(
    {
        "merchant_id": "6SSW7HV8K2ST5",
        "type": "payment.updated",
        "event_id": "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",
        "created_at": "2020-02-06T21:27:34.308Z",
        "data": {
            "type": "payment",
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
            "object": {
                "payment": {
                    "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
                    "status": "COMPLETED",
                    "updated_at": "2020-02-06T21:27:34.308Z",
                    "amount_money": {"amount": 100, "currency": "USD"},
                }
            },
        },
    }
).encode()
KEY = "sq-signature-key-for-tests"


def sign(url: str, body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


def delivery(connection, body: bytes, headers: dict[str, str], url: str | None = None) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=url or f"https://hub.example.com/webhooks/square/{connection.uuid}/",
        headers=headers,
        body=body,
        content_type="application/json",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(
        tenant_a,
        "square",
        credentials={"access_token": "EAAA", "location_id": "L1", "webhook_signature_key": KEY},
    )


@pytest.fixture
def doc_connection(make_connection, tenant_a):
    credentials = {"access_token": "EAAA", "webhook_signature_key": DOC_KEY, "notification_url": DOC_URL}
    return make_connection(tenant_a, "square", credentials=credentials)


def refusal(connection, body: bytes, headers: dict[str, str], url: str | None = None) -> str:
    with pytest.raises(Rejected) as caught:
        SquareReceiver().verify(delivery(connection, body, headers, url))
    return caught.value.reason


def test_squares_documented_example_verifies_against_the_configured_notification_url(doc_connection):
    # The request arrived at another address (a proxy in front): the configured URL is what Square signed.
    arrived = delivery(doc_connection, DOC_BODY, {"x-square-hmacsha256-signature": DOC_SIGNATURE})
    SquareReceiver().verify(arrived)
    [event] = SquareReceiver().parse(arrived)
    assert (event.event_id, event.topic, event.resource_id) == (
        "ac3ac95b-f97d-458c-a6e6-18981597e05f",
        "webhooks.test_notification",
        "bc368e64-01aa-407e-b46e-3231809b1129",
    )


def test_without_a_configured_url_the_address_the_request_arrived_at_is_signed(connection):
    url = f"https://hub.example.com/webhooks/square/{connection.uuid}/"
    arrived = delivery(connection, PAYMENT_UPDATED, {"x-square-hmacsha256-signature": sign(url, PAYMENT_UPDATED)})
    SquareReceiver().verify(arrived)
    [event] = SquareReceiver().parse(arrived)
    assert (event.topic, event.resource_id, event.resource_updated_at.isoformat()) == (
        "payment.updated",
        "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        "2020-02-06T21:27:34.308000+00:00",
    )


def test_a_tampered_body_is_refused(doc_connection):
    tampered = DOC_BODY.replace(b"2022-07-13", b"2022-06-13")
    reason = refusal(doc_connection, tampered, {"x-square-hmacsha256-signature": DOC_SIGNATURE})
    assert "does not match the notification URL and body" in reason


def test_a_signature_made_with_another_key_is_refused(connection):
    url = f"https://hub.example.com/webhooks/square/{connection.uuid}/"
    forged = sign(url, PAYMENT_UPDATED, key="MCmhFRxGX82xMwg5FsaoQA")
    assert "signature key" in refusal(connection, PAYMENT_UPDATED, {"x-square-hmacsha256-signature": forged})


def test_a_signature_over_another_url_is_refused(connection):
    forged = sign("https://elsewhere.example.com/hook", PAYMENT_UPDATED)
    assert "notification URL" in refusal(connection, PAYMENT_UPDATED, {"x-square-hmacsha256-signature": forged})


def test_a_missing_signature_header_is_refused(connection):
    assert refusal(connection, PAYMENT_UPDATED, {}) == "The x-square-hmacsha256-signature header is missing."


def test_the_endpoint_stores_a_verified_event_and_answers_200(client, connection):
    url = f"http://testserver/webhooks/square/{connection.uuid}/"
    response = client.post(
        f"/webhooks/square/{connection.uuid}/",
        data=PAYMENT_UPDATED,
        content_type="application/json",
        HTTP_X_SQUARE_HMACSHA256_SIGNATURE=sign(url, PAYMENT_UPDATED),
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic) == ("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", "payment.updated")


def test_the_endpoint_answers_401_to_a_forged_event(client, connection):
    response = client.post(
        f"/webhooks/square/{connection.uuid}/",
        data=PAYMENT_UPDATED,
        content_type="application/json",
        HTTP_X_SQUARE_HMACSHA256_SIGNATURE=sign("http://testserver/", PAYMENT_UPDATED),
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False
