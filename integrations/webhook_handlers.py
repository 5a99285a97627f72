"""Commerce platforms' webhooks, written through the sync engine's own upsert.

A handler takes a stored, verified `WebhookEvent`, maps its payload to `commerce.records` with the
same ids and values as the connector's sync mapping, and writes them with `commerce.ingest.ingest`,
so a webhook and a sync of one object end in one row, and a delivery older than what is stored
(by the platform's updated time) is left alone. It returns what it did, in a few words. A payload
that can never map raises `Unprocessable` (parked at once); other trouble — the platform
unreachable on a follow-up read, a record that points at one the hub has not stored yet
(`NotYet`) — is raised as it is, and the event is retried.

Follow-up reads go through the connection's connector (its rate budget included), one object at a
time, and only where the payload cannot say enough by itself:

- Shopify refunds/create: a refund changes its order (refunds, financial status) but its payload
  carries neither the order nor the order's updated time, and ingest writes refunds only with
  their order. So the order is read through GraphQL with the sync's own selection and mapped by
  the sync's mapping. An orders/* payload whose refunds are only in a foreign presentment
  currency is read the same way (`ShopMoneyMissing`).
- Shopify inventory_levels/update: the payload names the inventory item and location, not the
  variant. The variant is taken from rows already stored (another level of the same item, else a
  variant whose stored payload names the item); only when neither exists is the item read
  through GraphQL, which then writes all its levels as the inventory stream would.
- Shopify products/*: variant prices need the shop's currency: the connector's cached one.
- WooCommerce order.*: an order with refunds lists them undated; they are read from
  /orders/<id>/refunds as the sync does (a missing or unreadable list falls back to the summaries).
- WooCommerce product.*: the store's currency, cached a day. A variable product's payload names
  its variations by id only, so only the product's own fields are written: each variation comes
  in a delivery of its own (WooCommerce sends product.updated for every saved variation, shaped as
  a product of type "variation"), written under its stored parent, and with the next sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from commerce import metrics
from commerce.ingest import Source, ingest
from commerce.models import InventoryLevel, Product, ProductVariant
from commerce.records import IngestResult, ProductRecord
from tenants import audit
from webhooks.errors import Unprocessable
from webhooks.models import WebhookEvent, WebhookSubscription

from .connectors import get_connector
from .connectors import shopify_mapping as graphql
from .connectors import shopify_queries as queries
from .connectors import shopify_rest_mapping as rest
from .connectors import woocommerce_mapping as woo
from .errors import BadResponse, NotFound, PermissionDenied
from .models import ConnectionStatus

if TYPE_CHECKING:
    from commerce.records import InventoryRecord, OrderRecord

Handler = Callable[[WebhookEvent], str]
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError)
CURRENCY_TTL = 86400
ORDER_QUERY = (
    f"query HubWebhookOrder($id: ID!) {{ node(id: $id) {{ ... on Order {{ {queries.selection('orders')} }} }} }}"
)
ITEM_QUERY = (
    "query HubWebhookInventoryItem($id: ID!) { node(id: $id) { ... on InventoryItem { "
    f"{queries.selection('inventory')} }} }} }}"
)


class NotYet(LookupError):
    """The payload points at a record the hub has not stored yet (stock of an unsynced variant):
    retried, since its own delivery or the next sync usually brings it."""


# --- Shared ---------------------------------------------------------------------------------------


def _payload(event: WebhookEvent) -> dict[str, Any]:
    try:
        data = event.data
    except ValueError as exc:
        raise Unprocessable(f"The body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Unprocessable("The payload is not a JSON object.")
    return data


def _source(event: WebhookEvent) -> Source:
    connection = event.connection
    if event.tenant_id != connection.tenant_id:
        raise Unprocessable("The event's tenant is not its connection's.")
    return Source(connection.tenant_id, connection.pk, connection.platform)


def _map(what: str, mapper: Callable, *args: Any) -> Any:
    try:
        return mapper(*args)
    except rest.ShopMoneyMissing:
        raise
    except MALFORMED as exc:
        raise Unprocessable(f"The {what} payload does not map: {type(exc).__name__}: {exc}") from exc


def _write(event: WebhookEvent, stream: str, records: list, subject: str) -> str:
    source = _source(event)
    result = ingest(stream, source, records)
    if result.failures:
        raise NotYet("; ".join(failure.error for failure in result.failures))
    metrics.invalidate(source.tenant_id)
    return _outcome(subject, result)


def _outcome(subject: str, result: IngestResult) -> str:
    if result.created + result.updated + result.unchanged > 1:
        return f"{subject}: {result.created} created, {result.updated} updated, {result.unchanged} left alone"
    if result.created:
        return f"{subject} created"
    if result.updated:
        return f"{subject} updated"
    return f"{subject} left alone: stored copy is as new or newer"


def _scoped(model: type, source: Source):
    return model.objects.for_tenant(source.tenant_id).filter(connection_id=source.connection_id)


# --- Shopify --------------------------------------------------------------------------------------


def shopify_order(event: WebhookEvent) -> str:
    payload = _payload(event)
    try:
        record = _map("order", rest.order, payload)
    except rest.ShopMoneyMissing:
        order_id = _map("order", rest.gid_of, payload, "Order")
        record = _read_order(event, order_id)
        if record is None:
            return f"order {order_id} left alone: Shopify no longer has it"
    return _write(event, "orders", [record], f"order {record.external_id}")


def shopify_refund(event: WebhookEvent) -> str:
    payload = _payload(event)
    order_id = _map("refund", rest.gid, "Order", payload.get("order_id"))
    refund_id = payload.get("admin_graphql_api_id") or payload.get("id")
    record = _read_order(event, order_id)
    if record is None:
        return f"refund {refund_id} left alone: Shopify no longer has order {order_id}"
    return f"refund {refund_id}: " + _write(event, "orders", [record], f"order {order_id}")


def _read_order(event: WebhookEvent, order_id: str) -> OrderRecord | None:
    connector = get_connector(event.connection)
    node = connector.query(ORDER_QUERY, {"id": order_id}, "HubWebhookOrder").get("node")
    if not node:
        return None
    connector.complete_nested(node)  # lines past the first page: ingest deletes lines a written order lacks
    return _map("order", graphql.order, node)


def shopify_product(event: WebhookEvent) -> str:
    record = _map("product", rest.product, _payload(event), "")
    if record.variants:
        currency = _shop_currency(event)
        for variant in record.variants:
            variant.currency = currency
    return _write(event, "products", [record], f"product {record.external_id}")


def _shop_currency(event: WebhookEvent) -> str:
    connector = get_connector(event.connection)
    if not connector.shop_currency:
        shop = connector.query(queries.SHOP_CURRENCY, None, "HubShop").get("shop") or {}
        connector.remember_currency(shop.get("currencyCode"))
    return connector.shop_currency


def shopify_inventory(event: WebhookEvent) -> str:
    payload = _payload(event)
    item_id, location_id = _map("inventory level", rest.inventory_ids, payload)
    subject = f"stock {item_id}@{location_id}"
    variant_id, location_name = _stored_variant(_source(event), item_id, location_id)
    if variant_id:
        record = _map("inventory level", rest.inventory_level, payload, variant_id, location_name)
        return _write(event, "inventory", [record], subject)
    records = _read_inventory_item(event, item_id)
    if records is None:
        return f"{subject} left alone: Shopify no longer has the inventory item"
    if not records:
        return f"{subject} left alone: the inventory item is stocked nowhere"
    return _write(event, "inventory", records, f"stock of {item_id}")


def _stored_variant(source: Source, item_id: str, location_id: str) -> tuple[str, str]:
    """The stored variant of an inventory item, and the stored name of the location."""
    levels = _scoped(InventoryLevel, source)
    variant_id = location_name = ""
    for external_id, variant, name in levels.filter(external_id__startswith=f"{item_id}@").values_list(
        "external_id", "variant__external_id", "location_name"
    ):
        variant_id = variant
        if external_id == f"{item_id}@{location_id}":
            location_name = name
    if not location_name:
        named = levels.filter(location_id=location_id).exclude(location_name="")
        location_name = named.values_list("location_name", flat=True).first() or ""
    if not variant_id:
        # A variant written from GraphQL keeps `inventoryItem.id` in its raw node; one written
        # from a REST product webhook keeps `inventory_item_id`.
        number = int(item_id.rsplit("/", 1)[1])
        named = _scoped(ProductVariant, source).filter(
            Q(raw__inventoryItem__id=item_id) | Q(raw__inventory_item_id=number)
        )
        variant_id = named.values_list("external_id", flat=True).first() or ""
    return variant_id, location_name


def _read_inventory_item(event: WebhookEvent, item_id: str) -> list[InventoryRecord] | None:
    connector = get_connector(event.connection)
    node = connector.query(ITEM_QUERY, {"id": item_id}, "HubWebhookInventoryItem").get("node")
    if not node:
        return None
    connector.complete_nested(node)
    return [_map("inventory item", graphql.inventory_item, part) for part in graphql.split_inventory_item(node)]


def shopify_customer(event: WebhookEvent) -> str:
    record = _map("customer", rest.customer, _payload(event))
    return _write(event, "customers", [record], f"customer {record.external_id}")


def shopify_uninstalled(event: WebhookEvent) -> str:
    """Shopify revokes the token and drops the app's subscriptions itself: the hub marks the
    connection disconnected (its schedule goes with that) and forgets the subscriptions."""
    _source(event)
    connection = event.connection
    connection.status = ConnectionStatus.DISCONNECTED
    connection.last_error = "The app was uninstalled from the shop: reinstall it, then test the connection."
    connection.save(update_fields=["status", "last_error", "updated_at"])
    removed, _ = WebhookSubscription.objects.filter(connection=connection).delete()
    audit.record(
        "connection.disconnected",
        tenant=connection.tenant,
        target=connection,
        reason="app/uninstalled",
        webhook_event=event.pk,
        subscriptions_removed=removed,
    )
    return f"connection disconnected: the app was uninstalled ({removed} subscriptions forgotten)"


# --- WooCommerce ----------------------------------------------------------------------------------


def woocommerce_order(event: WebhookEvent) -> str:
    payload = _payload(event)
    record = _map("order", woo.map_order, payload)
    if payload.get("refunds"):
        record = _map("order", woo.map_order, _with_refunds(event, payload))
    return _write(event, "orders", [record], f"order {record.external_id}")


def _with_refunds(event: WebhookEvent, payload: dict[str, Any]) -> dict[str, Any]:
    connector = get_connector(event.connection)
    try:
        refunds, _ = connector.get_list(f"orders/{int(payload['id'])}/refunds", {"per_page": 100})
    except (NotFound, BadResponse):
        return payload
    return {**payload, woo.HUB: {"refunds": refunds}}


def woocommerce_product(event: WebhookEvent) -> str:
    payload = _payload(event)
    if payload.get("type") == "variation":
        return _woocommerce_variation(event, payload)
    record = _map("product", woo.map_product, payload)
    if record.variants:
        record = woo.map_product({**payload, woo.HUB: {"currency": _store_currency(event)}})
    outcome = _write(event, "products", [record], f"product {record.external_id}")
    if payload.get("type") == "variable":
        outcome += f" (its {len(payload.get('variations') or [])} variations come in their own deliveries)"
    return outcome


def _woocommerce_variation(event: WebhookEvent, payload: dict[str, Any]) -> str:
    """A variation, written under its parent as stored: the parent row is locked and written back
    undated, so only the variation's own version decides whether anything changes."""
    source = _source(event)
    # Its title as the variations endpoint the sync reads gives it: from its attributes, where
    # this payload (from the products endpoint) names it "<product> - <options>".
    named = payload.get("attributes") and {key: value for key, value in payload.items() if key != "name"}
    variant = _map("variation", woo.map_variation, named or payload, "")
    parent_id = str(payload.get("parent_id") or "")
    subject = f"variation {variant.external_id} of product {parent_id}"
    if parent_id in ("", "0"):
        raise Unprocessable(f"Variation {variant.external_id} names no parent product.")
    stored = list(
        _scoped(ProductVariant, source).filter(external_id=variant.external_id).values_list("platform_updated_at")
    )
    version = stored[0][0] if stored else None
    if version is not None and variant.updated_at is not None and variant.updated_at <= version:
        return f"{subject} left alone: stored copy is as new or newer"
    variant.currency = _store_currency(event)
    with transaction.atomic():
        parent = _scoped(Product, source).select_for_update().filter(external_id=parent_id).first()
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
            stored = _scoped(ProductVariant, _source(event)).exclude(currency="")
            currency = stored.values_list("currency", flat=True).first() or ""
        cache.set(key, currency, timeout=CURRENCY_TTL)
    return currency


