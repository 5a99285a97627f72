#!/usr/bin/env python
"""Dashboard server time: `commerce.metrics.dashboard` for the last 30 and 90 days of a tenant with
1,000,000 orders, cold (recomputed) and warm (from the cache), in the configured database
(DATABASE_URL; SQLite by default) and cache (REDIS_URL; local memory by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dashbench .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --orders 50000          # SQLite: smaller, and slower
    .venv/bin/python bench/dashboard.py --rebuild --orders 2000000
    .venv/bin/python bench/dashboard.py --quick --json          # 100,000 orders (make bench), as JSON

The first run generates the data and keeps it: a tenant with the slug `bench-dashboard` (its
orders spread over two years, five channels, USD and EUR, one or two lines each, ~3% refunded,
2,000 variants at two locations) and 99 noise tenants of a few thousand orders each, so every
query has other tenants' rows to step over. Later runs reuse it; --rebuild replaces it.

Prints the median of --runs runs of each case, with the number of SQL queries; --verbose adds the
time of each query of a cold run. Beside them, the ceiling: one raw SQL aggregate of the same
period's counted orders (count and revenue per currency), the least any figure of the page costs.
Targets on PostgreSQL: under 300 ms cold, under 20 ms warm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

MARKER = "bench-dashboard"
CHANNELS = [("shopify", 45), ("amazon", 25), ("woocommerce", 15), ("ebay", 10), ("tiktok", 5)]
CURRENCIES = [("USD", 80), ("EUR", 20)]
SPAN = timedelta(days=730)
BATCH = 10_000
VARIANTS = 2_000


def setup() -> None:
    import django

    django.setup()
    from django.conf import settings

    # DEBUG keeps every SQL statement in memory; a benchmark measures the production path.
    settings.DEBUG = False


# --- Data -----------------------------------------------------------------------------------------


class Writer:
    """Inserts plain rows into one table: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self) -> None:
        from django.db import connection

        self.db = connection
        self.postgres = connection.vendor == "postgresql"

    def stamp(self, value: datetime) -> Any:
        # Raw SQL skips the ORM's adaptation: SQLite stores naive UTC text.
        return value if self.postgres else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    def write(self, model, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        table = self.db.ops.quote_name(model._meta.db_table)
        names = ", ".join(self.db.ops.quote_name(c) for c in columns)
        with self.db.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))

    def next_id(self, model) -> int:
        from django.db.models import Max

        return (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1

    def reset_sequences(self, models: list) -> None:
        from django.core.management.color import no_style

        with self.db.cursor() as cursor:
            for sql in self.db.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)


COMMON = ["tenant_id", "connection_id", "external_id", "raw", "created_at", "updated_at"]


def picker(rng: random.Random, choices: list[tuple[str, int]]) -> Callable[[], str]:
    names, weights = [c for c, _ in choices], [w for _, w in choices]
    return lambda: rng.choices(names, weights=weights)[0]


