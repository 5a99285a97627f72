"""The SendGrid provider against a Prism mock of SendGrid's Mail Send description
(tests/contracts/sendgrid/, copied unchanged from shared/specs/sendgrid/). Prism runs with
`--errors`: a body the description refuses, or no bearer token, is answered 4xx and fails the
test. The description leaves objects open, so a misspelt field would pass Prism: the bodies sent
are also checked against its request schema closed (`strict`). It describes mail/send only, so
the connection test (scopes, verified senders) is covered by test_sendgrid.py alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from campaigns.providers.base import EmailMessage, MessageStatus
from campaigns.providers.sendgrid import SendGridProvider, SendGridRefused
from integrations.errors import AuthError
from integrations.http import HttpClient
from tests.prism import prism_mocks

pytestmark = pytest.mark.django_db

DESCRIPTION = Path(__file__).resolve().parents[1] / "contracts" / "sendgrid" / "tsg_mail_v3.json"
CREDENTIALS = {"api_key": "SG.contract-key", "from_email": "orders@example.com"}


@pytest.fixture(scope="module")
def prism():
    with prism_mocks(DESCRIPTION) as (base_url,):
        yield base_url


@pytest.fixture
def recorded() -> list[tuple[str, str, int, str, Any]]:
    """(method, path, status, Prism's violations or refusal, JSON body sent) of every request."""
    return []


@pytest.fixture
def connect(prism, recorded, make_connection, tenant_a, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True

    def connect(**credentials: str) -> SendGridProvider:
        connection = make_connection(tenant_a, "sendgrid", credentials={**CREDENTIALS, **credentials}, base_url=prism)
        client = HttpClient(allow_private=True, timeout=(2.0, 10.0), sleep=lambda s: None)
        send = client.session.send

        def recording(request, **kwargs):
            response = send(request, **kwargs)
            # Prism answers a refused body with the description's 400 example; its reason is in
            # the sl-violations header.
            said = response.headers.get("sl-violations", "")
            if response.status_code >= 400:
                said = f"{said} {response.text}".strip()
            body = json.loads(request.body) if request.body else None
            recorded.append((request.method, request.path_url, response.status_code, said, body))
            return response

        client.session.send = recording
        return SendGridProvider(connection, client=client)

    return connect


def strict_violations(body: Any) -> list[str]:
    """The body against the description's mail/send schema with its objects closed."""
    spec = json.loads(DESCRIPTION.read_text())
    schema = copy.deepcopy(spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"])

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    close(spec["components"]["schemas"])
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


def email(**kwargs) -> EmailMessage:
    defaults = {
        "to": "ada@example.net",
        "subject": "Your order #1042 has shipped",
        "html": "<p>Order #1042 is on its way.</p>",
        "text": "Order #1042 is on its way.",
        "reference": "msg_41",
    }
    return EmailMessage(**{**defaults, **kwargs})


@pytest.mark.prism
def test_a_plain_message_is_a_request_the_description_accepts(connect, recorded):
    result = connect().send_email(email())
    [(method, path, status, said, body)] = recorded
    assert (method, path, status, said) == ("POST", "/v3/mail/send", 202, "")
    assert not strict_violations(body)
    assert result.status == MessageStatus.QUEUED


@pytest.mark.prism
def test_a_campaign_message_with_every_field_is_a_request_the_description_accepts(connect, recorded):
    message = email(
        from_email="news@example.com",
        from_name="Example News",
        reply_to="help@example.com",
        headers={
            "List-Unsubscribe": "<https://hub.example.com/u/abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        categories=("campaign", "spring-sale"),
    )
    connect().send_email(message)
    [(_, _, status, said, body)] = recorded
    assert (status, said) == (202, "")
    assert not strict_violations(body)
    assert set(body) == {"personalizations", "from", "reply_to", "subject", "content", "headers", "categories"}


@pytest.mark.prism
def test_a_request_without_the_bearer_token_is_refused_as_an_auth_error(connect, recorded, monkeypatch):
    provider = connect()
    monkeypatch.setattr(provider, "_request", _without_auth(provider))
    with pytest.raises(AuthError):
        provider.send_email(email())
    assert [(m, p, status) for m, p, status, _, _ in recorded] == [("POST", "/v3/mail/send", 401)]


@pytest.mark.prism
def test_a_body_the_description_refuses_fails_with_its_reason(connect, recorded, monkeypatch):
    provider = connect()
    monkeypatch.setattr(provider, "mail", lambda message: {"personalizations": [], "subject": "No sender"})
    with pytest.raises(SendGridRefused) as caught:
        provider.send_email(email())
    [(_, _, status, said, _)] = recorded
    assert status == 400 and "must have required property 'from'" in said, said
    assert caught.value.status == 400


def test_a_field_the_description_does_not_have_fails_the_strict_check():
    body = {
        "personalizations": [{"to": [{"email": "ada@example.net"}], "custom_args": {"hub_message_id": "msg_41"}}],
        "from": {"email": "orders@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    }
    assert not strict_violations(body)
    assert strict_violations({**body, "from": {"address": "orders@example.com"}})
    assert strict_violations({**body, "unsubscribe": "yes"})


def _without_auth(provider: SendGridProvider):
    def request(method: str, path: str, **kwargs: Any):
        return provider.client.request(method, f"{provider.connection.base_url}{path}", **kwargs)

    return request
