"""Signals commerce sends about its data, for apps that react to changes (outbound hooks) and for
commerce's own stock keeping (`commerce.stock_sync`)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by `commerce.ingest.ingest()` after it writes each page of orders, customers, products or
# inventory, inside the page's transaction, so a receiver that acts on it must wait for the commit
# (`transaction.on_commit`): a page rolled back sends nothing. A page that writes nothing sends it
# with two empty lists. `commerce.fulfilment` sends it too (stream "orders", the order in `updated`),
# inside the push's transaction, when a push the platform accepted changes an order's
# fulfillment_status. Keyword arguments:
#   tenant_id: int, connection_id: int — the page's source
#   stream: str — the ingest stream: "orders", "customers", "products" or "inventory"
#   created: list[int], updated: list[int] — primary keys of the rows of the stream's own model
#       (Order, Customer, Product, InventoryLevel) that the page inserted, and that it changed
#       (records older than the stored row are skipped by ingest and are in neither list; a
#       product's variants and their levels are written with it, so they changed only if it did)
records_written = Signal()

# Sent by `commerce.stock` when SKUs fall to their reorder point (or below): once per fall, again
# only after stock was above the reorder point in between. Sent inside the transaction that changed
# the figures; a receiver waits for the commit. Keyword arguments:
#   tenant_id: int
#   items: list[dict] — one per SKU: {"stock_item_id", "sku", "title", "available",
#       "reorder_point", "variant_id", "product_id", "variant_title"} (the variant and product of
#       its first linked listing, or None)
stock_low = Signal()


# Sent after a fulfilment's push landed and committed, when the client has the hub (not the
# platform) tell customers (FulfilmentSettings.notify_via). Keyword arguments: tenant_id: int,
# fulfilment_id: int. The campaigns app sends the shipping notice.
fulfilment_shipped = Signal()
