"""The TikTok Shop receiver: `Authorization` = hex HMAC-SHA256(app secret, app key + raw body)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Rejected
from webhooks.receivers.tiktok import TikTokReceiver

APP_KEY = "6a8u5auuqugdu"
APP_SECRET = "tiktok-app-secret-for-tests"
# Shaped like TikTok Shop's ORDER_STATUS_CHANGE example (Partner Center → Webhooks).
ORDER_STATUS_CHANGE = {
    "type": 1,
    "tts_notification_id": "7327112393057371910",
    "shop_id": "7494049642642441621",
    "timestamp": 1644412885,
    "data": {
        "order_id": "576461413038785752",
        "order_status": "AWAITING_SHIPMENT",
        "is_on_hold_order": False,
        "update_time": 1644412882,
    },
}
BODY = json.dumps(ORDER_STATUS_CHANGE).encode()


def sign(body: bytes, app_key: str = APP_KEY, secret: str = APP_SECRET) -> str:
    return hmac.new(secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def delivery(connection, body: bytes = BODY, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=f"https://hub.example.com/webhooks/tiktok/{connection.uuid}/",
        headers={"authorization": sign(body)} if headers is None else headers,
        body=body,
        content_type="application/json",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(tenant_a, "tiktok", credentials={"app_key": APP_KEY, "app_secret": APP_SECRET})


def refusal(connection, **kwargs) -> str:
    with pytest.raises(Rejected) as caught:
        TikTokReceiver().verify(delivery(connection, **kwargs))
    return caught.value.reason


def test_a_notification_signed_as_tiktok_documents_is_accepted_and_read(connection):
    TikTokReceiver().verify(delivery(connection))
    [event] = TikTokReceiver().parse(delivery(connection))
    assert (event.event_id, event.topic, event.resource_id) == (
        "7327112393057371910",
        "ORDER_STATUS_CHANGE",
        "576461413038785752",
    )
    assert event.resource_updated_at.isoformat() == "2022-02-09T13:21:22+00:00"


def test_without_a_notification_id_the_same_notification_gets_the_same_stable_id(connection):
    without = {key: value for key, value in ORDER_STATUS_CHANGE.items() if key != "tts_notification_id"}
    body = json.dumps(without).encode()
    reordered = json.dumps(dict(reversed(without.items()))).encode()
    first = TikTokReceiver().parse(delivery(connection, body=body))[0].event_id
    again = TikTokReceiver().parse(delivery(connection, body=reordered))[0].event_id
    later = {**without, "data": {**without["data"], "order_status": "IN_TRANSIT"}}
    other = TikTokReceiver().parse(delivery(connection, body=json.dumps(later).encode()))[0].event_id
    assert first == again != other
    assert len(first) == 64


def test_a_type_tiktok_has_not_named_keeps_its_number_as_the_topic(connection):
    body = json.dumps({**ORDER_STATUS_CHANGE, "type": 99}).encode()
    assert TikTokReceiver().parse(delivery(connection, body=body))[0].topic == "99"


def test_a_tampered_body_is_refused(connection):
    tampered = BODY.replace(b"AWAITING_SHIPMENT", b"CANCELLED")
    reason = refusal(connection, body=tampered, headers={"authorization": sign(BODY)})
    assert "does not match the app key and body" in reason


def test_a_signature_made_with_another_app_secret_is_refused(connection):
    assert "app secret" in refusal(connection, headers={"authorization": sign(BODY, secret="someone-elses")})


def test_a_signature_made_for_another_app_key_is_refused(connection):
    assert "app key" in refusal(connection, headers={"authorization": sign(BODY, app_key="other-app")})


def test_a_missing_authorization_header_is_refused(connection):
    assert refusal(connection, headers={}) == "The Authorization header is missing."


def test_the_endpoint_stores_a_verified_notification_without_its_authorization_header(client, connection):
    response = client.post(
        f"/webhooks/tiktok/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_AUTHORIZATION=sign(BODY),
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic) == ("7327112393057371910", "ORDER_STATUS_CHANGE")
    assert event.headers["authorization"] == "[redacted]"


def test_the_endpoint_answers_401_to_a_forged_notification(client, connection):
    response = client.post(
        f"/webhooks/tiktok/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_AUTHORIZATION=sign(BODY, secret="forger"),
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False
