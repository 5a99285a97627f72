"""Fixtures of the payments app's own tests: every gateway replaced by the fake bank
(`fake_gateway.py`), never a real gateway module, and payment connections to charge through."""

from __future__ import annotations

import pytest

from payments.gateways import GATEWAYS

from . import fake_gateway

FAKE = "tests.payments.fake_gateway.FakeGateway"


@pytest.fixture
def fake_bank(monkeypatch, settings) -> fake_gateway.FakeBank:
    bank = fake_gateway.FakeBank()
    monkeypatch.setattr(fake_gateway, "BANK", bank)
    for platform in list(GATEWAYS):
        monkeypatch.setitem(GATEWAYS, platform, FAKE)
    settings.PAYMENTS_RETRY_DELAY_SECONDS = 0
    settings.PAYMENTS_MAX_ATTEMPTS = 3
    return bank


@pytest.fixture
def stripe_a(tenant_a, make_connection, fake_bank):
    return make_connection(
        tenant_a, "stripe", "Alpha Stripe", credentials={"secret_key": "sk_test_fake", "webhook_secret": "whsec_fake"}
    )


@pytest.fixture
def stripe_b(tenant_b, make_connection, fake_bank):
    return make_connection(tenant_b, "stripe", "Beta Stripe", credentials={"secret_key": "sk_test_fake_b"})
