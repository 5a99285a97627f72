"""The PayPal receiver: verified by PayPal's verify-webhook-signature API, mocked at the transport.

The fake PayPal below answers SUCCESS only for the event it signed, under the webhook ID it was
registered with, so a tampered body or a wrong webhook ID is refused the way PayPal refuses it.
PayPal's scheme has no freshness check of its own to test: PayPal decides on the transmission time.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests
import responses

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Malformed, Rejected, Unavailable
from webhooks.receivers.paypal import LIVE, SANDBOX, PayPalReceiver

TOKEN_URL = f"{LIVE}/v1/oauth2/token"
VERIFY_URL = f"{LIVE}/v1/notifications/verify-webhook-signature"
WEBHOOK_ID = "1JE4291016473214C"
# The transmission headers of PayPal's verify-webhook-signature example.
TRANSMISSION = {
    "paypal-auth-algo": "SHA256withRSA",
    "paypal-cert-url": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
    "paypal-transmission-id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
    "paypal-transmission-sig": "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz+Zjh3s3boXB07VXCXUZy/UFzUlnG",
    "paypal-transmission-time": "2016-02-18T20:01:35Z",
}
# Shaped like PayPal's PAYMENT.CAPTURE.COMPLETED example, as PayPal sends it (a `{}` and a `1.0` included:
# re-encoding either would break the signature).
BODY = (
    b'{"id":"WH-58D329510W468432D-8HN650336L201105X","event_version":"1.0",'
    b'"create_time":"2019-02-14T21:50:07.940Z","resource_type":"capture","resource_version":"2.0",'
    b'"event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed for $ 2.51 USD",'
    b'"resource":{"id":"27M47624FP291604U","status":"COMPLETED","amount":{"currency_code":"USD","value":"2.51"},'
    b'"breakdown":{},"exchange_rate":1.0,"final_capture":true,"create_time":"2019-02-14T21:49:58Z",'
    b'"update_time":"2019-02-14T21:49:58Z"}}'
)


def fake_paypal(signed_body: bytes = BODY):
    def verify(request):
        sent = json.loads(request.body)
        genuine = (
            request.headers["Authorization"] == "Bearer A21AAH-token"
            and sent["webhook_id"] == WEBHOOK_ID
            and sent["transmission_sig"] == TRANSMISSION["paypal-transmission-sig"]
            and sent["webhook_event"] == json.loads(signed_body)
            and signed_body in request.body  # the delivered bytes, not a re-encoding
        )
        return 200, {}, json.dumps({"verification_status": "SUCCESS" if genuine else "FAILURE"})

    return verify


@pytest.fixture
def paypal():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, json={"access_token": "A21AAH-token", "token_type": "Bearer", "expires_in": 32400})
        mock.add_callback(responses.POST, VERIFY_URL, callback=fake_paypal())
        yield mock


def delivery(connection, body: bytes = BODY, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        connection=connection,
        method="POST",
        url=f"https://hub.example.com/webhooks/paypal/{connection.uuid}/",
        headers=dict(TRANSMISSION) if headers is None else headers,
        body=body,
        content_type="application/json",
    )


def credentials(**changes: str) -> dict[str, str]:
    return {
        "client_id": "AaPayPalClientId",
        "client_secret": "EPayPalClientSecret",
        "environment": "live",
        "webhook_id": WEBHOOK_ID,
        **changes,
    }


@pytest.fixture
def connection(make_connection, tenant_a):
    return make_connection(tenant_a, "paypal", credentials=credentials())


def refusal(connection, **kwargs) -> str:
    with pytest.raises(Rejected) as caught:
        PayPalReceiver().verify(delivery(connection, **kwargs))
    return caught.value.reason


def trouble(connection) -> str:
    with pytest.raises(Unavailable) as caught:
        PayPalReceiver().verify(delivery(connection))
    return caught.value.reason


def test_a_delivery_paypal_verifies_is_accepted_and_read(paypal, connection):
    PayPalReceiver().verify(delivery(connection))
    [event] = PayPalReceiver().parse(delivery(connection))
    assert (event.event_id, event.topic, event.resource_id) == (
        "WH-58D329510W468432D-8HN650336L201105X",
        "PAYMENT.CAPTURE.COMPLETED",
        "27M47624FP291604U",
    )
    assert event.resource_updated_at.isoformat() == "2019-02-14T21:49:58+00:00"


def test_the_token_request_uses_the_client_credentials_grant(paypal, connection):
    PayPalReceiver().verify(delivery(connection))
    token_request = paypal.calls[0].request
    expected = base64.b64encode(b"AaPayPalClientId:EPayPalClientSecret").decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert token_request.body == "grant_type=client_credentials"


def test_the_app_token_is_reused_until_it_nears_expiry(paypal, connection):
    PayPalReceiver().verify(delivery(connection))
    PayPalReceiver().verify(delivery(connection))
    assert [call.request.url for call in paypal.calls] == [TOKEN_URL, VERIFY_URL, VERIFY_URL]


def test_a_tampered_body_is_refused(paypal, connection):
    tampered = BODY.replace(b'"2.51"', b'"251.00"')
    assert "verification_status FAILURE" in refusal(connection, body=tampered)


def test_a_connection_with_another_webhook_id_is_refused(paypal, make_connection, tenant_a):
    other = make_connection(tenant_a, "paypal", credentials=credentials(webhook_id="8PT597110X687430LKGECATA"))
    assert "webhook ID" in refusal(other)


@pytest.mark.parametrize("header", sorted(TRANSMISSION))
def test_a_missing_transmission_header_is_refused(paypal, connection, header):
    headers = {name: value for name, value in TRANSMISSION.items() if name != header}
    assert refusal(connection, headers=headers) == f"The {header.upper()} header is missing."
    assert len(paypal.calls) == 0


@pytest.mark.parametrize("body", [b"[1]", b"not json", b"[" * 100_000 + b"]" * 100_000])
def test_a_body_that_is_not_a_json_object_is_malformed_before_paypal_is_asked(paypal, connection, body):
    with pytest.raises(Malformed):
        PayPalReceiver().verify(delivery(connection, body=body))
    assert len(paypal.calls) == 0


def test_a_connection_without_a_webhook_id_is_refused_with_what_to_fix(paypal, make_connection, tenant_a):
    bare = make_connection(tenant_a, "paypal", credentials=credentials(webhook_id=""))
    assert "no webhook_id" in refusal(bare)


def test_paypal_answering_5xx_leaves_the_delivery_unavailable(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "A21AAH-token", "expires_in": 32400})
        mock.post(VERIFY_URL, status=503)
        assert "PayPal could not verify the webhook signature" in trouble(connection)


def test_a_timeout_leaves_the_delivery_unavailable(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, body=requests.exceptions.ConnectTimeout())
        assert "PayPal could not issue an access token" in trouble(connection)


def test_a_broken_answer_leaves_the_delivery_unavailable(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "A21AAH-token", "expires_in": 32400})
        mock.post(VERIFY_URL, body=requests.exceptions.ChunkedEncodingError())
        assert "ChunkedEncodingError" in trouble(connection)


def test_refused_client_credentials_are_unavailable_not_a_forgery(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
        assert "refused the connection's client ID and secret" in trouble(connection)


def test_a_token_refused_by_the_verify_call_is_forgotten(paypal, connection):
    PayPalReceiver().verify(delivery(connection))
    paypal.replace(responses.POST, VERIFY_URL, status=401)
    trouble(connection)
    paypal.replace(responses.POST, VERIFY_URL, json={"verification_status": "SUCCESS"})
    PayPalReceiver().verify(delivery(connection))
    assert [call.request.url for call in paypal.calls].count(TOKEN_URL) == 2


def test_paypal_refusing_the_request_as_invalid_refuses_the_delivery(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "A21AAH-token", "expires_in": 32400})
        mock.post(VERIFY_URL, status=400, json={"name": "VALIDATION_ERROR"})
        assert "PayPal refused to verify the webhook signature" in refusal(connection)


def test_a_sandbox_connection_asks_the_sandbox_api(make_connection, tenant_a):
    sandbox = make_connection(tenant_a, "paypal", credentials=credentials(environment="sandbox"))
    with responses.RequestsMock() as mock:
        mock.post(f"{SANDBOX}/v1/oauth2/token", json={"access_token": "A21AAH-token", "expires_in": 32400})
        mock.add_callback(responses.POST, f"{SANDBOX}/v1/notifications/verify-webhook-signature", fake_paypal())
        PayPalReceiver().verify(delivery(sandbox))


def post(client, connection, headers: dict[str, str] = TRANSMISSION):
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return client.post(f"/webhooks/paypal/{connection.uuid}/", data=BODY, content_type="application/json", **meta)


def test_the_endpoint_stores_a_verified_event_and_answers_200(paypal, client, connection):
    response = post(client, connection)
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic) == ("WH-58D329510W468432D-8HN650336L201105X", "PAYMENT.CAPTURE.COMPLETED")


def test_the_endpoint_answers_401_when_paypal_does_not_verify(paypal, client, connection):
    response = post(client, connection, {**TRANSMISSION, "paypal-transmission-sig": "forged"})
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False


def test_the_endpoint_answers_503_and_stores_nothing_when_paypal_is_down(client, connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=502)
        response = post(client, connection)
    assert response.status_code == 503
    assert not WebhookEvent.objects.filter(connection=connection).exists()