def woocommerce_customer(event: WebhookEvent) -> str:
    record = _map("customer", woo.map_customer, _payload(event))
    return _write(event, "customers", [record], f"customer {record.external_id}")


def woocommerce_deleted(event: WebhookEvent) -> str:
    """WooCommerce sends only the id of what was deleted (or trashed). The hub keeps its row: sales
    that happened stay in the figures, and a trashed order may be restored (order.restored)."""
    resource = event.topic.split(".", 1)[0]
    return (
        f"{resource} {_payload(event).get('id')} deleted on WooCommerce: recorded, not applied (the hub keeps the row)"
    )


HANDLERS: dict[tuple[str, str], Handler] = {
    **dict.fromkeys(
        [
            ("shopify", "orders/create"),
            ("shopify", "orders/updated"),
            ("shopify", "orders/cancelled"),
            ("shopify", "orders/fulfilled"),
            ("shopify", "orders/partially_fulfilled"),
            ("shopify", "orders/paid"),
        ],
        shopify_order,
    ),
    ("shopify", "refunds/create"): shopify_refund,
    ("shopify", "products/create"): shopify_product,
    ("shopify", "products/update"): shopify_product,
    ("shopify", "inventory_levels/update"): shopify_inventory,
    ("shopify", "customers/create"): shopify_customer,
    ("shopify", "customers/update"): shopify_customer,
    ("shopify", "app/uninstalled"): shopify_uninstalled,
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
