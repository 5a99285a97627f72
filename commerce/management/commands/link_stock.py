"""Link the variants already stored to stock items by SKU (the hub's figure across channels).

Syncs link what they write; variants stored before stock was kept across channels, and unchanged
since (ingest skips them), are linked by this command once. It reconciles every connection's
variants in batches, with each connection's conflict strategy, as a sync page would. Idempotent.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from commerce import stock
from commerce.models import ProductVariant
from integrations.models import Connection

BATCH = 500


class Command(BaseCommand):
    help = "Link stored variants to stock items by SKU, per connection, as a sync would."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--connection", type=int, help="Only this connection (id).")

    def handle(self, *args, tenant=None, connection=None, **options) -> None:
        connections = Connection.objects.select_related("tenant").order_by("pk")
        if tenant:
            connections = connections.filter(tenant__slug=tenant)
        if connection:
            connections = connections.filter(pk=connection)
        for conn in connections:
            ids = list(
                ProductVariant.objects.for_tenant(conn.tenant)
                .filter(connection=conn)
                .exclude(sku="")
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            for start in range(0, len(ids), BATCH):
                stock.reconcile(conn.tenant_id, conn.pk, ids[start : start + BATCH])
            self.stdout.write(f"{conn} ({conn.tenant}): {len(ids)} variant(s) with a SKU reconciled")
