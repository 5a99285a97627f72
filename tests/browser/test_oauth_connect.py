"""A superadmin connects a client's Shopify store by OAuth, in a real browser, through a local
fake Shopify that shows the consent page, issues the token and answers the connection test."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from integrations.models import ConnectionStatus
from tests.fakes.shopify_oauth_server import FakeShopifyOAuth

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser

SHOP = "gamma-gear.myshopify.com"


def test_a_superadmin_connects_a_shopify_store_with_the_connect_button(
    live_server, page, transactional_db, settings, make_tenant, make_connection
):
    from playwright.sync_api import expect

    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True  # the fake runs on 127.0.0.1
    settings.PUBLIC_BASE_URL = ""
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    tenant = make_tenant("Gamma Gear")

    with FakeShopifyOAuth(shop=SHOP, orders=3, products=2, customers=1).running() as fake:
        connection = make_connection(
            tenant,
            "shopify",
            name="Gamma Shopify",
            base_url=fake.url,
            credentials={"shop_domain": SHOP, "client_id": fake.client_id, "client_secret": fake.client_secret},
        )
        sign_in(page, f"{live_server.url}/admin/login/?next=/admin/", "root")
        page.goto(f"{live_server.url}/admin/integrations/connection/{connection.pk}/change/")

        with page.expect_navigation():
            page.click("#oauth-connect")
        expect(page.locator("h1")).to_have_text(f"Install this app on {SHOP}?")
        asked = fake.authorize_requests[-1]
        assert asked["redirect_uri"] == f"{live_server.url}/integrations/oauth/shopify/callback"
        assert "read_orders" in asked["scope"].split(",")

        with page.expect_navigation():
            page.click("#install")
        expect(page.locator("#oauth-message")).to_have_text(
            "Gamma Shopify is connected to Shopify and its test passed."
        )
        expect(page.locator("#oauth-check")).to_contain_text("Orders")
        assert fake.exchanged_codes == ["code-1"]
        connection.refresh_from_db()
        assert connection.credentials["access_token"] == "shpat_offline_1"
        assert connection.status == ConnectionStatus.CONNECTED
        assert "shpat_offline_1" not in page.content()
        screenshot(page, "oauth-connected.png")

        # Back on the connection's page, which now shows it connected.
        with page.expect_navigation():
            page.click("#oauth-back")
        assert page.url == f"{live_server.url}/admin/integrations/connection/{connection.pk}/change/"
        expect(page.locator(".field-status .readonly")).to_have_text("Connected")

        # Going back to the consent answer (the browser's Back, a bookmark) does not connect twice.
        page.go_back()
        page.reload()
        expect(page.locator("#oauth-message")).to_contain_text("already used")
        assert fake.exchanged_codes == ["code-1"]
