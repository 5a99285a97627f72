"""Fixtures for webhook tests: signed deliveries to the receiver endpoints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from webhooks import processing
from webhooks.models import WebhookEvent

SHOPIFY_SECRET = "shpss_test_client_secret_0001"
WOO_SECRET = "woo-webhook-secret-0001"
HUB_SECRET = "hub-generic-secret-0001"


def shopify_signature(body: bytes, secret: str = SHOPIFY_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def generic_signature(body: bytes, stamp: int, secret: str = HUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(
        tenant_a,
        "shopify",
        credentials={"shop_domain": "alpha.myshopify.com", "access_token": "shpat_x", "client_secret": SHOPIFY_SECRET},
    )


@pytest.fixture
def woo(tenant_a, make_connection):
    return make_connection(
        tenant_a,
        "woocommerce",
        credentials={
            "site_url": "https://alpha.example.com",
            "consumer_key": "ck_x",
            "consumer_secret": "cs_x",
            "webhook_secret": WOO_SECRET,
        },
    )


@pytest.fixture
def deliver(db):
    """POST a Shopify-style delivery (signed unless told otherwise) and return the response."""
    client = Client()

    def post(connection, payload, *, topic="orders/updated", webhook_id="wh-1", signature=None, body=None, **extra):
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {
            "HTTP_X_SHOPIFY_TOPIC": topic,
            "HTTP_X_SHOPIFY_HMAC_SHA256": signature if signature is not None else shopify_signature(raw),
            "HTTP_X_SHOPIFY_SHOP_DOMAIN": "alpha.myshopify.com",
        }
        if webhook_id:
            headers["HTTP_X_SHOPIFY_WEBHOOK_ID"] = webhook_id
        headers.update(extra)
        return client.post(
            f"/webhooks/shopify/{connection.uuid}/", data=raw, content_type="application/json", **headers
        )

    return post


def signed_generic(client: Client, connection, payload: dict, *, service="erp", stamp=None, **extra):
    raw = json.dumps(payload).encode()
    stamp = int(time.time()) if stamp is None else stamp
    return client.post(
        f"/webhooks/third-party/{service}/{connection.uuid}/",
        data=raw,
        content_type="application/json",
        HTTP_X_HUB_TIMESTAMP=str(stamp),
        HTTP_X_HUB_SIGNATURE_256=generic_signature(raw, stamp),
        **extra,
    )


def make_event(connection, topic="orders/updated", **kwargs) -> WebhookEvent:
    defaults = {"provider": connection.platform, "body": json.dumps({"id": 1}), "event_id": f"e-{topic}"}
    defaults.update(kwargs)
    return WebhookEvent.objects.create(tenant=connection.tenant, connection=connection, topic=topic, **defaults)


@pytest.fixture
def handled(monkeypatch):
    """Replace the handler registry with one the test controls; returns the calls made."""
    calls: list[WebhookEvent] = []
    registry: dict = {}

    def use(handler, key=("shopify", "orders/updated")):
        def record(event):
            calls.append(event)
            return handler(event)

        registry[key] = record
        return calls

    monkeypatch.setattr(processing, "handlers", lambda: registry)
    return use
