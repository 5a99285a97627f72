"""The SendGrid email provider over `responses`, on SendGrid's documented JSON
(tests/fixtures/sendgrid/): a message taken with its X-Message-Id, the mail/send body, each
refusal, a send never sent twice, the connection test, and nothing personal logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import requests
import responses

from campaigns.providers import get_provider
from campaigns.providers.base import EmailMessage, MessageStatus
from campaigns.providers.sendgrid import SendGridProvider, SendGridRefused
from integrations.errors import AuthError, ConfigurationError, PermissionDenied, RateLimited, Unavailable
from integrations.http import HttpClient

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sendgrid"
KEY = "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"
SEND = "https://api.sendgrid.com/v3/mail/send"
SCOPES = "https://api.sendgrid.com/v3/scopes"
SENDERS = "https://api.sendgrid.com/v3/verified_senders"
MESSAGE_ID = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
CREDENTIALS = {"api_key": KEY, "from_email": "orders@example.com"}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def provider_for(make_connection, tenant_a, sleeps):
    def make(**credentials: str) -> SendGridProvider:
        connection = make_connection(tenant_a, "sendgrid", credentials={**CREDENTIALS, **credentials})
        return get_provider(connection, client=HttpClient(sleep=sleeps.append))

    return make


@pytest.fixture
def provider(provider_for) -> SendGridProvider:
    return provider_for()


def email(**kwargs) -> EmailMessage:
    defaults = {
        "to": "ada@example.net",
        "subject": "Your order #1042 has shipped",
        "html": "<p>Hello Ada, order #1042 is on its way.</p>",
        "text": "Hello Ada, order #1042 is on its way.",
        "reference": "msg_41",
    }
    return EmailMessage(**{**defaults, **kwargs})


def accepted(api) -> None:
    api.post(SEND, status=202, body="", headers={"X-Message-Id": MESSAGE_ID})


def test_the_registry_builds_a_sendgrid_provider_for_email(provider):
    assert isinstance(provider, SendGridProvider)
    assert provider.channel == "email"


def test_a_message_sendgrid_accepts_is_queued_with_its_message_id(api, provider):
    accepted(api)
    result = provider.send_email(email())
    assert (result.status, result.provider_id) == (MessageStatus.QUEUED, MESSAGE_ID)
    [call] = api.calls
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(call.request.body) == {
        "personalizations": [{"to": [{"email": "ada@example.net"}], "custom_args": {"hub_message_id": "msg_41"}}],
        "from": {"email": "orders@example.com"},
        "subject": "Your order #1042 has shipped",
        "content": [
            {"type": "text/plain", "value": "Hello Ada, order #1042 is on its way."},
            {"type": "text/html", "value": "<p>Hello Ada, order #1042 is on its way.</p>"},
        ],
    }


def test_the_sender_reply_to_headers_and_categories_are_sent(api, provider):
    accepted(api)
    unsubscribe = {
        "List-Unsubscribe": "<https://hub.example.com/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    message = email(
        from_email="news@example.com",
        from_name="Example News",
        reply_to="help@example.com",
        headers=unsubscribe,
        categories=("campaign", "spring-sale"),
        text="",
    )
    provider.send_email(message)
    sent = json.loads(api.calls[0].request.body)
    assert sent["from"] == {"email": "news@example.com", "name": "Example News"}
    assert sent["reply_to"] == {"email": "help@example.com"}
    assert sent["headers"] == unsubscribe
    assert sent["categories"] == ["campaign", "spring-sale"]
    assert sent["content"] == [{"type": "text/html", "value": "<p>Hello Ada, order #1042 is on its way.</p>"}]


def test_an_email_without_a_body_is_not_sent(api, provider):
    with pytest.raises(ValueError, match="text or an HTML body"):
        provider.send_email(email(html="", text=""))
    assert not api.calls


def test_a_connection_without_a_sender_sends_nothing(api, provider_for):
    with pytest.raises(ConfigurationError, match="Verified sender"):
        provider_for(from_email="").send_email(email())
    assert not api.calls


def test_a_request_sendgrid_refuses_carries_its_errors(api, provider):
    api.post(SEND, json=fixture("error_400_bad_request"), status=400)
    with pytest.raises(SendGridRefused) as caught:
        provider.send_email(email())
    error = caught.value
    assert (error.code, error.status) == ("bad_response", 400)
    assert [item["field"] for item in error.errors] == ["subject", "personalizations.0.to.0.email"]
    assert error.message.startswith("SendGrid refused the message: subject: The subject is required.")
    assert "personalizations.0.to.0.email: Does not contain a valid address." in error.message


@pytest.mark.parametrize("status", [400, 403])
def test_an_unverified_sender_is_said_plainly(api, provider, status):
    api.post(SEND, json=fixture("error_403_sender_identity"), status=status)
    with pytest.raises(SendGridRefused) as caught:
        provider.send_email(email())
    error = caught.value
    assert error.message == "SendGrid refused the sender: the from address is not a verified Sender Identity."
    assert "Sender Authentication" in error.hint
    assert error.errors[0]["field"] == "from"


def test_a_wrong_key_is_an_auth_error(api, provider):
    api.post(SEND, json=fixture("error_401_unauthorized"), status=401)
    with pytest.raises(AuthError, match="invalid, expired, or revoked") as caught:
        provider.send_email(email())
    assert "Settings → API Keys" in caught.value.hint


def test_a_key_without_mail_send_is_permission_denied(api, provider):
    api.post(SEND, json=fixture("error_403_forbidden"), status=403)
    with pytest.raises(PermissionDenied, match="access forbidden") as caught:
        provider.send_email(email())
    assert "mail.send" in caught.value.hint


def test_sendgrid_limiting_requests_is_rate_limited_and_not_resent(api, provider, sleeps):
    api.post(SEND, json=fixture("error_429_too_many_requests"), status=429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited):
        provider.send_email(email())
    assert (len(api.calls), sleeps) == (1, [])


def test_a_5xx_on_the_send_is_unavailable_and_not_resent(api, provider, sleeps):
    api.post(SEND, json=fixture("error_500_internal"), status=500)
    with pytest.raises(Unavailable, match="internal server error"):
        provider.send_email(email())
    assert (len(api.calls), sleeps) == (1, [])


def test_a_send_that_timed_out_is_not_resent(api, provider, sleeps):
    api.post(SEND, body=requests.exceptions.ReadTimeout("no answer"))
    with pytest.raises(Unavailable) as caught:
        provider.send_email(email())
    assert caught.value.hint == "SendGrid did not answer in time."
    assert (len(api.calls), sleeps) == (1, [])


def test_no_body_address_or_key_is_logged(api, provider, caplog):
    caplog.set_level(logging.DEBUG)
    accepted(api)
    api.post(SEND, json=fixture("error_400_bad_request"), status=400)
    api.post(SEND, json=fixture("error_500_internal"), status=500)
    provider.send_email(email())
    for _ in range(2):
        with pytest.raises((SendGridRefused, Unavailable)):
            provider.send_email(email())
    for secret in ("ada@example.net", "orders@example.com", "order #1042", "Hello Ada", KEY):
        assert secret not in caplog.text


def test_the_connection_test_says_mail_send_is_granted_and_the_sender_verified(api, provider):
    api.get(SCOPES, json=fixture("scopes"))
    api.get(SENDERS, json=fixture("verified_senders"))
    result = provider.check()
    assert result.ok, result.message
    assert result.message == "Connected to SendGrid: the key may send mail and the sender is verified."
    assert (result.granted, result.details) == (["mail.send"], {"mail_send": True, "sender_verified": True})


def test_the_connection_test_fails_without_mail_send(api, provider):
    api.get(SCOPES, json={"scopes": ["alerts.read"]})
    result = provider.check()
    assert (result.ok, result.error_code, result.missing) == (False, "permission", ["mail.send"])
    assert [call.request.url for call in api.calls] == [SCOPES]


def test_the_connection_test_fails_on_a_sender_not_verified_yet(api, provider):
    senders = fixture("verified_senders")
    senders["results"][0]["verified"] = False
    api.get(SCOPES, json=fixture("scopes"))
    api.get(SENDERS, json=senders)
    result = provider.check()
    assert (result.ok, result.error_code) == (False, "configuration")
    assert result.details["sender_verified"] is False


def test_the_connection_test_warns_of_a_sender_that_is_not_a_single_sender(api, provider_for):
    api.get(SCOPES, json=fixture("scopes"))
    api.get(SENDERS, json=fixture("verified_senders"))
    result = provider_for(from_email="shop@another.example").check()
    assert result.ok and result.details["sender_verified"] is None
    assert result.warnings == [
        "The sender is not a single sender: mail sends only if its domain is authenticated in SendGrid."
    ]


def test_the_connection_test_passes_when_the_key_may_not_read_senders(api, provider):
    api.get(SCOPES, json={"scopes": ["mail.send"]})
    api.get(SENDERS, json=fixture("error_403_forbidden"), status=403)
    result = provider.check()
    assert result.ok and result.details["sender_verified"] is None
    assert result.warnings == ["The key may not read the verified senders, so the sender was not checked."]


def test_the_connection_test_fails_on_a_wrong_key_without_retrying(api, provider, sleeps):
    api.get(SCOPES, json=fixture("error_401_unauthorized"), status=401)
    result = provider.check()
    assert (result.ok, result.error_code) == (False, "auth")
    assert "invalid, expired, or revoked" in result.message


def test_the_connection_test_never_retries(api, provider, sleeps):
    api.get(SCOPES, json=fixture("error_500_internal"), status=503)
    result = provider.check()
    assert (result.ok, result.error_code) == (False, "unavailable")
    assert (len(api.calls), sleeps) == (1, [])


def test_the_base_url_replaces_sendgrids_host(api, make_connection, tenant_a):
    connection = make_connection(tenant_a, "sendgrid", credentials=CREDENTIALS, base_url="https://api.eu.sendgrid.com/")
    api.post("https://api.eu.sendgrid.com/v3/mail/send", status=202, headers={"X-Message-Id": MESSAGE_ID})
    assert get_provider(connection, client=HttpClient()).send_email(email()).provider_id == MESSAGE_ID
