"""WooCommerce webhook handlers (payloads shaped as its REST API; see the package docstring)."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction

from commerce import metrics
from commerce.ingest import ingest
from commerce.models import Product, ProductVariant
from commerce.records import ProductRecord
from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent

from ..connectors import get_connector
from ..connectors import woocommerce_mapping as woo
from ..errors import BadResponse, NotFound, PermissionDenied
from .common import Handler, NotYet, map_payload, payload_of, scoped, source_of, write

CURRENCY_TTL = 86400


def woocommerce_order(event: WebhookEvent) -> str:
    payload = payload_of(event)
    record = map_payload("order", woo.map_order, payload)
    if payload.get("refunds"):
        record = map_payload("order", woo.map_order, _with_refunds(event, payload))
    return write(event, "orders", [record], f"order {record.external_id}")


def _with_refunds(event: WebhookEvent, payload: dict[str, Any]) -> dict[str, Any]:
    connector = get_connector(event.connection)
    try:
        refunds, _ = connector.get_list(f"orders/{int(payload['id'])}/refunds", {"per_page": 100})
    except (NotFound, BadResponse):
        return payload
    return {**payload, woo.HUB: {"refunds": refunds}}


def woocommerce_product(event: WebhookEvent) -> str:
    payload = payload_of(event)
    if payload.get("type") == "variation":
        return _woocommerce_variation(event, payload)
    record = map_payload("product", woo.map_product, payload)
    if record.variants:
        record = woo.map_product({**payload, woo.HUB: {"currency": _store_currency(event)}})
    outcome = write(event, "products", [record], f"product {record.external_id}")
    if payload.get("type") == "variable":
        outcome += f" (its {len(payload.get('variations') or [])} variations come in their own deliveries)"
    return outcome


def _woocommerce_variation(event: WebhookEvent, payload: dict[str, Any]) -> str:
    """A variation, written under its parent as stored: the parent row is locked and written back
    undated, so only the variation's own version decides whether anything changes."""
    source = source_of(event)
    # Its title as the variations endpoint the sync reads gives it: from its attributes, where
    # this payload (from the products endpoint) names it "<product> - <options>".
    named = payload.get("attributes") and {key: value for key, value in payload.items() if key != "name"}
    variant = map_payload("variation", woo.map_variation, named or payload, "")
    parent_id = str(payload.get("parent_id") or "")
    subject = f"variation {variant.external_id} of product {parent_id}"
    if parent_id in ("", "0"):
        raise Unprocessable(f"Variation {variant.external_id} names no parent product.")
    stored = list(
        scoped(ProductVariant, source).filter(external_id=variant.external_id).values_list("platform_updated_at")
    )
    version = stored[0][0] if stored else None
    if version is not None and variant.updated_at is not None and variant.updated_at <= version:
        return f"{subject} left alone: stored copy is as new or newer"
    variant.currency = _store_currency(event)
    with transaction.atomic():
        parent = scoped(Product, source).select_for_update().filter(external_id=parent_id).first()
        if parent is None:
            raise NotYet(f"Product {parent_id} of variation {variant.external_id} is not in the hub yet.")
        record = ProductRecord(
            external_id=parent.external_id,
            title=parent.title,
            vendor=parent.vendor,
            product_type=parent.product_type,
            status=parent.status,
            updated_at=None,
            variants=[variant],
            raw=parent.raw,
        )
        ingest("products", source, [record])
    metrics.invalidate(source.tenant_id)
    return f"{subject} {'updated' if stored else 'created'}"


def _store_currency(event: WebhookEvent) -> str:
    """The store's currency, as the sync reads it (products carry none), kept a day."""
    connection = event.connection
    key = f"webhooks:woocommerce:currency:{connection.pk}"
    currency = cache.get(key)
    if currency is None:
        try:
            data, _ = get_connector(connection).get("data/currencies/current")
        except (PermissionDenied, NotFound, BadResponse):
            data = {}
        currency = str(data.get("code") or "")[:3].upper() if isinstance(data, dict) else ""
        if not currency:
            stored = scoped(ProductVariant, source_of(event)).exclude(currency="")
            currency = stored.values_list("currency", flat=True).first() or ""
        cache.set(key, currency, timeout=CURRENCY_TTL)
    return currency


def woocommerce_customer(event: WebhookEvent) -> str:
    record = map_payload("customer", woo.map_customer, payload_of(event))
    return write(event, "customers", [record], f"customer {record.external_id}")


def woocommerce_deleted(event: WebhookEvent) -> str:
    """WooCommerce sends only the id of what was deleted (or trashed). The hub keeps its row: sales
    that happened stay in the figures, and a trashed order may be restored (order.restored)."""
    resource = event.topic.split(".", 1)[0]
    what = f"{resource} {payload_of(event).get('id')}"
    return f"{what} deleted on WooCommerce: recorded, not applied (the hub keeps the row)"


HANDLERS: dict[tuple[str, str], Handler] = {
    ("woocommerce", "order.created"): woocommerce_order,
    ("woocommerce", "order.updated"): woocommerce_order,
    ("woocommerce", "order.restored"): woocommerce_order,
    ("woocommerce", "product.created"): woocommerce_product,
    ("woocommerce", "product.updated"): woocommerce_product,
    ("woocommerce", "product.restored"): woocommerce_product,
    ("woocommerce", "customer.created"): woocommerce_customer,
    ("woocommerce", "customer.updated"): woocommerce_customer,
    ("woocommerce", "order.deleted"): woocommerce_deleted,
    ("woocommerce", "product.deleted"): woocommerce_deleted,
    ("woocommerce", "customer.deleted"): woocommerce_deleted,
}
