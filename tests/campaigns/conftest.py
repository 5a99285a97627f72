"""Fixtures of the messaging tests: every provider replaced by the fake post office
(`fake_provider.py`), never a real provider module, and messaging connections to send through."""

from __future__ import annotations

import pytest

from campaigns.providers import PROVIDERS

from . import fake_provider

FAKES = {
    "twilio": "tests.campaigns.fake_provider.FakeSmsProvider",
    "sendgrid": "tests.campaigns.fake_provider.FakeEmailProvider",
}
TWILIO_TOKEN = "twilio-auth-token-for-tests"


@pytest.fixture
def office(monkeypatch) -> fake_provider.PostOffice:
    post = fake_provider.PostOffice()
    monkeypatch.setattr(fake_provider, "OFFICE", post)
    for platform, path in FAKES.items():
        monkeypatch.setitem(PROVIDERS, platform, path)
    return post


@pytest.fixture
def twilio_a(tenant_a, make_connection, office):
    return make_connection(
        tenant_a, "twilio", "Alpha SMS", credentials={"account_sid": "AC01", "auth_token": TWILIO_TOKEN}
    )


@pytest.fixture
def sendgrid_a(tenant_a, make_connection, office):
    return make_connection(
        tenant_a, "sendgrid", "Alpha email", credentials={"api_key": "SG.fake", "from_email": "shop@example.com"}
    )


@pytest.fixture
def twilio_b(tenant_b, make_connection, office):
    return make_connection(
        tenant_b, "twilio", "Beta SMS", credentials={"account_sid": "AC02", "auth_token": TWILIO_TOKEN}
    )
