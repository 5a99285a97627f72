"""The Twilio SMS provider over `responses`, on Twilio's documented JSON (tests/fixtures/twilio/):
a message taken, each refusal of a recipient as a failed answer, Twilio refusing the request
itself as an error, a send never sent twice, the connection test, and nothing personal logged."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses

from campaigns.providers import get_provider
from campaigns.providers.base import MessageStatus, SmsMessage
from campaigns.providers.twilio import TwilioProvider
from integrations.errors import AuthError, BadResponse, ConfigurationError, RateLimited, Unavailable
from integrations.http import HttpClient

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio"
SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
TOKEN = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"
MESSAGES = f"{API}/Messages.json"
ACCOUNT = f"{API}.json"
CALLBACK = "https://hub.example.com/webhooks/twilio/status?message=msg_41"
CREDENTIALS = {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006"}


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
    def make(**credentials: str) -> TwilioProvider:
        connection = make_connection(tenant_a, "twilio", credentials={**CREDENTIALS, **credentials})
        return get_provider(connection, client=HttpClient(sleep=sleeps.append))

    return make


@pytest.fixture
def provider(provider_for) -> TwilioProvider:
    return provider_for()


def sms(**kwargs) -> SmsMessage:
    defaults = {"to": "+14155552345", "body": "Your order #1042 has shipped.", "reference": "msg_41"}
    return SmsMessage(**{**defaults, "status_callback": CALLBACK, **kwargs})


def form(call) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.request.body).items()}


def test_the_registry_builds_a_twilio_provider_for_sms(provider):
    assert isinstance(provider, TwilioProvider)
    assert provider.channel == "sms"


def test_a_message_twilio_queues_is_queued_with_its_sid(api, provider):
    api.post(MESSAGES, json=fixture("messages_create"), status=201)
    result = provider.send_sms(sms())
    assert (result.status, result.provider_id) == (MessageStatus.QUEUED, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert "body" not in result.raw and "to" not in result.raw
    [call] = api.calls
    assert form(call) == {
        "To": "+14155552345",
        "Body": "Your order #1042 has shipped.",
        "From": "+15005550006",
        "StatusCallback": CALLBACK,
    }
    assert call.request.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(("status", "expected"), [("accepted", "queued"), ("sending", "queued"), ("sent", "sent")])
def test_a_message_twilio_has_taken_is_queued_or_sent(api, provider, status, expected):
    api.post(MESSAGES, json={**fixture("messages_create"), "status": status}, status=201)
    assert provider.send_sms(sms()).status == expected


def test_a_message_with_its_own_number_goes_from_that_number(api, provider):
    api.post(MESSAGES, json=fixture("messages_create"), status=201)
    provider.send_sms(sms(from_number="+15005550007"))
    assert form(api.calls[0])["From"] == "+15005550007"


def test_without_a_number_the_messaging_service_sends(api, provider_for):
    provider = provider_for(from_number="", messaging_service_sid="MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    api.post(MESSAGES, json=fixture("messages_create"), status=201)
    provider.send_sms(sms(status_callback=""))
    sent = form(api.calls[0])
    assert sent["MessagingServiceSid"] == "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert "From" not in sent and "StatusCallback" not in sent


def test_without_a_number_or_a_messaging_service_nothing_is_sent(api, provider_for):
    with pytest.raises(ConfigurationError, match="no From number or messaging service"):
        provider_for(from_number="").send_sms(sms())
    assert not api.calls


@pytest.mark.parametrize(
    ("name", "code", "said"),
    [
        ("error_21211_invalid_to", "21211", "The 'To' number … is not a valid phone number."),
        ("error_21610_unsubscribed", "21610", "Attempt to send to unsubscribed recipient"),
        ("error_21614_not_mobile", "21614", "'To' number … is not a valid mobile number"),
        ("error_21408_region_not_enabled", "21408", "Permission to send an SMS has not been enabled for the region"),
    ],
)
def test_a_recipient_twilio_refuses_is_a_failed_answer_without_the_number(api, provider, name, code, said):
    api.post(MESSAGES, json=fixture(name), status=400)
    result = provider.send_sms(sms())
    assert (result.status, result.failure_code, result.provider_id) == (MessageStatus.FAILED, code, "")
    assert result.failure_message.startswith(said)
    assert "+1" not in result.failure_message and "+86" not in result.failure_message


def test_a_message_that_failed_at_once_is_a_failed_answer(api, provider):
    failed = {**fixture("messages_create"), "status": "failed", "error_code": 30006, "error_message": "Landline"}
    api.post(MESSAGES, json=failed, status=201)
    result = provider.send_sms(sms())
    assert (result.status, result.provider_id, result.failure_code) == ("failed", failed["sid"], "30006")


def test_wrong_credentials_are_an_auth_error(api, provider):
    api.post(MESSAGES, json=fixture("error_20003_authenticate"), status=401)
    with pytest.raises(AuthError, match="Authenticate") as caught:
        provider.send_sms(sms())
    assert "auth token" in caught.value.hint


def test_a_number_the_account_does_not_own_is_a_bad_response_without_the_number(api, provider):
    api.post(MESSAGES, json=fixture("error_21606_from_not_owned"), status=400)
    with pytest.raises(BadResponse, match="21606") as caught:
        provider.send_sms(sms())
    assert "+1500" not in caught.value.message


def test_twilio_limiting_requests_is_rate_limited_and_not_resent(api, provider):
    api.post(MESSAGES, json=fixture("error_20429_too_many_requests"), status=429)
    with pytest.raises(RateLimited):
        provider.send_sms(sms())
    assert len(api.calls) == 1


def test_a_5xx_on_the_send_is_unavailable_and_not_resent(api, provider, sleeps):
    api.post(MESSAGES, json=fixture("error_20500_internal"), status=500)
    with pytest.raises(Unavailable, match="internal server error"):
        provider.send_sms(sms())
    assert (len(api.calls), sleeps) == (1, [])


def test_a_send_that_timed_out_is_not_resent(api, provider, sleeps):
    api.post(MESSAGES, body=requests.exceptions.ReadTimeout("no answer"))
    with pytest.raises(Unavailable, match="timed out") as caught:
        provider.send_sms(sms())
    assert caught.value.hint == "Twilio did not answer in time."
    assert (len(api.calls), sleeps) == (1, [])


def test_no_body_number_or_token_is_logged(api, provider, caplog):
    caplog.set_level(logging.DEBUG)
    api.post(MESSAGES, json=fixture("messages_create"), status=201)
    api.post(MESSAGES, json=fixture("error_21211_invalid_to"), status=400)
    api.post(MESSAGES, json=fixture("error_20500_internal"), status=500)
    provider.send_sms(sms())
    provider.send_sms(sms(to="+15005550001"))
    with pytest.raises(Unavailable):
        provider.send_sms(sms())
    for secret in ("order #1042", "order+%231042", "4155552345", "15005550001", "15005550006", TOKEN):
        assert secret not in caplog.text


def test_the_connection_test_says_the_account_is_full_and_sends_from_a_number(api, provider):
    api.get(ACCOUNT, json=fixture("accounts_fetch"))
    result = provider.check()
    assert result.ok, result.message
    assert result.message == "Connected to Twilio (full account), sending from a From number."
    assert result.details == {"account": "full", "from_number": True, "messaging_service": False}
    assert not result.warnings


def test_the_connection_test_warns_of_a_trial_account(api, provider_for):
    api.get(ACCOUNT, json={**fixture("accounts_fetch"), "type": "Trial"})
    result = provider_for(from_number="", messaging_service_sid="MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").check()
    assert result.ok
    assert result.message == "Connected to Twilio (trial account), sending from a messaging service."
    assert result.warnings == ["A trial account only sends to numbers verified in the Twilio Console."]


def test_the_connection_test_fails_with_nothing_to_send_from(api, provider_for):
    api.get(ACCOUNT, json=fixture("accounts_fetch"))
    result = provider_for(from_number="").check()
    assert (result.ok, result.error_code) == (False, "configuration")
    assert "From number or a Messaging service SID" in result.hint


def test_the_connection_test_fails_on_a_suspended_account(api, provider):
    api.get(ACCOUNT, json={**fixture("accounts_fetch"), "status": "suspended"})
    result = provider.check()
    assert (result.ok, result.message) == (False, "The Twilio account is suspended.")


def test_the_connection_test_fails_on_wrong_credentials(api, provider):
    api.get(ACCOUNT, json=fixture("error_20003_authenticate"), status=401)
    result = provider.check()
    assert (result.ok, result.error_code) == (False, "auth")
    assert "Authenticate" in result.message


def test_the_connection_test_never_retries(api, provider, sleeps):
    api.get(ACCOUNT, json=fixture("error_20500_internal"), status=503)
    result = provider.check()
    assert (result.ok, result.error_code) == (False, "unavailable")
    assert (len(api.calls), sleeps) == (1, [])


def test_a_read_is_retried_on_a_5xx(api, provider, sleeps):
    api.get(ACCOUNT, json=fixture("error_20500_internal"), status=503)
    api.get(ACCOUNT, json=copy.deepcopy(fixture("accounts_fetch")))
    assert provider.account().fetch().status == "active"
    assert len(api.calls) == 2 and len(sleeps) == 1


def test_the_base_url_replaces_twilios_host(api, provider_for, make_connection, tenant_a, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    connection = make_connection(tenant_a, "twilio", credentials=CREDENTIALS, base_url="http://127.0.0.1:4010/")
    api.post(f"http://127.0.0.1:4010/2010-04-01/Accounts/{SID}/Messages.json", json=fixture("messages_create"))
    result = get_provider(connection, client=HttpClient(allow_private=True)).send_sms(sms())
    assert result.status == MessageStatus.QUEUED
