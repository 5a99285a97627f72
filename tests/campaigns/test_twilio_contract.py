"""The Twilio provider against a Prism mock of Twilio's API description (Api v2010,
tests/contracts/twilio/, copied unchanged from shared/specs/twilio/: the whole description, which
Prism starts in a few seconds). Prism runs with `--errors`: a request the description refuses (no
`To`, no Basic auth) is answered 4xx and fails the test; an accepted one is answered with the
description's own example, read here in the hub's terms. Every request and Prism's verdict are
recorded on the client's session."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest
from twilio.base import values
from twilio.base.exceptions import TwilioRestException

from campaigns.providers.base import MessageStatus, SmsMessage
from campaigns.providers.twilio import TwilioProvider, twilio_error
from integrations.errors import AuthError, BadResponse
from integrations.http import HttpClient
from tests.prism import prism_mocks

pytestmark = [pytest.mark.django_db, pytest.mark.prism]

DESCRIPTION = Path(__file__).resolve().parents[1] / "contracts" / "twilio" / "twilio_api_v2010.json"
SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"  # the account of the description's examples
CREDENTIALS = {"account_sid": SID, "auth_token": "contract-token", "from_number": "+15005550006"}
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"


@pytest.fixture(scope="module")
def prism():
    with prism_mocks(DESCRIPTION) as (base_url,):
        yield base_url


@pytest.fixture
def recorded() -> list[tuple[str, str, int, str, str]]:
    """(method, path, status, Prism's violations or refusal, body sent) of every request."""
    return []


@pytest.fixture
def connect(prism, recorded, make_connection, tenant_a, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True

    def connect(**credentials: str) -> TwilioProvider:
        connection = make_connection(tenant_a, "twilio", credentials={**CREDENTIALS, **credentials}, base_url=prism)
        client = HttpClient(allow_private=True, timeout=(2.0, 10.0), sleep=lambda s: None)
        send = client.session.send

        def recording(request, **kwargs):
            response = send(request, **kwargs)
            said = response.headers.get("sl-violations", "") if response.status_code < 400 else response.text
            body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
            recorded.append((request.method, request.path_url, response.status_code, said, body))
            return response

        client.session.send = recording
        return TwilioProvider(connection, client=client)

    return connect


def sms(**kwargs) -> SmsMessage:
    callback = "https://hub.example.com/webhooks/twilio/status?message=msg_41"
    return SmsMessage(**{"to": "+14155552345", "body": "Order #1042 shipped.", "status_callback": callback, **kwargs})


def test_a_message_from_a_number_is_a_request_the_description_accepts(connect, recorded):
    result = connect().send_sms(sms())
    [(method, path, status, said, body)] = recorded
    assert (method, path, status, said) == ("POST", MESSAGES, 201, "")
    assert set(parse_qs(body)) == {"To", "Body", "From", "StatusCallback"}
    # The description's first example, in the hub's terms.
    assert (result.status, result.provider_id) == (MessageStatus.QUEUED, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")


def test_a_message_from_a_messaging_service_is_a_request_the_description_accepts(connect, recorded):
    provider = connect(from_number="", messaging_service_sid="MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert provider.send_sms(sms(status_callback="")).status == MessageStatus.QUEUED
    [(_, _, status, said, body)] = recorded
    assert (status, said) == (201, "")
    assert set(parse_qs(body)) == {"To", "Body", "MessagingServiceSid"}


def test_the_connection_test_reads_the_documented_account(connect, recorded):
    result = connect().check()
    assert result.ok, result.message
    assert result.message == "Connected to Twilio (full account), sending from a From number."
    assert [(m, p, status, said) for m, p, status, said, _ in recorded] == [
        ("GET", f"/2010-04-01/Accounts/{SID}.json", 200, "")
    ]


def test_a_request_without_credentials_is_refused_as_an_auth_error(connect, recorded, monkeypatch):
    provider = connect()
    provider.account()
    monkeypatch.setattr(provider._clients[True], "password", None)  # the package then sends no Basic auth
    with pytest.raises(AuthError):
        provider.send_sms(sms())
    assert [(m, p, status) for m, p, status, _, _ in recorded] == [("POST", MESSAGES, 401)]


def test_a_request_the_description_refuses_fails(connect, recorded):
    with pytest.raises(TwilioRestException) as caught:
        connect().account().messages.create(to=values.unset, body="no recipient", from_="+15005550006")
    [(_, path, status, said, _)] = recorded
    assert (path, status) == (MESSAGES, 422)
    assert "required property 'To'" in said, said
    error = twilio_error(caught.value)
    assert isinstance(error, BadResponse) and error.status == 422
