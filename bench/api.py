#!/usr/bin/env python
"""API throughput: `GET /api/v1/orders?page_size=100` under gunicorn on loopback with an API key,
beside the same list with no authentication, and what key authentication costs per request.

    .venv/bin/python bench/api.py                       # temporary SQLite file, 2,000 requests each
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --requests 5000 --clients 16 --workers 2 --threads 8
    .venv/bin/python bench/api.py --quick --json        # small sizes (make bench), a JSON line last

The server is gunicorn serving config.wsgi on 127.0.0.1 (a free port) with `bench.api_settings`:
the production settings with DEBUG=false and throwaway SECRET_KEY/FERNET_KEYS, and the production
URLs plus `bench/orders`, the same orders viewset with no authentication, no throttle and no usage
counting, for the bench tenant, and `bench/bare/`, a view that answers 200 at once: the ceiling of
the server, its middleware and the load generator (`bench/api_urls.py`). The database is a temporary SQLite file,
deleted afterwards, or DATABASE_URL when it names PostgreSQL (migrated; its bench data is kept for
the next run, `--rebuild` replaces it). The cache is REDIS_URL when set, else each process's local
memory. --skip-http runs only the in-process part.

Data: a tenant with the slug `bench-api` and --orders orders (1 to 3 lines each, over a year, three
channels, each with a platform payload of about 1.5 KB in `raw`, as synced orders have), and
--noise-tenants tenants of --noise-orders orders each, so every query has other tenants' rows to
step over. The key is premium and the rates are raised far beyond the run, so the throttle counts
but never refuses.

Load: --clients threads, each with its own keep-alive `requests.Session`; a warm-up of --warmup
requests per target, then --rounds alternating rounds of both targets (--requests in all, each).
Prints requests/s, mean, p50/p95/p99 latency and errors for each, and the CPU each request cost
the gunicorn workers, the PostgreSQL backends and the load generator (from /proc); the differences
of mean latency and of server CPU are what the key costs over HTTP, within the noise of a page that
costs far more. Then, in this process, --calls calls of each step of a keyed request's overhead
(`ApiKeyAuthentication.authenticate`, the `ApiRateThrottle`, usage counting), in µs: the precise
figure. Target: key authentication under 1 ms per request. The load generator runs on the same
machine as the server and the database (2 cores here), so requests/s is a floor, not the ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARKER = "bench-api"
SETTINGS = "bench.api_settings"
KEYED_PATH = "/api/v1/orders"
OPEN_PATH = "/bench/orders"
BARE_PATH = "/bench/bare/"
BATCH = 2_000
CHANNELS = ["shopify", "woocommerce", "amazon"]


# --- Environment ----------------------------------------------------------------------------------


def bench_environment(workdir: Path) -> dict[str, str]:
    """DEBUG=false with throwaway keys (the production path), plain HTTP on loopback, rates far
    beyond the run, and the database to use. The bench process and gunicorn share it."""
    url = os.environ.get("DATABASE_URL", "")
    if not url or url.startswith(("sqlite:", "sqlite3:")):
        url = f"sqlite:///{workdir / 'api-bench.sqlite3'}"
    return {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FERNET_KEYS": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "API_RATE_DEFAULT": str(10**9),
        "API_RATE_PREMIUM": str(10**9),
        "BENCH_API_TENANT": MARKER,
        # PostgreSQL connections live through the run, so the CPU meter sees every backend to the end.
        "CONN_MAX_AGE": "3600",
        "LOG_LEVEL": "WARNING",
    }


def setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


# --- Data -----------------------------------------------------------------------------------------


def bench_tenant_ids() -> list[int]:
    from tenants.models import Tenant

    return list(Tenant.objects.filter(slug__startswith=MARKER).values_list("pk", flat=True))


def drop() -> None:
    """Delete the bench tenants and their rows. Connections are deleted in SQL: the ORM would load
    (and decrypt, with another run's throwaway key) their credentials."""
    from django.db import connection, transaction

    from commerce.models import Order, OrderLine
    from integrations.models import Connection
    from tenants.models import ApiKey, ApiUsage, Tenant

    ids = bench_tenant_ids()
    if not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (OrderLine, Order, ApiUsage, ApiKey, Connection):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id IN ({marks})", ids)
        Tenant.objects.filter(pk__in=ids).delete()


def order_payload(n: int, placed: datetime, items: list[tuple[str, int, Decimal]]) -> dict:
    """A platform order as the connectors keep it in `raw` (about 1.5 KB, like a Shopify order's
    REST payload trimmed of what the hub never reads)."""
    address = {
        "first_name": "Ava",
        "last_name": f"Buyer{n % 997}",
        "address1": f"{n % 400 + 1} Market Street",
        "city": "Springfield",
        "province": "Oregon",
        "country": "United States",
        "zip": "97477",
        "phone": "+1 541-555-0100",
        "country_code": "US",
        "province_code": "OR",
    }
    return {
        "id": 5_500_000_000_000 + n,
        "name": f"#{100_000 + n}",
        "created_at": placed.isoformat(),
        "updated_at": placed.isoformat(),
        "processed_at": placed.isoformat(),
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "paid",
        "tags": "bench, api",
        "note_attributes": [{"name": "gift", "value": "no"}, {"name": "source", "value": "bench"}],
        "customer": {"id": 7_000_000 + n % 997, "email": f"buyer{n % 997}@example.com", "accepts_marketing": False},
        "billing_address": address,
        "shipping_address": address,
        "shipping_lines": [{"code": "Standard", "price": "5.00", "source": "shopify", "title": "Standard"}],
        "line_items": [
            {
                "id": 9_000_000_000 + n * 10 + k,
                "sku": sku,
                "title": f"Product {sku}",
                "quantity": quantity,
                "price": str(price),
                "vendor": "Acme",
                "requires_shipping": True,
                "taxable": True,
                "fulfillment_status": None,
                "properties": [],
            }
            for k, (sku, quantity, price) in enumerate(items)
        ],
    }


def generate_tenant(tenant, orders: int, rng: random.Random, channels: list[str]) -> None:
    from commerce.models import FinancialStatus, FulfillmentStatus, Order, OrderLine, OrderStatus
    from integrations.models import Connection

    now = datetime.now(UTC)
    connections = [
        Connection.objects.create(tenant=tenant, platform=p, name=f"{p} store", sync_frequency="manual")
        for p in channels
    ]
    for offset in range(0, orders, BATCH):
        batch, lines = [], []
        for n in range(offset, min(orders, offset + BATCH)):
            conn = connections[n % len(connections)]
            placed = now - timedelta(seconds=rng.randrange(365 * 86_400))
            price = Decimal(rng.randrange(500, 9_000)) / 100
            items = [(f"SKU-{rng.randrange(500):03}", rng.choice((1, 1, 2, 3)), price)]
            items += [(f"SKU-{rng.randrange(500):03}", 1, Decimal("19.90")) for _ in range(rng.choice((0, 0, 1, 2)))]
            subtotal = sum((price * quantity for _, quantity, price in items), Decimal(0))
            status = rng.choice([OrderStatus.OPEN, OrderStatus.COMPLETED, OrderStatus.COMPLETED, OrderStatus.CANCELLED])
            order = Order(
                tenant=tenant,
                connection=conn,
                external_id=f"o{n}",
                number=str(100_000 + n),
                channel=conn.platform,
                email=f"buyer{n % 997}@example.com",
                status=status,
                financial_status=FinancialStatus.PAID,
                fulfillment_status=rng.choice(list(FulfillmentStatus.values)),
                currency="USD",
                subtotal=subtotal,
                shipping=Decimal("5.00"),
                total=subtotal + Decimal("5.00"),
                placed_at=placed,
                platform_updated_at=placed,
                updated_at=placed,
                raw=order_payload(n, placed, items),
            )
            batch.append(order)
            lines += [
                OrderLine(
                    tenant=tenant,
                    connection=conn,
                    order=order,
                    external_id=f"l{n}-{k}",
                    sku=sku,
                    title=f"Product {sku}",
                    quantity=quantity,
                    unit_price=price,
                    total=price * quantity,
                    placed_at=placed,
                    currency="USD",
                    counted=status != OrderStatus.CANCELLED,
                    raw={"id": 9_000_000_000 + n * 10 + k, "sku": sku, "quantity": quantity, "price": str(price)},
                )
                for k, (sku, quantity, price) in enumerate(items)
            ]
        Order.objects.bulk_create(batch, batch_size=500)  # sets the ids on PostgreSQL and SQLite
        OrderLine.objects.bulk_create(lines, batch_size=500)


def prepare_data(orders: int, noise_tenants: int, noise_orders: int, rebuild: bool):
    """The bench tenant with `orders` orders, reused when it has them; otherwise (re)generated with
    the noise tenants."""
    from django.db import connection, transaction

    from commerce.models import Order
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=MARKER).first()
    if tenant is not None and not rebuild and Order.objects.for_tenant(tenant).count() == orders:
        print(f"Reusing the {orders:,} orders of `{MARKER}` (--rebuild to regenerate).")
        return tenant
    drop()
    started = time.perf_counter()
    rng = random.Random(20260601)  # noqa: S311 (benchmark data, nothing secret)
    with transaction.atomic():
        tenant = Tenant.objects.create(name="Bench API", slug=MARKER, contact_email="bench@example.com")
        generate_tenant(tenant, orders, rng, CHANNELS)
        for n in range(noise_tenants):
            noise = Tenant.objects.create(
                name=f"Bench API noise {n}", slug=f"{MARKER}-noise-{n}", contact_email="noise@example.com"
            )
            generate_tenant(noise, noise_orders, rng, [CHANNELS[n % len(CHANNELS)]])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in ("commerce_order", "commerce_orderline"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
    print(
        f"Generated {orders:,} orders for `{MARKER}` and {noise_tenants} noise tenants of {noise_orders:,} "
        f"in {time.perf_counter() - started:.1f} s."
    )
    return tenant


def issue_key(tenant) -> str:
    """A new premium key with every scope (the previous runs' bench keys are deleted)."""
    from tenants.models import ApiKey, ApiKeyScope, ApiKeyTier

    ApiKey.objects.for_tenant(tenant).delete()
    _, raw_key = ApiKey.generate(tenant, "bench key", scopes=list(ApiKeyScope.values), tier=ApiKeyTier.PREMIUM)
    return raw_key


# --- The server -----------------------------------------------------------------------------------


class Server:
    """gunicorn serving config.wsgi with the bench settings, on a socket the bench bound itself
    (handed over as fd://, so no other process can take the port in between)."""

    def __init__(self, env: dict[str, str], workers: int, threads: int, log: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.set_inheritable(True)
        self.port = self.sock.getsockname()[1]
        self.log = log
        command = [
            *(sys.executable, "-m", "gunicorn", "config.wsgi:application"),
            *("--bind", f"fd://{self.sock.fileno()}", "--workers", str(workers), "--threads", str(threads)),
            *("--chdir", str(ROOT), "--log-level", "warning", "--error-logfile", "-"),
        ]
        with open(log, "wb") as out:
            # Its own session, so stopping it reaches the master and its workers, and nothing else.
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(self.sock.fileno(),),
                start_new_session=True,
            )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        return
                    raise SystemExit(f"{path} answered {response.status}:\n{self.tail()}")
                finally:
                    conn.close()
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # graceful: the workers finish their requests and exit
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its session's group: the master and workers
                self.process.wait(timeout=10)
        self.sock.close()


# --- Load -----------------------------------------------------------------------------------------


@dataclass
class Result:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, of the requests answered 200
    errors: Counter = field(default_factory=Counter)
    cpu_seconds: Counter = field(default_factory=Counter)  # gunicorn, database, client

    def add(self, other: Result) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors.update(other.errors)
        self.cpu_seconds.update(other.cpu_seconds)

    def cpu_ms(self, name: str) -> float:
        return self.cpu_seconds[name] * 1000 / max(1, self.requests)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000

    def percentile_ms(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def drive(url: str, headers: dict[str, str], total: int, clients: int, expect: int | None, meter: CpuMeter) -> Result:
    """`total` GETs of `url` from `clients` threads, each on its own keep-alive session. A request
    counts as an error unless it is a 200 with `expect` results (None: any 200)."""
    import requests

    tickets = itertools.count()
    result = Result()

    def client() -> None:
        with requests.Session() as session:
            session.headers.update(headers)
            while next(tickets) < total:
                began = time.perf_counter()
                try:
                    response = session.get(url, timeout=60)
                    if expect is None:
                        body = {} if response.status_code == 200 else None
                    else:
                        body = response.json() if response.status_code == 200 else None
                except (requests.RequestException, ValueError) as error:
                    result.errors[type(error).__name__] += 1
                    continue
                elapsed = time.perf_counter() - began
                if body is None:
                    result.errors[f"HTTP {response.status_code}"] += 1
                elif expect is not None and len(body.get("results", ())) != expect:
                    result.errors["short page"] += 1
                else:
                    result.latencies.append(elapsed)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    before = meter.snapshot()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    for name, ms in CpuMeter.per_request_ms(before, meter.snapshot(), 1).items():
        result.cpu_seconds[name] += ms / 1000
    return result


def report(name: str, result: Result) -> None:
    if not result.latencies:
        print(f"{name:<10} no successful requests; errors: {dict(result.errors)}")
        return
    errors = sum(result.errors.values())
    detail = f" ({', '.join(f'{k}: {v}' for k, v in result.errors.items())})" if errors else ""
    print(
        f"{name:<10} {result.requests / result.seconds:7.1f} req/s   mean {result.mean_ms:6.1f} ms   "
        f"p50 {result.percentile_ms(50):6.1f}   p95 {result.percentile_ms(95):6.1f}   "
        f"p99 {result.percentile_ms(99):6.1f} ms   errors {errors}{detail}"
    )
    print(
        f"{'':<10} CPU per request: gunicorn {result.cpu_ms('gunicorn'):5.2f} ms, database "
        f"{result.cpu_ms('database'):5.2f} ms, load generator {result.cpu_ms('client'):5.2f} ms"
    )


class CpuMeter:
    """CPU seconds (Linux /proc) used by gunicorn's workers, by the PostgreSQL backends serving the
    bench database, and by this process (the load generator). Divided by the requests of a run, it
    is what a request costs the server, which shared cores blur much less than latency."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, master_pid: int, database: str) -> None:
        self.master_pid = master_pid
        self.database = database

    @classmethod
    def _cpu(cls, stat: str) -> float:
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ..., utime, stime
        return (int(fields[11]) + int(fields[12])) / cls.TICK

    def snapshot(self) -> dict[str, dict[int, float]]:
        found: dict[str, dict[int, float]] = {"gunicorn": {}, "database": {}}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.master_pid:
                    found["gunicorn"][int(entry.name)] = self._cpu(stat)
                elif self.database and "(postgres)" in stat:
                    command = (entry / "cmdline").read_bytes().decode(errors="replace")
                    if command.startswith("postgres: ") and f" {self.database} " in command:
                        found["database"][int(entry.name)] = self._cpu(stat)
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile, or not ours to read
        found["client"] = {0: sum(os.times()[:2])}
        return found

    @staticmethod
    def per_request_ms(before: dict, after: dict, requests: int) -> dict[str, float]:
        # A process that ended in between loses its share; the bench keeps connections open (CONN_MAX_AGE).
        return {
            name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in after[name].items()) * 1000 / requests
            for name in after
        }


# --- Key authentication in process ----------------------------------------------------------------


def timed_calls(call: Callable[[], object], calls: int) -> tuple[float, float, float]:
    """Mean, median and p95 of `calls` calls, in µs."""
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return statistics.fmean(times) * 1e6, cuts[49] * 1e6, cuts[94] * 1e6


def micro(raw_key: str, calls: int) -> dict:
    """Each step a keyed request pays and an unauthenticated one does not, in this process, against
    the same database and cache as the server."""
    from django.conf import settings
    from django.db import connection
    from django.test import RequestFactory
    from rest_framework.request import Request

    from tenants import usage
    from tenants.authentication import ApiKeyAuthentication
    from tenants.throttling import ApiRateThrottle

    factory = RequestFactory()
    authenticator = ApiKeyAuthentication()

    class View:  # what the throttle needs of a view: the headers it adds the rate limits to
        headers: dict[str, str] = {}

    def request() -> Request:
        return Request(factory.get(KEYED_PATH, HTTP_AUTHORIZATION=f"Bearer {raw_key}"))

    prepared = request()
    user, key = authenticator.authenticate(prepared)  # also the one-off write of last_used_at
    prepared.user, prepared.auth = user, key

    def authenticate() -> None:
        authenticator.authenticate(request())

    def throttle() -> None:
        if not ApiRateThrottle().allow_request(prepared, View()):
            raise SystemExit("The throttle refused a request: raise API_RATE_PREMIUM.")

    def count() -> None:
        usage.record(key, "/api/v1/orders", "GET", 200)

    def everything() -> None:
        req = request()
        req.user, req.auth = authenticator.authenticate(req)
        ApiRateThrottle().allow_request(req, View())
        usage.record(req.auth, "/api/v1/orders", "GET", 200)

    queries = 0

    def counter(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        authenticate()
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"\nKey authentication in process ({connection.vendor}, {cache}), {calls:,} calls each:")
    steps = [
        ("building the request (both paths pay it)", request),
        (f"ApiKeyAuthentication.authenticate ({queries} SQL query)", authenticate),
        ("ApiRateThrottle.allow_request (one cache increment)", throttle),
        ("usage counting (one cache increment)", count),
        ("request + authenticate + throttle + usage", everything),
    ]
    figures = {}
    for label, call in steps:
        for _ in range(min(200, calls)):  # warm-up
            call()
        mean, median, p95 = figures[label] = timed_calls(call, calls)
        print(f"  {label:<55} mean {mean:7.1f}   median {median:7.1f}   p95 {p95:7.1f} µs")
    (base_mean, base_median, _), (mean, median, _) = figures[steps[0][0]], figures[steps[-1][0]]
    cost_mean, cost_median = mean - base_mean, median - base_median
    verdict = "under" if cost_mean < 1000 else "OVER"
    print(
        f"  key authentication + throttle + usage: {cost_mean:.0f} µs per request on average, {cost_median:.0f} µs "
        f"median ({verdict} the 1 ms target)"
    )
    usage.drain(everything=True)  # the counts into ApiUsage, as the server's next drain would
    return {"auth_cost_mean_us": round(cost_mean, 1), "auth_cost_median_us": round(cost_median, 1)}


# --- The run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict:
    env = bench_environment(workdir)
    setup(env)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    tenant = prepare_data(args.orders, args.noise_tenants, args.noise_orders, args.rebuild)
    raw_key = issue_key(tenant)
    figures = {"database": connection.vendor, "orders": args.orders, "page_size": args.page_size}
    connection.close()  # gunicorn's workers are separate processes; SQLite is happier with one writer
    if not args.skip_http:
        figures |= measure_http(args, env, workdir, raw_key)
    figures |= micro(raw_key, args.calls)
    figures["load_average"] = round(os.getloadavg()[0], 2)
    return figures


def measure_http(args: argparse.Namespace, env: dict[str, str], workdir: Path, raw_key: str) -> dict:
    from django.conf import settings
    from django.db import connection

    server = Server(env, args.workers, args.threads, workdir / "gunicorn.log")
    try:
        server.wait_ready(f"{OPEN_PATH}?page_size=1")
        base = f"http://127.0.0.1:{server.port}"
        query = f"?page_size={args.page_size}"
        targets = {
            "key auth": (f"{base}{KEYED_PATH}{query}", {"Authorization": f"Bearer {raw_key}"}),
            "no auth": (f"{base}{OPEN_PATH}{query}", {}),
            "bare 200": (f"{base}{BARE_PATH}", {}),
        }
        page = min(args.page_size, args.orders)
        expects = {"key auth": page, "no auth": page, "bare 200": None}
        database = connection.settings_dict["NAME"] if connection.vendor == "postgresql" else ""
        meter = CpuMeter(server.process.pid, database)
        cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(
            f"\n{connection.vendor}, {cache}; gunicorn {args.workers} workers x {args.threads} threads on "
            f"127.0.0.1:{server.port}; {args.clients} client threads; GET ...orders{query} "
            f"({page} orders with their lines per response), and a bare view that answers 200"
        )
        print(
            f"The load generator shares the machine's {os.cpu_count()} cores with the server and the database: "
            "requests/s is a floor, not the server's ceiling."
        )
        for name, (url, headers) in targets.items():
            warm = drive(url, headers, args.warmup, args.clients, expects[name], meter)
            if warm.errors:
                raise SystemExit(f"Warm-up of {url} failed: {dict(warm.errors)}\n{server.tail()}")
        results = {name: Result() for name in targets}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (url, headers) in targets.items():
                results[name].add(drive(url, headers, per_round, args.clients, expects[name], meter))
        print(f"{args.rounds} alternating rounds, {per_round * args.rounds:,} requests per target:")
        for name, result in results.items():
            report(name, result)
        keyed, unkeyed = results["key auth"], results["no auth"]
        if keyed.latencies and unkeyed.latencies:
            server_cpu = [r.cpu_ms("gunicorn") + r.cpu_ms("database") for r in (keyed, unkeyed)]
            print(
                f"key authentication over HTTP: {keyed.mean_ms - unkeyed.mean_ms:+.2f} ms of mean latency (noisy: "
                f"two loads on shared cores), {server_cpu[0] - server_cpu[1]:+.2f} ms of server CPU per request"
            )
        figures: dict = {}
        for name, result in results.items():
            key = name.replace(" 200", "").replace(" ", "_")
            figures[f"{key}_rps"] = round(result.requests / result.seconds, 1) if result.seconds else None
            if result.latencies:
                figures[f"{key}_p50_ms"] = round(result.percentile_ms(50), 1)
                figures[f"{key}_p99_ms"] = round(result.percentile_ms(99), 1)
            figures[f"{key}_errors"] = sum(result.errors.values())
        return figures
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2_000, help="Measured requests per target.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client threads.")
    parser.add_argument("--warmup", type=int, default=200, help="Unmeasured requests per target first.")
    parser.add_argument("--rounds", type=int, default=4, help="Alternating rounds the requests are split into.")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--orders", type=int, default=10_000, help="Orders of the bench tenant.")
    parser.add_argument("--noise-tenants", type=int, default=9)
    parser.add_argument("--noise-orders", type=int, default=2_000, help="Orders per noise tenant.")
    parser.add_argument("--rebuild", action="store_true", help="Regenerate the data kept in DATABASE_URL.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker.")
    parser.add_argument("--calls", type=int, default=5_000, help="Calls of each step in the in-process part.")
    parser.add_argument("--skip-http", action="store_true", help="Only the in-process part (no gunicorn).")
    parser.add_argument(
        "--quick", action="store_true", help="Small sizes for `make bench`: 2,000 orders, 600 requests per target."
    )
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON line.")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.noise_tenants, args.noise_orders = 2_000, 3, 500
        args.requests, args.warmup, args.rounds, args.calls = 600, 60, 3, 1_000

    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so gunicorn and the files are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    try:
        figures = run(args, workdir)
        if args.json:
            print(json.dumps(figures))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
