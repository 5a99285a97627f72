"""The webhook event log in the SuperAdmin dashboard: filters, redacted detail, replay, health."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from integrations.models import HUB_WEBHOOK_SECRET, Connection
from tenants.models import AuditLog
from webhooks.models import EventStatus, WebhookEvent

from .conftest import generic_signature


@pytest.fixture
def admin(superadmin):
    client = Client()
    client.force_login(superadmin)
    return client


def event(connection, **kwargs):
    defaults = {
        "provider": connection.platform,
        "topic": "orders/updated",
        "event_id": f"e-{WebhookEvent.objects.count()}",
        "body": json.dumps({"id": 1, "customer": {"email": "a@example.com"}, "access_token": "shpat_leaky_value"}),
        "headers": {"x-shopify-topic": "orders/updated", "authorization": "[redacted]"},
    }
    defaults.update(kwargs)
    return WebhookEvent.objects.create(tenant=connection.tenant, connection=connection, **defaults)


def test_the_log_lists_and_filters_events(admin, shop, woo):
    event(shop, status=EventStatus.PARKED, error="boom")
    event(woo, provider="woocommerce", topic="order.updated", status=EventStatus.PROCESSED)
    page = admin.get("/admin/webhooks/webhookevent/")
    assert page.status_code == 200

    def topics(query: str) -> list[str]:
        return sorted(e.topic for e in admin.get(f"/admin/webhooks/webhookevent/{query}").context["cl"].result_list)

    assert topics("") == ["order.updated", "orders/updated"]
    assert topics("?status__exact=parked") == ["orders/updated"]
    assert topics("?provider__exact=woocommerce") == ["order.updated"]
    assert topics(f"?connection__id__exact={woo.pk}") == ["order.updated"]
    assert topics("?topic=orders%2Fupdated") == ["orders/updated"]


def test_the_detail_shows_body_and_headers_with_secrets_hidden(admin, shop):
    item = event(shop)
    page = admin.get(f"/admin/webhooks/webhookevent/{item.pk}/change/").content.decode()
    assert "a@example.com" in page and "x-shopify-topic" in page
    assert "shpat_leaky_value" not in page
    assert 'id="replay-event"' in page


def test_replay_button_queues_a_parked_event(admin, shop, django_capture_on_commit_callbacks):
    item = event(shop, status=EventStatus.PARKED, attempts=6, error="gave up")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin.post(f"/admin/webhooks/webhookevent/{item.pk}/replay/")
    assert response.status_code == 302 and len(callbacks) == 1
    item.refresh_from_db()
    assert item.status == EventStatus.RECEIVED and item.attempts == 0
    assert AuditLog.objects.filter(action="webhooks.replayed").exists()
    assert admin.get(f"/admin/webhooks/webhookevent/{item.pk}/replay/").status_code == 405


def test_bulk_replay_skips_rejected_events(admin, shop):
    parked = event(shop, status=EventStatus.PARKED)
    rejected = event(shop, status=EventStatus.REJECTED, signature_valid=False, event_id="")
    response = admin.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay_selected", "_selected_action": [parked.pk, rejected.pk]},
        follow=True,
    )
    assert "1 event(s) queued again. 1 skipped" in response.content.decode()
    assert WebhookEvent.objects.get(pk=rejected.pk).status == EventStatus.REJECTED


def test_staff_who_are_not_superusers_cannot_replay(shop, db):
    staff = get_user_model().objects.create_user("ops", password="pw-for-tests-1", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client = Client()
    client.force_login(staff)
    item = event(shop, status=EventStatus.PARKED)
    assert client.get("/admin/webhooks/webhookevent/").status_code == 200
    assert client.post(f"/admin/webhooks/webhookevent/{item.pk}/replay/").status_code == 403
    assert WebhookEvent.objects.get(pk=item.pk).status == EventStatus.PARKED


def test_the_health_page_shows_each_connection(admin, shop):
    event(shop, status=EventStatus.PARKED)
    page = admin.get("/admin/webhooks/webhookevent/health/").content.decode()
    assert 'id="webhook-health"' in page and shop.name in page


def test_the_connection_page_shows_addresses_and_health(admin, shop, settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.com"
    event(shop)
    page = admin.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert f"https://hub.example.com/webhooks/shopify/{shop.uuid}/" in page
    assert "Last 24 h: 1 received" in page


def test_a_new_third_party_secret_is_shown_once_and_verifies(admin, shop):
    response = admin.post(f"/admin/integrations/connection/{shop.pk}/webhook-secret/")
    assert response.status_code == 200
    secret = Connection.objects.get(pk=shop.pk).credentials[HUB_WEBHOOK_SECRET]
    assert secret in response.content.decode()
    assert secret not in admin.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert AuditLog.objects.filter(action="connection.webhook_secret_created").exists()
    body = json.dumps({"id": "1", "event": "ping"}).encode()
    stamp = int(time.time())
    delivered = Client().post(
        f"/webhooks/third-party/erp/{shop.uuid}/",
        body,
        content_type="application/json",
        HTTP_X_HUB_TIMESTAMP=str(stamp),
        HTTP_X_HUB_SIGNATURE_256=generic_signature(body, stamp, secret),
    )
    assert delivered.status_code == 200
