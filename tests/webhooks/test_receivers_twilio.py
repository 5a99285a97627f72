"""The Twilio receiver: `X-Twilio-Signature` through the twilio package's RequestValidator, on a form body."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Malformed, Rejected
from webhooks.receivers.twilio import TwilioReceiver

TOKEN = "twilio-auth-token-for-tests"
URL = "https://hub.example.com/webhooks/twilio/status/"
# Twilio's documented example (twilio.com/docs/usage/security): token, URL, params and signature.
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_BODY = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

# Shaped like Twilio's message status callback and incoming message requests.
STATUS = urlencode(
    {
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "MessageStatus": "delivered",
        "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "SmsStatus": "delivered",
        "To": "+15558675310",
    }
).encode()
INBOUND = urlencode(
    [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("Body", "Hello & thanks"),
        ("From", "+15558675310"),
        ("MessageSid", "SMa3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("To", "+15005550006"),
        ("Tag", "first"),
        ("Tag", "second"),
    ]
).encode()


def sign(body: bytes, url: str = URL, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, QueryDict(body))


def delivery(connection, body: bytes, headers: dict[str, str], url: str = URL) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=url,
        headers=headers,
        body=body,
        content_type="application/x-www-form-urlencoded",
    )


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(tenant_a, "twilio", credentials={"account_sid": "AC01", "auth_token": TOKEN})


def refusal(connection, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(Rejected) as caught:
        TwilioReceiver().verify(delivery(connection, body, headers))
    return caught.value.reason


def test_twilios_documented_example_verifies(make_connection, tenant_a):
    doc = make_connection(tenant_a, "twilio", credentials={"account_sid": "AC01", "auth_token": DOC_TOKEN})
    TwilioReceiver().verify(delivery(doc, DOC_BODY, {"x-twilio-signature": DOC_SIGNATURE}, url=DOC_URL))


def test_a_status_callback_is_identified_by_message_sid_and_status(connection):
    arrived = delivery(connection, STATUS, {"x-twilio-signature": sign(STATUS)})
    TwilioReceiver().verify(arrived)
    [event] = TwilioReceiver().parse(arrived)
    assert (event.event_id, event.topic, event.resource_id) == (
        "SM1f0e8ae6ade43cb3c0ce4525424e404f:delivered",
        "message.status",
        "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    )
    assert event.payload["MessageStatus"] == "delivered"


def test_an_incoming_message_with_repeated_parameters_verifies_and_keeps_them_all(connection):
    arrived = delivery(connection, INBOUND, {"x-twilio-signature": sign(INBOUND)})
    TwilioReceiver().verify(arrived)
    [event] = TwilioReceiver().parse(arrived)
    assert (event.event_id, event.topic) == ("SMa3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8", "message.inbound")
    assert event.payload["Body"] == "Hello & thanks"
    assert event.payload["Tag"] == ["first", "second"]


def test_a_tampered_body_is_refused(connection):
    tampered = STATUS.replace(b"delivered", b"undelivered", 1)
    assert "does not match the URL and parameters" in refusal(
        connection, tampered, {"x-twilio-signature": sign(STATUS)}
    )


def test_a_signature_made_with_another_auth_token_is_refused(connection):
    forged = sign(STATUS, token="not-the-account-token")
    assert "auth token" in refusal(connection, STATUS, {"x-twilio-signature": forged})


def test_a_signature_for_another_url_is_refused(connection):
    forged = sign(STATUS, url="https://elsewhere.example.com/status/")
    assert "does not match" in refusal(connection, STATUS, {"x-twilio-signature": forged})


def test_an_unreadable_request_address_is_refused_not_a_crash(connection):
    arrived = delivery(connection, STATUS, {"x-twilio-signature": sign(STATUS)}, url="https://hub.example.com:99999/")
    with pytest.raises(Rejected, match="cannot be read"):
        TwilioReceiver().verify(arrived)


def test_a_missing_signature_header_is_refused(connection):
    assert refusal(connection, STATUS, {}) == "The X-Twilio-Signature header is missing."


def test_a_callback_without_a_message_sid_is_malformed(connection):
    with pytest.raises(Malformed):
        TwilioReceiver().parse(delivery(connection, DOC_BODY, {}))


def test_the_endpoint_stores_a_verified_status_callback_and_answers_200(client, connection):
    url = f"http://testserver/webhooks/twilio/{connection.uuid}/"
    response = client.post(
        f"/webhooks/twilio/{connection.uuid}/",
        data=STATUS,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=sign(STATUS, url=url),
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic) == ("SM1f0e8ae6ade43cb3c0ce4525424e404f:delivered", "message.status")
    assert event.data["To"] == "+15558675310"


def test_the_endpoint_answers_401_to_a_forged_callback(client, connection):
    response = client.post(
        f"/webhooks/twilio/{connection.uuid}/",
        data=STATUS,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=sign(STATUS, token="forger"),
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False
