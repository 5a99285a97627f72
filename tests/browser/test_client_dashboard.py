"""A client signs in and uses their dashboard, in a real browser."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from commerce.models import Customer, FulfillmentStatus, InventoryLevel, OrderLine, OrderStatus, Product, ProductVariant
from tenants.models import Membership, Role

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser

OWNER = "owner@alpha.example"
# number, channel, email, total, days ago, product, quantity, fulfilment
ORDERS = [
    ("S-1001", "shopify", "ann@example.com", "120.00", 1, "Trail Tent 2P", 1, FulfillmentStatus.UNFULFILLED),
    ("S-1002", "shopify", "bo@example.com", "89.50", 2, "Camp Stove", 2, FulfillmentStatus.FULFILLED),
    ("S-1003", "shopify", "cy@example.com", "240.00", 5, "Trail Tent 2P", 2, FulfillmentStatus.FULFILLED),
    ("A-2001", "amazon", "ann@example.com", "310.25", 3, "Down Jacket", 1, FulfillmentStatus.FULFILLED),
    ("A-2002", "amazon", "dee@example.com", "64.00", 8, "Merino Socks", 4, FulfillmentStatus.PARTIAL),
    ("W-3001", "woocommerce", "eve@example.com", "150.75", 12, "Camp Stove", 3, FulfillmentStatus.FULFILLED),
    ("W-3002", "woocommerce", "fay@example.com", "60.00", 20, "Merino Socks", 4, FulfillmentStatus.FULFILLED),
]
REVENUE = sum(Decimal(row[3]) for row in ORDERS)  # 1,034.50


@pytest.fixture
def alpha(transactional_db, make_tenant, make_connection, make_order, tenant_b):
    """A small shop with known figures, and another tenant's order that must never show."""
    tenant = make_tenant("Alpha Outdoor")
    user = get_user_model().objects.create_user(OWNER, OWNER, PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
    connections = {
        platform: make_connection(tenant, platform, name=f"Alpha {label}")
        for platform, label in (("shopify", "Shopify"), ("amazon", "Amazon"), ("woocommerce", "WooCommerce"))
    }
    now = timezone.now()
    for n, (number, channel, email, total, days, title, quantity, fulfilment) in enumerate(ORDERS):
        connection = connections[channel]
        customer = Customer.objects.create(
            tenant=tenant, connection=connection, external_id=f"c-{n}", email=email, first_name=email.split("@")[0]
        )
        order = make_order(
            connection,
            number=number,
            email=email,
            customer=customer,
            total=Decimal(total),
            subtotal=Decimal(total),
            placed_at=now - timedelta(days=days, hours=n),
            fulfillment_status=fulfilment,
            status=OrderStatus.COMPLETED if fulfilment == FulfillmentStatus.FULFILLED else OrderStatus.OPEN,
            financial_status="paid",
        )
        OrderLine.objects.create(
            tenant=tenant,
            connection=connection,
            external_id=f"l-{n}",
            order=order,
            sku=title.upper().replace(" ", "-")[:12],
            title=title,
            quantity=quantity,
            unit_price=Decimal(total) / quantity,
            total=Decimal(total),
        )
    for n, (title, available) in enumerate((("Trail Tent 2P", 2), ("Camp Stove", 0), ("Down Jacket", 25))):
        connection = connections["shopify"]
        product = Product.objects.create(tenant=tenant, connection=connection, external_id=f"p-{n}", title=title)
        variant = ProductVariant.objects.create(
            tenant=tenant, connection=connection, external_id=f"v-{n}", product=product, sku=f"SKU-{n}", currency="USD"
        )
        InventoryLevel.objects.create(
            tenant=tenant, connection=connection, external_id=f"i-{n}", variant=variant, available=available
        )
    other = make_order(make_connection(tenant_b, "amazon"), number="B-9002", email="ann@example.com")
    return {"tenant": tenant, "other_order": other}


def test_a_client_sees_their_figures_and_charts(live_server, page, alpha):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    assert page.url == f"{live_server.url}/dashboard/"
    expect(page.locator('[data-kpi="revenue-USD"] .value')).to_have_text(f"{REVENUE:,.2f}")
    expect(page.locator('[data-kpi="orders"] .value')).to_have_text(str(len(ORDERS)))
    expect(page.locator('[data-kpi="unshipped"] .value')).to_have_text("2")
    expect(page.locator('[data-kpi="low-stock"] .value')).to_have_text("1")
    expect(page.locator('[data-kpi="out-of-stock"] .value')).to_have_text("1")
    for chart in ("chart-sales", "chart-channels", "chart-top-products"):
        expect(page.locator(f"#{chart} svg").first).to_be_visible()
    expect(page.locator("#chart-channels")).to_contain_text("Shopify")
    expect(page.locator("#chart-channels")).to_contain_text("WooCommerce")
    expect(page.locator("#preferred-channel")).to_contain_text("Your best channel: Shopify")
    expect(page.locator("#connections")).to_contain_text("Alpha Amazon")
    expect(page.locator("body")).not_to_contain_text("B-9002")
    screenshot(page, "client-dashboard.png")


def test_a_client_filters_their_orders_by_channel_and_by_search(live_server, page, alpha):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    page.click("header nav >> text=Orders")
    rows = page.locator("#orders-table tbody tr")
    expect(rows).to_have_count(len(ORDERS))

    form = page.locator("#order-filters")
    form.locator("select[name=channel]").select_option("amazon")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#orders-table tbody td.channel")).to_have_text(["Amazon", "Amazon"])

    form.locator("select[name=channel]").select_option("")
    form.locator("input[name=q]").fill("ann@")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#orders-table")).to_contain_text("#S-1001")
    expect(page.locator("#orders-table")).to_contain_text("#A-2001")
    expect(page.locator("#orders-table")).not_to_contain_text("B-9002")

    form.locator("select[name=status]").select_option("completed")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#orders-table")).to_contain_text("#A-2001")
    screenshot(page, "client-orders.png")


def test_a_client_cannot_open_another_tenants_order(live_server, page, alpha):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    response = page.goto(f"{live_server.url}/dashboard/orders/{alpha['other_order'].pk}/")
    assert response.status == 404
    expect(page.locator("body")).to_contain_text("Not Found")
    assert "B-9002" not in page.content()


def test_the_client_pages_have_no_javascript_errors(live_server, page, js_errors, alpha):
    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    own_order = page.locator("#recent-orders a").first.get_attribute("href")
    for path in (
        "/dashboard/",
        "/dashboard/?period=7",
        "/dashboard/?period=90",
        "/dashboard/?period=custom&start=2026-02-10&end=2026-02-01",
        "/dashboard/orders/?channel=shopify",
        own_order,
        "/dashboard/stock/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.ok, path
        page.wait_for_load_state("load")
    assert js_errors.messages == []
