"""Signals commerce sends about its data, for apps that react to changes (outbound hooks)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by `commerce.ingest.ingest()` after it writes each page of orders (customers, products and
# inventory do not send it yet), inside the page's transaction, so a
# receiver that acts on it must wait for the commit (`transaction.on_commit`): a page rolled back
# sends nothing. Keyword arguments:
#   tenant_id: int, connection_id: int — the page's source
#   stream: str — the ingest stream: "orders", "customers", "products" or "inventory"
#   created: list[int], updated: list[int] — primary keys of the rows of the stream's own model
#       (Order, Customer, Product, InventoryLevel) that the page inserted, and that it changed
#       (records older than the stored row are skipped by ingest and are in neither list)
records_written = Signal()
