"""A superadmin adds a client and connects its Shopify store, in a real browser."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from integrations.models import Connection, ConnectionStatus
from tenants.models import Membership, Role, Tenant

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def superadmin_login(transactional_db) -> str:
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    return "root"


def test_a_superadmin_adds_a_client_and_a_shopify_connection(live_server, page, superadmin_login):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/admin/login/?next=/admin/", superadmin_login)
    expect(page.locator("#site-name")).to_be_visible()

    # Add client: the tenant and its owner's login in one form.
    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    page.click("text=Add client")
    page.locator("#id_name").press_sequentially("Gamma Gear")
    expect(page.locator("#id_slug")).to_have_value("gamma-gear")  # filled in from the name
    page.fill("#id_contact_email", "hello@gamma.example")
    page.fill("#id_owner_email", "owner@gamma.example")
    page.fill("#id_owner_password1", PASSWORD)
    page.fill("#id_owner_password2", PASSWORD)
    with page.expect_navigation():
        page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Gamma Gear")
    tenant = Tenant.objects.get(slug="gamma-gear")
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER

    # Integrations → Connections → Add: choosing the platform reloads the form with its credentials.
    page.goto(f"{live_server.url}/admin/integrations/connection/")
    page.click("text=Add connection")
    page.select_option("#id_tenant", label="Gamma Gear")
    page.fill("#id_name", "Gamma Shopify")
    expect(page.locator("#id_cred_shop_domain")).to_have_count(0)
    with page.expect_navigation():
        page.select_option("#id_platform", "shopify")
    assert "platform=shopify" in page.url
    expect(page.locator("#id_tenant")).to_have_value(str(tenant.pk))
    expect(page.locator("#id_name")).to_have_value("Gamma Shopify")
    page.fill("#id_cred_shop_domain", "gamma-gear.myshopify.com")
    page.fill("#id_cred_access_token", "shpat_browser_test_token")
    with page.expect_navigation():
        page.click("input[name=_save]")

    row = page.locator("#result_list tbody tr", has_text="Gamma Shopify")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-status_badge")).to_have_text("Untested")
    connection = Connection.objects.for_tenant(tenant).get()
    assert connection.status == ConnectionStatus.UNTESTED
    assert connection.credentials["access_token"] == "shpat_browser_test_token"

    row.locator("a", has_text="Gamma Shopify").click()
    expect(page.locator(".field-status .readonly")).to_have_text("Untested")
    assert "shpat_browser_test_token" not in page.content()

    response = page.goto(f"{live_server.url}/admin/")
    assert response.ok
    screenshot(page, "admin-index.png")
