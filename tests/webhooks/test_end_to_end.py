"""The whole path against a local fake Shopify: a successful test registers the hub's webhooks; a
signed delivery is stored, processed by the task, and lands in the same row a sync wrote; a late,
older delivery changes nothing; app/uninstalled disconnects the connection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django_q.models import OrmQ

from commerce.models import Order
from integrations import services
from integrations.connectors.shopify import ShopifyConnector
from integrations.models import ConnectionStatus, SyncStatus
from integrations.sync import run_sync
from tests.fakes.shopify_server import FakeClock, FakeShopify
from webhooks import processing, tasks
from webhooks.models import EventStatus, WebhookEvent, WebhookSubscription

from .conftest import SHOPIFY_SECRET, shopify_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "webhooks"


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def store(settings, clock):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    settings.PUBLIC_BASE_URL = "https://hub.example.com"
    server = FakeShopify(orders=3, products=2, customers=3, clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def connection(make_connection, tenant_a, store):
    return make_connection(
        tenant_a,
        "shopify",
        base_url=store.url,
        credentials={
            "shop_domain": "fake-shop.myshopify.com",
            "access_token": "shpat_fake_token",
            "client_secret": SHOPIFY_SECRET,
        },
    )


def deliver(connection, topic: str, payload: dict, webhook_id: str):
    body = json.dumps(payload).encode()
    return Client().post(
        f"/webhooks/shopify/{connection.uuid}/",
        body,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic,
        HTTP_X_SHOPIFY_HMAC_SHA256=shopify_signature(body),
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
    )


def order_payload(order: Order, updated_at: datetime, total: str) -> dict:
    """Shopify's documented orders/updated payload, made to describe one of the synced orders."""
    payload = json.loads((FIXTURES / "orders__updated.json").read_text())
    number = order.external_id.rsplit("/", 1)[1]
    payload.update(
        id=int(number),
        admin_graphql_api_id=order.external_id,
        updated_at=updated_at.isoformat(),
        total_price=total,
        total_price_set={
            "shop_money": {"amount": total, "currency_code": "USD"},
            "presentment_money": {"amount": total, "currency_code": "USD"},
        },
    )
    return payload


def test_test_registers_then_a_delivery_updates_the_synced_row(
    connection, store, clock, django_capture_on_commit_callbacks
):
    # Test connection succeeds → registration is queued; the task registers every topic.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.test_connection(connection).ok
    assert [q.task["func"] for q in OrmQ.objects.all()] == ["webhooks.tasks.register_webhooks"]
    assert tasks.register_webhooks(connection.pk).startswith("13 topics registered (13 new")
    address = f"https://hub.example.com/webhooks/shopify/{connection.uuid}/"
    assert {s["uri"] for s in store.webhook_subscriptions.values()} == {address}
    assert WebhookSubscription.objects.filter(connection=connection).count() == 13
    assert tasks.register_webhooks(connection.pk) == "13 topics registered (0 new, 0 removed)"

    # A sync writes the orders.
    connector = ShopifyConnector(connection, sleep=clock.sleep)
    assert run_sync(connection, ["orders"], connector=connector).status == SyncStatus.SUCCEEDED
    order = Order.objects.for_tenant(connection.tenant).order_by("external_id").first()
    stored_at = order.platform_updated_at
    assert Order.objects.for_tenant(connection.tenant).count() == 3

    # A newer webhook updates that very row.
    newer = order_payload(order, stored_at + timedelta(minutes=5), "123.45")
    assert deliver(connection, "orders/updated", newer, "wh-newer").status_code == 200
    event = WebhookEvent.objects.get(event_id="wh-newer")
    assert processing.process(event.pk).startswith("processed")
    assert Order.objects.for_tenant(connection.tenant).count() == 3
    order.refresh_from_db()
    assert order.total == Decimal("123.45")

    # An older one, delivered late, changes nothing.
    older = order_payload(order, stored_at + timedelta(minutes=1), "1.00")
    assert deliver(connection, "orders/updated", older, "wh-older").status_code == 200
    late = WebhookEvent.objects.get(event_id="wh-older")
    processing.process(late.pk)
    late.refresh_from_db()
    assert late.status == EventStatus.PROCESSED
    order.refresh_from_db()
    assert order.total == Decimal("123.45")

    # The app is uninstalled: the connection is disconnected and stops syncing.
    uninstalled = json.loads((FIXTURES / "app__uninstalled.json").read_text())
    assert deliver(connection, "app/uninstalled", uninstalled, "wh-bye").status_code == 200
    processing.process(WebhookEvent.objects.get(event_id="wh-bye").pk)
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert not WebhookSubscription.objects.filter(connection=connection).exists()
