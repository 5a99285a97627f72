"""The eBay receiver: the marketplace account deletion challenge, and notifications signed with
eBay's ECDSA key fetched from the Notification API (mocked at the transport)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhooks.models import WebhookEvent
from webhooks.receivers.base import Delivery, Malformed, Rejected, Unavailable
from webhooks.receivers.ebay import EbayReceiver

API = "https://api.ebay.com"
TOKEN_URL = f"{API}/identity/v1/oauth2/token"
VERIFICATION_TOKEN = "hub_account_deletion_token_0123456789abcdef"

# eBay's own example (event-notification-nodejs-sdk test/test.json, also the Java SDK's): the
# message as eBay delivers it, its X-EBAY-SIGNATURE and the Notification API's answer for the key.
DOC_KID = "9936261a-7d7b-4621-a0f1-96ccb428af49"
DOC_SIGNATURE = (
    "eyJhbGciOiJlY2RzYSIsImtpZCI6Ijk5MzYyNjFhLTdkN2ItNDYyMS1hMGYxLTk2Y2NiNDI4YWY0OSIsInNpZ25hdHVyZSI6Ik1FWUNJUUNmeGZJ"
    "V3V4bVdjSUJRSjljNS9YN2lHREpxczJSQ0dzQkVhQWppbnlycmZBSWhBSVY2d0djVGlCdVY1S0pVaWYyaG9reXJMK1E5c3NIa2FkK214Mm5FRTI1"
    "dyIsImRpZ2VzdCI6IlNIQTEifQ=="
)
DOC_KEY = {
    "key": "-----BEGIN PUBLIC KEY-----MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZhhxXKtR+TOvtDbgTPCkSof02qgBB7IsYOyf76ilExJ/"
    "upAa/vKIKheOoCyOpcLmi4t0b4uepb7LLjmMr90FUg==-----END PUBLIC KEY-----",
    "algorithm": "ECDSA",
    "digest": "SHA1",
}
MESSAGE = {
    "metadata": {"topic": "MARKETPLACE_ACCOUNT_DELETION", "schemaVersion": "1.0", "deprecated": False},
    "notification": {
        "notificationId": "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",
        "eventDate": "2021-03-19T20:43:59.462Z",
        "publishDate": "2021-03-19T20:43:59.679Z",
        "publishAttemptCount": 1,
        "data": {
            "username": "test_user",
            "userId": "ma8vp1jySJC",
            "eiasToken": "nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6wJnY+gAZGEpwmdj6x9nY+seQ==",
        },
    },
}
BODY = json.dumps(MESSAGE, separators=(",", ":")).encode()


def key_url(kid: str) -> str:
    return f"{API}/commerce/notification/v1/public_key/{kid}"


def pem(private: ec.EllipticCurvePrivateKey) -> str:
    public = private.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def signature_header(private: ec.EllipticCurvePrivateKey, kid: str, body: bytes = BODY) -> str:
    signature = base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA1()))).decode()  # noqa: S303 (eBay's digest)
    claim = {"alg": "ecdsa", "kid": kid, "signature": signature, "digest": "SHA1"}
    return base64.b64encode(json.dumps(claim).encode()).decode()


@pytest.fixture
def ebay():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, json={"access_token": "v^1.1#app-token", "expires_in": 7200, "token_type": "Application"})
        mock.get(key_url(DOC_KID), json=DOC_KEY)
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a):
    credentials = {
        "client_id": "Hub-App-PRD-0123456789",
        "client_secret": "PRD-0123456789abcdef",
        "environment": "production",
        "verification_token": VERIFICATION_TOKEN,
    }
    return make_connection(tenant_a, "ebay", credentials=credentials)


def delivery(connection, body: bytes = BODY, headers: dict[str, str] | None = None, **kwargs) -> Delivery:
    return Delivery(
        connection=connection,
        method=kwargs.pop("method", "POST"),
        url=kwargs.pop("url", f"https://hub.example.com/webhooks/ebay/{connection.uuid}/"),
        headers={"x-ebay-signature": DOC_SIGNATURE} if headers is None else headers,
        body=body,
        content_type="application/json",
        **kwargs,
    )


def refusal(connection, **kwargs) -> str:
    with pytest.raises(Rejected) as caught:
        EbayReceiver().verify(delivery(connection, **kwargs))
    return caught.value.reason


def test_the_challenge_is_answered_with_the_documented_hash(connection):
    endpoint = f"https://hub.example.com/webhooks/ebay/{connection.uuid}/"
    url = f"{endpoint}?challenge_code=a8628072-3d33-45ee"
    challenge = delivery(connection, b"", {}, method="GET", url=url, query={"challenge_code": "a8628072-3d33-45ee"})
    response = EbayReceiver().handshake(challenge)
    # eBay: hash challengeCode + verificationToken + endpoint with SHA-256, hex.
    expected = hashlib.sha256(("a8628072-3d33-45ee" + VERIFICATION_TOKEN + endpoint).encode()).hexdigest()
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"challengeResponse": expected}


def test_a_get_without_a_challenge_code_is_malformed(connection):
    with pytest.raises(Malformed):
        EbayReceiver().handshake(delivery(connection, b"", {}, method="GET"))


def test_the_challenge_needs_the_verification_token(make_connection, tenant_a):
    bare = make_connection(tenant_a, "ebay", credentials={"client_id": "x", "client_secret": "y"})
    challenge = delivery(bare, b"", {}, method="GET", query={"challenge_code": "abc"})
    with pytest.raises(Rejected, match="no verification_token"):
        EbayReceiver().handshake(challenge)


def test_a_post_is_not_a_challenge(connection):
    assert EbayReceiver().handshake(delivery(connection)) is None


def test_ebays_documented_notification_verifies_and_is_read(ebay, connection):
    EbayReceiver().verify(delivery(connection))
    [event] = EbayReceiver().parse(delivery(connection))
    assert (event.event_id, event.topic, event.resource_id) == (
        "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",
        "MARKETPLACE_ACCOUNT_DELETION",
        "ma8vp1jySJC",
    )
    assert ebay.calls[1].request.headers["Authorization"] == "Bearer v^1.1#app-token"


def test_a_reformatted_body_still_verifies_as_ebays_sdks_verify_it(ebay, connection):
    EbayReceiver().verify(delivery(connection, body=json.dumps(MESSAGE, indent=2).encode()))


def test_the_key_is_fetched_once_and_kept_for_the_hour(ebay, connection):
    EbayReceiver().verify(delivery(connection))
    EbayReceiver().verify(delivery(connection))
    assert [call.request.url for call in ebay.calls] == [TOKEN_URL, key_url(DOC_KID)]


def test_the_token_request_asks_for_the_public_api_scope(ebay, connection):
    EbayReceiver().verify(delivery(connection))
    form = ebay.calls[0].request.body
    assert form == "grant_type=client_credentials&scope=https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope"


def test_a_notification_signed_with_a_generated_key_verifies(ebay, connection):
    private = ec.generate_private_key(ec.SECP256R1())
    ebay.get(
        key_url("kid-generated-1"), json={"key": pem(private).replace("\n", ""), "algorithm": "ECDSA", "digest": "SHA1"}
    )
    EbayReceiver().verify(
        delivery(connection, headers={"x-ebay-signature": signature_header(private, "kid-generated-1")})
    )


def test_a_tampered_body_is_refused(ebay, connection):
    tampered = BODY.replace(b"ma8vp1jySJC", b"someoneElse")
    assert f"does not match the notification signed with eBay's key {DOC_KID}" in refusal(connection, body=tampered)


def test_a_signature_made_with_another_key_is_refused(ebay, connection):
    forger = ec.generate_private_key(ec.SECP256R1())
    assert "does not match" in refusal(connection, headers={"x-ebay-signature": signature_header(forger, DOC_KID)})


def test_a_missing_signature_header_is_refused(ebay, connection):
    assert refusal(connection, headers={}) == "The X-EBAY-SIGNATURE header is missing."
    assert len(ebay.calls) == 0


def test_a_signature_header_that_is_not_base64_json_is_refused(ebay, connection):
    assert "not base64 of a JSON object" in refusal(connection, headers={"x-ebay-signature": "bm90IGpzb24="})


@pytest.mark.parametrize("kid", ["../../oauth", "kid\n", "kid?x=1"])
def test_a_key_id_that_could_escape_the_url_path_is_refused_without_asking_ebay(ebay, connection, kid):
    claim = base64.b64encode(json.dumps({"kid": kid, "signature": "AA=="}).encode()).decode()
    assert "key id" in refusal(connection, headers={"x-ebay-signature": claim})
    assert len(ebay.calls) == 0


def test_a_key_id_ebay_does_not_know_is_refused(ebay, connection):
    private = ec.generate_private_key(ec.SECP256R1())
    ebay.get(key_url("unknown-kid"), status=404, json={"errors": [{"errorId": 195001}]})
    reason = refusal(connection, headers={"x-ebay-signature": signature_header(private, "unknown-kid")})
    assert "eBay refused to give its public key unknown-kid" in reason


def test_the_key_service_answering_5xx_leaves_the_delivery_unavailable(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "v^1.1#app-token", "expires_in": 7200})
        mock.get(key_url(DOC_KID), status=500)
        with pytest.raises(Unavailable, match="eBay could not give its public key"):
            EbayReceiver().verify(delivery(connection))


def test_an_unusable_key_answer_is_unavailable_and_not_kept(ebay, connection):
    ebay.replace(responses.GET, key_url(DOC_KID), json={"key": "garbage", "algorithm": "ECDSA", "digest": "SHA1"})
    with pytest.raises(Unavailable, match="not an ECDSA key"):
        EbayReceiver().verify(delivery(connection))
    ebay.replace(responses.GET, key_url(DOC_KID), json=DOC_KEY)
    EbayReceiver().verify(delivery(connection))


def test_a_token_timeout_leaves_the_delivery_unavailable(connection):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, body=requests.exceptions.ReadTimeout())
        with pytest.raises(Unavailable, match="eBay could not issue an access token"):
            EbayReceiver().verify(delivery(connection))


def test_a_sandbox_connection_asks_the_sandbox_api(make_connection, tenant_a):
    sandbox = make_connection(
        tenant_a, "ebay", credentials={"client_id": "SBX-1", "client_secret": "SBX-2", "environment": "sandbox"}
    )
    with responses.RequestsMock() as mock:
        mock.post(
            "https://api.sandbox.ebay.com/identity/v1/oauth2/token", json={"access_token": "t", "expires_in": 7200}
        )
        mock.get(f"https://api.sandbox.ebay.com/commerce/notification/v1/public_key/{DOC_KID}", json=DOC_KEY)
        EbayReceiver().verify(delivery(sandbox))


def test_the_endpoint_answers_the_challenge(client, connection):
    response = client.get(f"/webhooks/ebay/{connection.uuid}/", {"challenge_code": "abc123"})
    endpoint = f"http://testserver/webhooks/ebay/{connection.uuid}/"
    assert response.status_code == 200
    assert response.json() == {
        "challengeResponse": hashlib.sha256(f"abc123{VERIFICATION_TOKEN}{endpoint}".encode()).hexdigest()
    }


def test_the_endpoint_stores_a_verified_notification_and_answers_200(ebay, client, connection):
    response = client.post(
        f"/webhooks/ebay/{connection.uuid}/",
        data=BODY,
        content_type="application/json",
        HTTP_X_EBAY_SIGNATURE=DOC_SIGNATURE,
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(connection=connection)
    assert (event.event_id, event.topic) == (
        "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",
        "MARKETPLACE_ACCOUNT_DELETION",
    )


def test_the_endpoint_answers_401_to_a_forged_notification(ebay, client, connection):
    forged = BODY.replace(b"ma8vp1jySJC", b"someoneElse")
    response = client.post(
        f"/webhooks/ebay/{connection.uuid}/",
        data=forged,
        content_type="application/json",
        HTTP_X_EBAY_SIGNATURE=DOC_SIGNATURE,
    )
    assert response.status_code == 401
    assert WebhookEvent.objects.get(connection=connection).signature_valid is False
