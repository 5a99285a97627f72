"""A superadmin refunds part of a payment from the SuperAdmin dashboard, in a real browser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from payments import service
from payments.gateways import GATEWAYS
from payments.gateways.base import PaymentStatus
from payments.models import Refund
from tests.payments import fake_gateway

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def paid(transactional_db, monkeypatch, settings, tenant_a, make_connection):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    bank = fake_gateway.FakeBank()
    monkeypatch.setattr(fake_gateway, "BANK", bank)
    monkeypatch.setitem(GATEWAYS, "stripe", "tests.payments.fake_gateway.FakeGateway")
    connection = make_connection(tenant_a, "stripe", "Alpha Stripe", credentials={"secret_key": "sk_test_fake"})
    return service.create_payment(tenant_a, connection, Decimal("100.00"), "USD", payment_method="pm_card_visa")


def test_a_superadmin_refunds_part_of_a_payment(live_server, page, paid):
    from playwright.sync_api import expect

    assert paid.status == PaymentStatus.SUCCEEDED
    sign_in(page, f"{live_server.url}/admin/login/?next=/admin/payments/payment/", "root")
    row = page.locator("#result_list tbody tr", has_text=paid.gateway_id)
    expect(row).to_have_count(1)
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "refund_selected")
    with page.expect_navigation():
        page.click("button[name=index]")
    expect(page.locator("body")).to_contain_text("100.00 USD")
    page.fill("input[name=amount]", "30")
    page.fill("input[name=reason]", "damaged in transit")
    with page.expect_navigation():
        page.click("input[type=submit][value=Refund]")
    expect(page.locator(".messagelist")).to_contain_text(f"Payment {paid.pk}: refund of 30.00 USD succeeded.")
    expect(row).to_contain_text("Partially refunded")
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason) == (Decimal("30.00"), "damaged in transit")
    screenshot(page, "payments-admin.png")
