"""The Authorize.Net receiver: `X-ANET-Signature: sha512=<HEX>`, the HMAC-SHA512 of the raw body with
the account's signature key, compared case-insensitively."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from webhooks.models import WebhookEvent
from webhooks.receivers.authorize_net import AuthorizeNetReceiver
from webhooks.receivers.base import Delivery, Malformed, Rejected

# Shaped like the authcapture example in Authorize.Net's webhook documentation (Appendix).
BODY = json.dumps(
    {
        "notificationId": "d0e8e7fe-c3e7-4add-a480-27bc5ce28a2b",
        "eventType": "net.authorize.payment.authcapture.created",
        "eventDate": "2017-03-29T20:48:02.0080095Z",
        "webhookId": "63d6fea2-aa13-4b1d-a204-f5fbc15942b7",
        "payload": {
            "responseCode": 1,
            "authCode": "LZ6I19",
            "avsResponse": "Y",
            "authAmount": 45.00,
            "entityName": "transaction",
            "id": "60020981676",
        },
    }
).encode()
KEY = "7C9E5A4D1F2B3C8E6A0D9F1B2C3E4A5D6F7081920A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F607182930A1B2C3D"


def sign(body: bytes, key: str = KEY) -> str:
    # Authorize.Net sends the digest in upper-case hex.
    return "sha512=" + hmac.new(key.encode(), body, hashlib.sha512).hexdigest().upper()


def delivery(connection, body: bytes = BODY, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=f"https://hub.example.com/webhooks/authorize_net/{connection.uuid}/",
        headers={"x-anet-signature": sign(body)} if headers is None else headers,
        body=body,
        content_type="application/json",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(
        tenant_a,
        "authorize_net",
        credentials={"api_login_id": "5KP3u95bQpv", "transaction_key": "x", "signature_key": KEY},
    )


def refusal(connection, body: bytes = BODY, headers: dict[str, str] | None = None) -> str:
    with pytest.raises(Rejected) as caught:
        AuthorizeNetReceiver().verify(delivery(connection, body, headers))
    return caught.value.reason


def test_a_signed_notification_verifies_and_reads(connection):
    arrived = delivery(connection)
    AuthorizeNetReceiver().verify(arrived)
    [event] = AuthorizeNetReceiver().parse(arrived)
    assert (event.event_id, event.topic, event.resource_id, event.resource_updated_at.isoformat()) == (
        "d0e8e7fe-c3e7-4add-a480-27bc5ce28a2b",
        "net.authorize.payment.authcapture.created",
        "60020981676",
        "2017-03-29T20:48:02.008009+00:00",
    )


def test_the_hex_digest_is_compared_whatever_its_case(connection):
    lower = "SHA512=" + sign(BODY).removeprefix("sha512=").lower()
    AuthorizeNetReceiver().verify(delivery(connection, headers={"x-anet-signature": lower}))


def test_a_tampered_body_is_refused(connection):
    tampered = BODY.replace(b"45.0", b"4500.0")
    reason = refusal(connection, tampered, {"x-anet-signature": sign(BODY)})
    assert reason == "X-ANET-Signature does not match the body signed with the account's signature key."


def test_a_signature_made_with_another_key_is_refused(connection):
    assert "signature key" in refusal(connection, headers={"x-anet-signature": sign(BODY, key="0" * 128)})


def test_a_signature_without_its_prefix_is_refused(connection):
    bare = sign(BODY).removeprefix("sha512=")
    assert (
        refusal(connection, headers={"x-anet-signature": bare}) == "X-ANET-Signature is not of the form sha512=<hex>."
    )


def test_a_missing_signature_header_is_refused(connection):
    assert refusal(connection, headers={}) == "The X-ANET-Signature header is missing."


def test_a_connection_without_a_signature_key_refuses_every_delivery(make_connection, tenant_a):
    bare = make_connection(tenant_a, "authorize_net", credentials={"api_login_id": "l", "transaction_key": "k"})
    assert "signature_key" in refusal(bare)


def test_a_body_that_is_not_a_notification_is_malformed(connection):
    body = b'{"eventType": "net.authorize.payment.authcapture.created"}'
    with pytest.raises(Malformed, match="notificationId"):
        AuthorizeNetReceiver().parse(delivery(connection, body))


def test_the_endpoint_stores_a_verified_event_and_answers_200(client, connection):
    response = client.post(
        f"/webhooks/authorize_net/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_X_ANET_SIGNATURE=sign(BODY),
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.provider, event.event_id, event.topic) == (
        "authorize_net",
        "d0e8e7fe-c3e7-4add-a480-27bc5ce28a2b",
        "net.authorize.payment.authcapture.created",
    )


def test_the_endpoint_answers_401_to_a_forged_event(client, connection):
    response = client.post(
        f"/webhooks/authorize_net/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_X_ANET_SIGNATURE=sign(BODY, key="forged"),
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False


def test_the_address_of_another_platforms_connection_is_a_404(client, make_connection, tenant_a):
    shop = make_connection(tenant_a, "shopify")
    response = client.post(
        f"/webhooks/authorize_net/{shop.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_X_ANET_SIGNATURE=sign(BODY),
    )
    assert response.status_code == 404
