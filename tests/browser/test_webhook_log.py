"""A superadmin finds a parked webhook event, reads it, and replays it, in a real browser."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from integrations.models import Connection
from tenants.models import Tenant
from webhooks.models import EventStatus, WebhookEvent

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_superadmin_replays_a_parked_event(live_server, page, transactional_db):
    from playwright.sync_api import expect

    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    tenant = Tenant.objects.create(name="Delta Deals", slug="delta", contact_email="d@example.com")
    shop = Connection.objects.create(tenant=tenant, platform="shopify", name="Delta Shopify")
    parked = WebhookEvent.objects.create(
        tenant=tenant,
        connection=shop,
        provider="shopify",
        topic="orders/updated",
        event_id="wh-parked-1",
        body=json.dumps({"id": 7, "note": "keep me", "access_token": "shpat_never_shown"}),
        status=EventStatus.PARKED,
        attempts=6,
        error="Gave up after 6 attempts. OperationalError: database is locked",
    )
    WebhookEvent.objects.create(
        tenant=tenant,
        connection=shop,
        provider="shopify",
        topic="products/update",
        event_id="wh-ok",
        status=EventStatus.PROCESSED,
    )

    sign_in(page, f"{live_server.url}/admin/login/?next=/admin/webhooks/webhookevent/", "root")
    with page.expect_navigation():
        page.locator("#changelist-filter a", has_text="Failed, parked").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("orders/updated")
    rows.first.locator("th a, td a").first.click()

    expect(page.locator(".field-body_display pre")).to_contain_text('"note": "keep me"')
    assert "shpat_never_shown" not in page.content()
    with page.expect_navigation():
        page.click("#replay-event")
    expect(page.locator(".messagelist")).to_contain_text("queued again")
    screenshot(page, "admin-webhook-event.png")
    parked.refresh_from_db()
    assert parked.status == EventStatus.RECEIVED and parked.attempts == 0

    page.goto(f"{live_server.url}/admin/webhooks/webhookevent/health/")
    expect(page.locator("#webhook-health")).to_contain_text("Delta Shopify")
