"""Outbound hooks in the SuperAdmin dashboard: the delivery log and the subscriptions, whose
signing secret is never shown."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.models import AuditLog
from webhooks.models import DeliveryStatus, HookDelivery, HookSubscription, Milestone
from webhooks.outbound.signing import new_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(superadmin):
    client = Client()
    client.force_login(superadmin)
    return client


@pytest.fixture
def hook(tenant_a):
    return HookSubscription.objects.create(
        tenant=tenant_a,
        target_url="https://hooks.zapier.example/hooks/1/abc",
        event="order.created",
        secret=new_secret(),
    )


def test_the_delivery_log_shows_each_attempts_outcome(admin, hook, tenant_a):
    item = HookDelivery.objects.create(
        tenant=tenant_a,
        subscription=hook,
        event=hook.event,
        webhook_id="msg_admin_1",
        payload={"type": "order.created", "data": {"number": "A-1"}},
        status=DeliveryStatus.RETRYING,
        attempts=2,
        response_code=503,
        response_ms=41,
        response_body="upstream busy",
        error="The target answered 503 Service Unavailable.",
    )

    listing = admin.get("/admin/webhooks/hookdelivery/?status__exact=retrying").content.decode()
    detail = admin.get(f"/admin/webhooks/hookdelivery/{item.pk}/change/").content.decode()

    assert "Failed, will retry" in listing and "503" in listing
    assert "upstream busy" in detail and "A-1" in detail


def test_a_subscription_page_never_shows_its_secret(admin, hook):
    page = admin.get(f"/admin/webhooks/hooksubscription/{hook.pk}/change/").content.decode()
    listing = admin.get("/admin/webhooks/hooksubscription/").content.decode()

    assert "hooks.zapier.example" in listing and "delivery log" in listing
    assert hook.secret not in page and hook.secret not in listing
    assert hook.secret.removeprefix("whsec_") not in page


def test_a_superadmin_can_switch_subscriptions_off(admin, hook, tenant_a):
    response = admin.post(
        "/admin/webhooks/hooksubscription/", {"action": "switch_off_selected", "_selected_action": [hook.pk]}
    )

    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.active is False and "superadmin" in hook.disabled_reason
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="hook.disabled").exists()


def test_milestones_are_listed(admin, tenant_a):
    Milestone.objects.create(tenant=tenant_a, kind="order_count", threshold=1000)

    assert admin.get("/admin/webhooks/milestone/").status_code == 200
