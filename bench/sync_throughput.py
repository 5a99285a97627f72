#!/usr/bin/env python
"""Sync throughput: a full sync of N orders from a local fake WooCommerce store into the
configured database (DATABASE_URL; SQLite by default), through the real connector, HTTP layer,
sync engine and bulk ingest.

    .venv/bin/python bench/sync_throughput.py                  # 20,000 orders, 3 lines each
    .venv/bin/python bench/sync_throughput.py --orders 100000
    .venv/bin/python bench/sync_throughput.py --compare        # peak memory at 10k vs 100k orders
    .venv/bin/python bench/sync_throughput.py --repeat 5       # five runs, and their median
    .venv/bin/python bench/sync_throughput.py --quick --json   # 5,000 orders (make bench), as JSON

Prints orders/s, pages/s, peak memory (the sync process's maximum RSS growth), SQL statements per
page, the ceiling (a bare loop that fetches the same pages with `requests` and decodes their JSON,
nothing else, in the same run) and the machine's load average when the sync ended: on a small
machine anything else running shows in the figures, so compare runs by their median. The store
runs in a separate process that generates each page on demand, so its memory is not counted and N
is limited only by time. The platform's own rate limit is left out (no request budget): this
measures how fast the hub can take data in. Targets on a 2-core machine: at least 2,000 orders/s
on SQLite and on PostgreSQL; peak memory that does not grow with N.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("INTEGRATIONS_ALLOW_PRIVATE_URLS", "true")

PER_PAGE = 100
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_order(i: int, lines: int) -> dict:
    created = T0 + timedelta(seconds=i)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S")
    items = [
        {
            "id": i * 10 + k,
            "name": f"Product {k}",
            "product_id": 500 + k,
            "variation_id": 0,
            "quantity": 1 + k,
            "subtotal": f"{10 * (1 + k):.2f}",
            "total": f"{10 * (1 + k):.2f}",
            "sku": f"SKU-{k}",
            "price": 10,
        }
        for k in range(lines)
    ]
    total = sum(float(item["total"]) for item in items)
    return {
        "id": 100000 + i,
        "number": str(100000 + i),
        "status": "processing",
        "currency": "USD",
        "date_created_gmt": stamp,
        "date_modified_gmt": stamp,
        "date_paid_gmt": stamp,
        "discount_total": "0.00",
        "shipping_total": "5.00",
        "total_tax": "0.00",
        "total": f"{total + 5:.2f}",
        "customer_id": 0,
        "billing": {"first_name": "Ava", "last_name": f"Buyer{i % 997}", "email": f"buyer{i % 997}@example.com"},
        "shipping": {"country": "US"},
        "line_items": items,
        "refunds": [],
    }


def serve(port_queue, orders: int, lines: int) -> None:
    pages = max(1, -(-orders // PER_PAGE))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if parts.path.endswith("/data/currencies/current"):
                body: object = {"code": "USD", "name": "US dollar", "symbol": "$"}
                headers = {}
            else:
                page = int(query.get("page", 1))
                start = (page - 1) * PER_PAGE
                body = [make_order(i, lines) for i in range(start, min(orders, start + PER_PAGE))]
                headers = {"X-WP-Total": str(orders), "X-WP-TotalPages": str(pages)}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Date", datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def bare_fetch(port: int, orders: int) -> float:
    """Orders/s of a loop that only fetches and decodes the same pages: what the store and HTTP
    allow, the ceiling of a sync."""
    import requests

    pages = max(1, -(-orders // PER_PAGE))
    began = time.perf_counter()
    with requests.Session() as session:
        for page in range(1, pages + 1):
            response = session.get(
                f"http://127.0.0.1:{port}/wp-json/wc/v3/orders", params={"page": page, "per_page": PER_PAGE}, timeout=30
            )
            response.raise_for_status()
            response.json()
    return orders / (time.perf_counter() - began)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(orders: int, lines: int) -> dict:
    import django

    django.setup()
    from django.conf import settings

    # DEBUG keeps every SQL statement in memory; a benchmark measures the production path.
    settings.DEBUG = False
    from django.core.management import call_command
    from django.db import connection as db

    from commerce.models import Customer, Order, OrderLine, Refund
    from integrations.connectors.woocommerce import WooCommerceConnector
    from integrations.http import HttpClient
    from integrations.models import Connection
    from integrations.sync import run_sync
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    queue: multiprocessing.Queue = multiprocessing.Queue()
    store = multiprocessing.Process(target=serve, args=(queue, orders, lines), daemon=True)
    store.start()
    port = queue.get(timeout=10)
    tenant = Tenant.objects.create(
        name=f"Bench {time.time_ns()}", slug=f"bench-{time.time_ns()}", contact_email="bench@example.com"
    )
    conn = Connection.objects.create(
        tenant=tenant,
        platform="woocommerce",
        name="bench store",
        sync_frequency="manual",
        credentials={
            "site_url": f"http://127.0.0.1:{port}",
            "consumer_key": "ck_bench",
            "consumer_secret": "cs_bench",
            "allow_insecure_http": "true",
        },
    )
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    connector = WooCommerceConnector(conn, client=HttpClient(allow_private=True))
    ceiling = bare_fetch(port, orders)
    baseline = rss_mb()
    started = time.perf_counter()
    try:
        with db.execute_wrapper(count):
            run = run_sync(conn, ["orders"], full=True, connector=connector)
        elapsed = time.perf_counter() - started
        # Read before the clean-up below, whose deletes load rows and would count as the sync's.
        peak = rss_mb() - baseline
        stored = Order.objects.filter(connection=conn).count()
    finally:
        store.terminate()
        for model in (OrderLine, Refund, Order, Customer):
            model.objects.filter(connection=conn)._raw_delete(db.alias)
        conn.delete()
        tenant.delete()
    if run.status != "succeeded":
        raise SystemExit(f"The sync failed: {run.error}")
    if stored != orders:
        raise SystemExit(f"Expected {orders} orders, found {stored}")
    pages = -(-orders // PER_PAGE)
    return {
        "database": db.vendor,
        "orders": orders,
        "lines_per_order": lines,
        "seconds": round(elapsed, 2),
        "orders_per_second": round(orders / elapsed),
        "pages_per_second": round(pages / elapsed, 1),
        "peak_memory_growth_mb": round(peak, 1),
        "statements_per_page": round(statements / pages, 1),
        "ceiling_orders_per_second": round(ceiling),
        "load_average": round(os.getloadavg()[0], 2),
    }


def print_result(result: dict) -> None:
    print(
        f"{result['database']}: {result['orders']:,} orders x {result['lines_per_order']} lines in "
        f"{result['seconds']} s = {result['orders_per_second']:,} orders/s ({result['pages_per_second']} pages/s); "
        f"peak memory +{result['peak_memory_growth_mb']} MB; {result['statements_per_page']} SQL statements/page; "
        f"bare fetch loop {result['ceiling_orders_per_second']:,} orders/s; load average {result['load_average']}"
    )


def run_apart(orders: int, lines: int) -> dict:
    """One run in a process of its own, so that each starts with a fresh peak memory."""
    out = subprocess.run(
        [sys.executable, __file__, "--orders", str(orders), "--lines", str(lines), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="Run 10k and 100k orders and compare peak memory.")
    parser.add_argument("--repeat", type=int, default=1, help="Run this many times and print the median.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    parser.add_argument("--quick", action="store_true", help="5,000 orders (make bench).")
    args = parser.parse_args()
    if args.quick:
        args.orders = 5_000
    if args.compare:
        results = []
        for n in (10_000, 100_000):
            results.append(run_apart(n, args.lines))
            print_result(results[-1])
        small, large = results
        print(
            f"peak memory growth: {small['peak_memory_growth_mb']} MB at 10k, {large['peak_memory_growth_mb']} MB "
            f"at 100k (x10 orders)"
        )
        return
    if args.repeat > 1:
        rates = []
        for _ in range(args.repeat):
            result = run_apart(args.orders, args.lines)
            rates.append(result["orders_per_second"])
            print_result(result)
        print(f"median {statistics.median(rates):,.0f} orders/s over {len(rates)} runs (best {max(rates):,})")
        return
    result = run(args.orders, args.lines)
    print(json.dumps(result) if args.json else "", end="\n" if args.json else "")
    if not args.json:
        print_result(result)


if __name__ == "__main__":
    main()
