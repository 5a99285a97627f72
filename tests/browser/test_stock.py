"""A client sets a SKU's stock once and sees it pushed to every channel selling it, in a real
browser; a channel that refuses shows the platform's reason."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from commerce import pushes
from commerce.models import StockItem, StockListing
from commerce.pushes import PushResult
from tenants.models import Membership, Role
from tests.commerce.stock_world import FakePusher
from tests.fakes.hook_receiver import run_queued_tasks

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser

OWNER = "owner@mugs.example"


@pytest.fixture
def mugs(transactional_db, make_tenant, make_connection, tenant_b):
    tenant = make_tenant("Mug Co")
    user = get_user_model().objects.create_user(OWNER, OWNER, PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
    shop = make_connection(tenant, "shopify", name="Mug Shopify")
    woo = make_connection(tenant, "woocommerce", name="Mug Woo")
    item = StockItem.objects.create(tenant=tenant, sku="MUG-1", title="Enamel Mug", on_hand=5)
    for connection, ids in ((shop, ("gid://p/1", "gid://v/1")), (woo, ("44", "45"))):
        StockListing.objects.create(
            tenant=tenant, item=item, connection=connection, product_external_id=ids[0], variant_external_id=ids[1]
        )
    StockItem.objects.create(tenant=tenant_b, sku="MUG-1", title="Not yours", on_hand=99)
    pusher = FakePusher()
    pusher.answers[woo.pk] = [PushResult(ok=False, message="Invalid parameter(s): stock_quantity", retryable=False)]
    previous = pushes._registered
    pushes.register(pusher)
    yield {"item": item, "shop": shop, "woo": woo, "pusher": pusher}
    pushes.register(previous)


def test_setting_stock_pushes_to_every_channel_and_shows_each_result(live_server, page, mugs):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", OWNER)
    page.goto(f"{live_server.url}/dashboard/stock/sku/MUG-1/")
    expect(page.locator("body")).not_to_contain_text("Not yours")
    page.fill("#set-stock input[name=quantity]", "12")
    with page.expect_navigation():
        page.click("#set-stock button[type=submit]")
    run_queued_tasks()  # the worker pushes to both channels
    assert mugs["pusher"].to(mugs["shop"]) == [12] and mugs["pusher"].to(mugs["woo"]) == [12]

    page.reload()
    shopify_row = page.locator("#listing-table tr", has_text="Mug Shopify")
    woo_row = page.locator("#listing-table tr", has_text="Mug Woo")
    expect(shopify_row.locator(".push-state")).to_contain_text("12 landed")
    expect(woo_row.locator(".push-state")).to_contain_text("Invalid parameter(s): stock_quantity")
    mugs["item"].refresh_from_db()
    assert mugs["item"].on_hand == 12
    screenshot(page, "stock-item.png")
