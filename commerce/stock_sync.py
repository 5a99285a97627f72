"""Where stock keeping meets ingest: sales from new orders, and the platforms' own figures.

- Orders: a receiver of `records_written` takes the created orders' lines off the hub's figures
  once their page commits (`commerce.stock.record_sales`).
- Products and inventory: ingest itself calls `after_page` for the variants a page wrote, once it
  commits, so the variants are linked to their SKUs before the page's hooks are built (the
  product.low_stock hook follows the hub's figure for a linked variant, not the variant's own).

Both run after the commit, in the process that ingested the page, and never fail it: trouble is
logged (`robust`), and the next page or sync brings the figures again.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from . import stock
from .models import InventoryLevel, ProductVariant
from .signals import records_written


@receiver(records_written, dispatch_uid="stock-sales-from-orders")
def sales_from_orders(sender, tenant_id: int, connection_id: int, stream: str, created, **kwargs) -> None:
    if stream == "orders" and created:
        order_ids = list(created)
        transaction.on_commit(lambda: stock.record_sales(tenant_id, connection_id, order_ids), robust=True)


def after_page(tenant_id: int, connection_id: int, *, product_ids=(), level_ids=()) -> None:
    """Reconcile the stock of the variants of these products, or of these stock levels, once the
    page commits (nothing when the page wrote none)."""
    if not product_ids and not level_ids:
        return
    product_ids, level_ids = list(product_ids), list(level_ids)

    def reconcile() -> None:
        # The variants as a subquery, so the first query of the reconciliation finds them.
        if product_ids:
            variants = ProductVariant.objects.filter(tenant_id=tenant_id, product_id__in=product_ids).values("pk")
        else:
            variants = InventoryLevel.objects.filter(tenant_id=tenant_id, pk__in=level_ids).values("variant_id")
        stock.reconcile(tenant_id, connection_id, variants)

    transaction.on_commit(reconcile, robust=True)
