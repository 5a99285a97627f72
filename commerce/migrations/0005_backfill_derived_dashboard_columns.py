"""Fill the columns 0004 added from the orders already stored: each line's copy of its order's
placed_at, currency and counted (not cancelled), and each customer's first_order_at (the placed_at
of their earliest counted order).

In batches of primary keys, each committed on its own, so a large table is not rewritten in one
transaction; running it again recomputes every row, so an interrupted run can simply be repeated.
Plain ORM updates with correlated subqueries, for SQLite and PostgreSQL alike."""

from django.db import migrations, transaction
from django.db.models import Exists, Max, Min, OuterRef, Subquery

BATCH = 20_000
CANCELLED = "cancelled"


def backfill(apps, schema_editor) -> None:
    alias = schema_editor.connection.alias
    Customer = apps.get_model("commerce", "Customer")
    Order = apps.get_model("commerce", "Order")
    OrderLine = apps.get_model("commerce", "OrderLine")

    order = Order.objects.using(alias).filter(pk=OuterRef("order_id"))
    _in_batches(
        OrderLine,
        alias,
        placed_at=Subquery(order.values("placed_at")),
        currency=Subquery(order.values("currency")),
        counted=Exists(order.exclude(status=CANCELLED)),
    )

    first = (
        Order.objects.using(alias)
        .filter(tenant=OuterRef("tenant"), customer=OuterRef("pk"))
        .exclude(status=CANCELLED)
        .order_by()
        .values("customer")
        .annotate(first=Min("placed_at"))
        .values("first")
    )
    _in_batches(Customer, alias, first_order_at=Subquery(first))


def _in_batches(model, alias, **values) -> None:
    """`update(**values)` on every row of the table, a range of primary keys at a time."""
    rows = model.objects.using(alias)
    bounds = rows.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    for start in range(bounds["low"], bounds["high"] + 1, BATCH):
        with transaction.atomic(using=alias):
            rows.filter(pk__gte=start, pk__lt=start + BATCH).update(**values)


class Migration(migrations.Migration):
    # Each batch commits on its own (see the docstring).
    atomic = False

    dependencies = [
        ("commerce", "0004_derived_dashboard_columns"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