def generate_tenant(
    writer: Writer,
    rng: random.Random,
    tenant,
    orders: int,
    customers: int,
    variants: int,
    channels: list[tuple[str, int]],
) -> None:
    """One tenant's connections, customers, catalogue, stock, orders, lines and refunds."""
    from commerce.models import (
        Customer,
        InventoryLevel,
        Order,
        OrderLine,
        Product,
        ProductVariant,
        Refund,
        first_counted_order,
    )
    from integrations.models import Connection

    now = datetime.now(UTC)
    connections = Connection.objects.bulk_create(
        Connection(tenant=tenant, platform=p, name=f"{p} store", sync_frequency="manual", credentials={})
        for p, _ in channels
    )
    connection_of = {c.platform: c.pk for c in connections}
    home = connections[0].pk
    stamp = writer.stamp(now)

    first_customer = writer.next_id(Customer)
    writer.write(
        Customer,
        ["id", *COMMON, "email", "first_name", "last_name", "phone", "country", "accepts_marketing", "tags"],
        (
            (
                *(first_customer + n, tenant.pk, home, f"c{n}", "{}", stamp, stamp),
                *(f"buyer{n}@example.com", "Ava", f"Buyer{n}", "", "US", False, "[]"),
            )
            for n in range(customers)
        ),
    )

    first_product, first_variant = writer.next_id(Product), writer.next_id(ProductVariant)
    products = max(1, variants // 2)
    writer.write(
        Product,
        ["id", *COMMON, "title", "vendor", "product_type", "status"],
        (
            (first_product + n, tenant.pk, home, f"p{n}", "{}", stamp, stamp, f"Product {n}", "Acme", "Gear", "active")
            for n in range(products)
        ),
    )
    prices = [Decimal(rng.randrange(500, 20_000)) / 100 for _ in range(variants)]
    writer.write(
        ProductVariant,
        ["id", *COMMON, "product_id", "sku", "title", "price", "currency", "reorder_point"],
        (
            (
                first_variant + n,
                tenant.pk,
                home,
                f"v{n}",
                "{}",
                stamp,
                stamp,
                first_product + n // 2,
                f"SKU-{n:05}",
                f"Size {n % 2 + 1}",
                prices[n],
                "USD",
                rng.choice([None, None, None, 10, 20]),
            )
            for n in range(variants)
        ),
    )
    writer.write(
        InventoryLevel,
        [*COMMON, "variant_id", "location_id", "location_name", "available"],
        (
            (tenant.pk, home, f"i{n}-{k}", "{}", stamp, stamp, first_variant + n, f"loc-{k}", f"Warehouse {k}", level)
            for n in range(variants)
            for k, level in enumerate([rng.choice([-1, 0, 2, 4, 8, 30, 120, 500]), rng.randrange(0, 60)])
        ),
    )

    order_columns = [
        "id",
        *COMMON,
        *["number", "channel", "customer_id", "email", "status", "financial_status", "fulfillment_status"],
        *["currency", "subtotal", "discounts", "shipping", "tax", "total", "placed_at"],
        *["billing_address", "shipping_address"],
    ]
    line_columns = [*COMMON, "order_id", "variant_id", "sku", "title", "quantity", "unit_price", "total"]
    line_columns += ["placed_at", "currency", "counted"]  # copies of the order's (see OrderLine)
    refund_columns = [*COMMON, "order_id", "amount", "currency", "reason", "refunded_at"]
    next_order = writer.next_id(Order)
    channel_of, currency_of = picker(rng, channels), picker(rng, CURRENCIES)
    began = now - SPAN
    step = SPAN / max(orders, 1)
    zero = Decimal("0")
    for offset in range(0, orders, BATCH):
        order_rows, line_rows, refund_rows = [], [], []
        for n in range(offset, min(orders, offset + BATCH)):
            order_id = next_order + n
            placed = began + step * n + timedelta(seconds=rng.randrange(0, 60))
            channel = channel_of()
            connection = connection_of[channel]
            currency = currency_of()
            subtotal = zero
            lines = []
            for k in range(rng.choice((1, 1, 2))):
                v = rng.randrange(variants)
                quantity = rng.choice((1, 1, 1, 2, 3))
                total = prices[v] * quantity
                subtotal += total
                lines.append(
                    (
                        *(tenant.pk, connection, f"l{n}-{k}", "{}", stamp, stamp),
                        *(order_id, first_variant + v, f"SKU-{v:05}", f"Product {v // 2}", quantity, prices[v], total),
                    )
                )
            total = subtotal + Decimal("5.00")
            age = now - placed
            cancelled = rng.random() < 0.03
            if age > timedelta(days=3) and rng.random() > 0.002:
                fulfilment = "fulfilled"
            else:
                fulfilment = "partial" if rng.random() < 0.2 else "unfulfilled"
            status = "cancelled" if cancelled else "completed" if fulfilment == "fulfilled" else "open"
            line_rows.extend((*row, writer.stamp(placed), currency, not cancelled) for row in lines)
            customer = first_customer + rng.randrange(customers) if customers and rng.random() < 0.9 else None
            order_rows.append(
                (
                    *(order_id, tenant.pk, connection, f"o{n}", "{}", stamp, stamp),
                    *(str(100_000 + n), channel, customer, "", status, "paid"),
                    *(fulfilment, currency, subtotal, zero, Decimal("5.00"), zero, total, writer.stamp(placed)),
                    *("{}", "{}"),
                )
            )
            if rng.random() < 0.03:
                refunded = min(now, placed + timedelta(days=rng.randrange(1, 30), seconds=rng.randrange(86_400)))
                amount = total if rng.random() < 0.5 else (total / 2).quantize(Decimal("0.01"))
                refund_rows.append(
                    (
                        *(tenant.pk, connection, f"r{n}", "{}", stamp, stamp),
                        *(order_id, amount, currency, "Returned", writer.stamp(refunded)),
                    )
                )
        writer.write(Order, order_columns, order_rows)
        writer.write(OrderLine, line_columns, line_rows)
        writer.write(Refund, refund_columns, refund_rows)
    # Each customer's first counted order, in the one statement commerce.ingest refreshes it with.
    Customer.objects.for_tenant(tenant).update(first_order_at=first_counted_order())


def generate(orders: int, noise_tenants: int, noise_orders: int) -> None:
    from django.db import connection, transaction

    from commerce.models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund
    from tenants.models import Tenant

    writer = Writer()
    rng = random.Random(20260301)  # noqa: S311 (benchmark data, nothing secret)
    started = time.perf_counter()
    with transaction.atomic():
        tenant = Tenant.objects.create(
            name=f"Bench dashboard ({orders} orders)",
            slug=MARKER,
            contact_email="bench@example.com",
            time_zone="America/New_York",
            base_currency="USD",
        )
        generate_tenant(writer, rng, tenant, orders, max(1, orders // 5), VARIANTS, CHANNELS)
        print(f"  {orders:,} orders of {MARKER} in {time.perf_counter() - started:.0f} s", flush=True)
        for n in range(noise_tenants):
            noise = Tenant.objects.create(
                name=f"Bench noise {n}", slug=f"{MARKER}-noise-{n}", contact_email="noise@example.com"
            )
            size = noise_orders + rng.randrange(-noise_orders // 2, noise_orders // 2 + 1)
            generate_tenant(writer, rng, noise, size, 300, 50, CHANNELS[n % 5 : n % 5 + 1])
        writer.reset_sequences([Customer, Product, ProductVariant, InventoryLevel, Order, OrderLine, Refund])
    print(f"  {noise_tenants} noise tenants; generated in {time.perf_counter() - started:.0f} s", flush=True)
    if connection.vendor == "postgresql":
        # As autovacuum would have by now: fresh statistics, and a visibility map for index-only scans.
        with connection.cursor() as cursor:
            for model in (Order, OrderLine, Refund, Customer, ProductVariant, InventoryLevel):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def drop() -> None:
    from django.db import connection, transaction

    from commerce.models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund
    from integrations.models import Connection
    from tenants.models import Tenant

    ids = list(Tenant.objects.filter(slug__startswith=MARKER).values_list("pk", flat=True))
    if not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (InventoryLevel, OrderLine, Refund, Order, ProductVariant, Product, Customer, Connection, Tenant):
            column = "id" if model is Tenant else "tenant_id"
            cursor.execute(
                f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {column} IN ({marks})", ids
            )


# --- Timing ---------------------------------------------------------------------------------------


def timed(call: Callable[[], object], queries: list | None = None) -> tuple[float, int]:
    """Milliseconds and SQL queries of one call; each query's (milliseconds, SQL) into `queries`."""
    from django.db import connection

    count = 0

    def wrapper(execute, sql, params, many, context):
        nonlocal count
        count += 1
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if queries is not None:
                queries.append(((time.perf_counter() - began) * 1000, sql))

    with connection.execute_wrapper(wrapper):
        began = time.perf_counter()
        call()
        elapsed = (time.perf_counter() - began) * 1000
    return elapsed, count


def raw_aggregate(tenant, period) -> tuple[float, int]:
    """Milliseconds of one raw SQL aggregate over the period's counted orders: the ceiling."""
    from django.db import connection

    from commerce import metrics
    from commerce.models import Order, OrderStatus

    start, end = metrics._bounds(period, metrics.tenant_zone(tenant))
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = (
        f"SELECT currency, COUNT(*), SUM(total) FROM {table} WHERE tenant_id = %s AND status <> %s "
        "AND placed_at >= %s AND placed_at < %s GROUP BY currency"
    )

    def call() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [tenant.pk, OrderStatus.CANCELLED, start, end])
            cursor.fetchall()

    return timed(call)


def measure(tenant, runs: int, verbose: bool) -> dict:
    from commerce import metrics

    figures: dict = {}
    for key in ("30", "90"):
        period = metrics.period_for(tenant, key)
        cold, warm = [], []
        breakdown: list = []
        for n in range(runs):
            metrics.invalidate(tenant.pk)
            call = partial(metrics.dashboard, tenant, period)
            cold.append(timed(call, breakdown if n == runs - 1 else None))
            warm.append(timed(call))
        data = metrics.dashboard(tenant, period)
        raw = [raw_aggregate(tenant, period) for _ in range(runs)]
        for name, results in (("cold", cold), ("warm", warm), ("raw SQL", raw)):
            print(
                f"{key:>2} days {name}: median {statistics.median(ms for ms, _ in results):7.1f} ms "
                f"(min {min(ms for ms, _ in results):.1f}, max {max(ms for ms, _ in results):.1f}), "
                f"{results[-1][1]} queries"
            )
            label = name.replace(" SQL", "")
            figures[f"days_{key}_{label}_ms"] = round(statistics.median(ms for ms, _ in results), 1)
            figures[f"days_{key}_{label}_queries"] = results[-1][1]
        orders = data["orders"]["count"]
        print(
            f"         {orders:,} counted orders, {data['series']['bucket']} buckets, {data['unshipped']:,} unshipped"
        )
        if verbose:
            for ms, sql in breakdown:
                print(f"         {ms:7.1f} ms  {' '.join(sql.split())[:150]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--noise-tenants", type=int, default=99)
    parser.add_argument("--noise-orders", type=int, default=3_000, help="About this many orders per noise tenant.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="Drop the benchmark's tenants and generate them again.")
    parser.add_argument("--verbose", action="store_true", help="Print each query of a cold run with its time.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100,000 orders, 9 noise tenants, 3 runs (make bench); data kept from an earlier run is used as it is.",
    )
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON line.")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.noise_tenants, args.noise_orders, args.runs = 100_000, 9, 2_000, 3
    setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from commerce.models import Order
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    if args.rebuild:
        drop()
    tenant = Tenant.objects.filter(slug=MARKER).first()
    if tenant is None:
        print(f"Generating {args.orders:,} orders and {args.noise_tenants} noise tenants on {connection.vendor}…")
        drop()  # leftovers of an interrupted run's noise tenants, if any
        generate(args.orders, args.noise_tenants, args.noise_orders)
        tenant = Tenant.objects.get(slug=MARKER)
    stored = Order.objects.for_tenant(tenant).count()
    if stored != args.orders:
        print(f"Note: the kept data has {stored:,} orders, not {args.orders:,}; --rebuild to regenerate.")
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"{connection.vendor}, {cache}: {stored:,} orders, median of {args.runs} runs")
    figures = measure(tenant, args.runs, args.verbose)
    if args.json:
        figures |= {"database": connection.vendor, "orders": stored, "load_average": round(os.getloadavg()[0], 2)}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
