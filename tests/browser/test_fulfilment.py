"""A client ships an order from the fulfilment page, in a real browser: the pending list across
channels oldest first, the fulfil form, the push's result once the worker ran it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from commerce.models import FulfillmentStatus, Fulfilment, OrderLine
from tenants.models import Membership, Role
from tests.commerce.test_fulfilment import FakePlatform, install, run_queued

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser

OWNER = "owner@ship.example"


@pytest.fixture
def shop(transactional_db, make_tenant, make_connection, make_order, tenant_b):
    tenant = make_tenant("Ship Co")
    user = get_user_model().objects.create_user(OWNER, OWNER, PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
    shopify = make_connection(tenant, "shopify", name="Ship Shopify")
    amazon = make_connection(tenant, "amazon", name="Ship Amazon")
    now = timezone.now()
    orders = {}
    for number, connection, days in (("S-1", shopify, 1), ("A-7", amazon, 4)):
        order = make_order(
            connection,
            number=number,
            placed_at=now - timedelta(days=days),
            fulfillment_status=FulfillmentStatus.UNFULFILLED,
            financial_status="paid",
        )
        OrderLine.objects.create(
            tenant=tenant,
            connection=connection,
            external_id=f"line-{number}",
            order=order,
            sku="TENT",
            title="Trail Tent",
            quantity=1,
            unit_price=Decimal("120.00"),
            total=Decimal("120.00"),
        )
        orders[number] = order
    make_order(make_connection(tenant_b, "shopify"), number="B-9", fulfillment_status=FulfillmentStatus.UNFULFILLED)
    platform = FakePlatform()
    restore = install(platform)
    yield {"orders": orders, "platform": platform}
    restore()


def test_a_client_ships_the_oldest_order_and_sees_the_push_land(live_server, page, shop):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    page.click("header nav >> text=Fulfilment")
    rows = page.locator("#pending-orders tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("#A-7")  # the oldest first, whatever its channel
    expect(rows.nth(1)).to_contain_text("#S-1")
    expect(page.locator("#pending-orders")).not_to_contain_text("B-9")  # another tenant's

    oldest = rows.nth(0)
    oldest.locator("summary").click()
    oldest.locator("input[name=tracking_number]").fill("1Z999AA10123456784")
    oldest.locator("select[name=carrier]").select_option("ups")
    with page.expect_navigation():
        oldest.locator("button[type=submit]").click()

    fulfilment = Fulfilment.objects.get()
    assert (fulfilment.order_id, fulfilment.tracking_number) == (shop["orders"]["A-7"].pk, "1Z999AA10123456784")
    run_queued()  # the worker pushes it
    assert [push.tracking_number for push in shop["platform"].calls] == ["1Z999AA10123456784"]

    page.reload()
    expect(page.locator(f'#fulfilments tr[data-fulfilment="{fulfilment.pk}"]')).to_contain_text("Pushed")
    expect(rows).to_have_count(1)  # only S-1 is left to ship
    screenshot(page, "fulfilment.png")
