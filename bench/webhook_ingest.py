#!/usr/bin/env python
"""Webhook ingest: signed Shopify deliveries (`POST /webhooks/shopify/<connection uuid>/`, a ~3 KB
order, `orders/updated`) driven into the real receiver under gunicorn on loopback, beside a bare
Django view that answers 200 on the same server (the ceiling), in the configured database
(DATABASE_URL; SQLite by default, then a temporary file, never the development database).

    .venv/bin/python bench/webhook_ingest.py                      # SQLite, 2 sync workers, 8 clients
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_webhooks .venv/bin/python bench/webhook_ingest.py
    .venv/bin/python bench/webhook_ingest.py --requests 5000 --clients 16 --workers 4 --threads 2
    .venv/bin/python bench/webhook_ingest.py --profile            # where the server's time goes
    .venv/bin/python bench/webhook_ingest.py --cprofile 40        # and the top 40 functions (cProfile)

The bench migrates the database, creates a tenant and a Shopify connection with a client secret,
and starts gunicorn serving `config.wsgi` on 127.0.0.1 (a free port) with `bench.settings_webhook`:
the project's settings with DEBUG=false (throwaway keys) and a bench-only URLconf that adds the
bare view at `bench/bare/`. Each target gets a warm-up, then N requests from concurrent client
threads (one HTTP connection each, reopened when the server closes it, as sync workers do), in
--rounds that alternate bare, webhook, bare, webhook… so that other processes' load falls on all
targets alike (the ratio is over the sums; its spread over the rounds is printed). The same
gunicorn workers and settings serve every target. The bare view the target is set on goes through
the project's whole middleware chain, as any page does; webhook deliveries go through their own
short chain (config/handlers.py), and so does a third target, the same bare view mounted at
`webhooks/bench-bare/`, printed for reference (webhook/that view is the share of the ceiling on
the webhooks' own path). Every
webhook request carries a unique X-Shopify-Webhook-Id, so each must store one event (one insert);
a drain task is queued in django-q2's ORM broker for the lot (one every few seconds per worker, see
webhooks/queue.py; no worker runs, so the events stay waiting). The bench counts both.

Prints requests/s, p50/p95/p99 acknowledgement latency (as the sender sees it: connect, send, the
answer read) and errors for both targets, their throughput ratio against the targets (p99 under
50 ms; at least half the bare view's throughput), the stored/queued counts, errors in the server's
log (e.g. SQLite's "database is locked"), and the CPU each request cost in the gunicorn workers,
the load generator, PostgreSQL and anything else. The load generator runs on the same machine and
competes with the server for its cores; the output says how many there are and how busy the
machine already was before the run (other processes skew the figures). --profile adds, from a
Server-Timing header (`bench/webhook_timing.py`), the mean time per request outside Django
(waiting for a worker, HTTP), inside it, and in each kind of database work; --cprofile N adds the
top N functions of a cProfile of the webhook requests. PostgreSQL rows are removed afterwards; the
SQLite file is deleted.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import hashlib
import hmac
import http.client
import itertools
import json
import os
import pstats
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = "bench.settings_webhook"
TOPIC = "orders/updated"
SHOP = "bench-store.myshopify.com"
P99_TARGET_MS = 50
RATIO_TARGET = 0.5


# --- The delivery ---------------------------------------------------------------------------------


def shopify_order() -> dict:
    """An `orders/updated` payload shaped like Shopify's (REST webhook format), about 3 KB."""
    order_id = 5_512_345_678_901
    address = {
        "first_name": "Ava",
        "last_name": "Buyer",
        "company": None,
        "address1": "12 Harbour Street",
        "address2": "Unit 4",
        "city": "Portland",
        "province": "Oregon",
        "province_code": "OR",
        "country": "United States",
        "country_code": "US",
        "zip": "97201",
        "phone": "+1 503 555 0142",
        "latitude": 45.5152,
        "longitude": -122.6784,
    }
    lines = [
        {
            "id": 13_012_345_678_900 + k,
            "admin_graphql_api_id": f"gid://shopify/LineItem/{13_012_345_678_900 + k}",
            "product_id": 7_801_234_567_000 + k,
            "variant_id": 42_801_234_567_000 + k,
            "title": title,
            "variant_title": variant,
            "sku": f"BENCH-{k:03d}",
            "vendor": "Bench Goods",
            "quantity": 1 + k,
            "price": price,
            "total_discount": "0.00",
            "fulfillment_status": None,
            "requires_shipping": True,
            "taxable": True,
            "tax_lines": [{"title": "OR State Tax", "price": "0.00", "rate": 0.0}],
            "properties": [],
        }
        for k, (title, variant, price) in enumerate(
            [("Canvas Tote", "Natural", "24.00"), ("Wool Beanie", "Charcoal / One size", "18.50")]
        )
    ]
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#1042",
        "order_number": 1042,
        "email": "ava.buyer@example.com",
        "phone": None,
        "created_at": "2026-03-02T09:14:05-05:00",
        "updated_at": "2026-03-02T10:01:44-05:00",
        "processed_at": "2026-03-02T09:14:04-05:00",
        "cancelled_at": None,
        "closed_at": None,
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "subtotal_price": "61.00",
        "total_discounts": "0.00",
        "total_line_items_price": "61.00",
        "total_price": "68.95",
        "total_tax": "0.00",
        "total_weight": 640,
        "taxes_included": False,
        "source_name": "web",
        "token": "b1946ac92492d2347c6235b4d2611184",
        "checkout_token": "8b1a9953c4611296a827abf8c47804d7",
        "landing_site": "/collections/new-arrivals?utm_source=newsletter&utm_medium=email",
        "referring_site": "https://mail.example.com/",
        "order_status_url": "https://bench-store.myshopify.com/70000000000/orders/b1946ac92492d2347c62/authenticate",
        "payment_gateway_names": ["shopify_payments"],
        "client_details": {
            "browser_ip": "203.0.113.24",
            "accept_language": "en-US,en;q=0.9",
            "user_agent": "Mozilla/5.0",
        },
        "tags": "returning, newsletter",
        "note": "Please leave at the side door.",
        "note_attributes": [{"name": "gift_wrap", "value": "no"}],
        "discount_codes": [],
        "customer": {
            "id": 6_601_234_567_890,
            "email": "ava.buyer@example.com",
            "first_name": "Ava",
            "last_name": "Buyer",
            "orders_count": 4,
            "state": "enabled",
            "total_spent": "212.40",
            "verified_email": True,
            "tags": "vip",
            "currency": "USD",
            "created_at": "2024-11-18T16:20:11-05:00",
            "updated_at": "2026-03-02T09:14:06-05:00",
        },
        "billing_address": address,
        "shipping_address": address,
        "line_items": lines,
        "shipping_lines": [
            {"id": 4_401_234_567, "title": "Standard", "code": "STANDARD", "price": "7.95", "source": "shopify"}
        ],
        "tax_lines": [],
        "refunds": [],
        "fulfillments": [],
    }


@dataclass
class Target:
    name: str
    path: str
    body: bytes
    secret: str

    def headers(self) -> dict[str, str]:
        signature = base64.b64encode(hmac.new(self.secret.encode(), self.body, hashlib.sha256).digest()).decode()
        return {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": TOPIC,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Triggered-At": "2026-03-02T15:01:44.123456Z",
        }


# --- The load -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: Counter
    timings: list[dict[str, tuple[float, int]]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Acknowledged (200) requests per second."""
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")

    @classmethod
    def merge(cls, rounds: list[Result]) -> Result:
        """The rounds of one target as one run: times and counts summed, CPU per request averaged
        over the requests (the machine's shares over the time)."""
        answered = [max(1, len(r.latencies_ms)) for r in rounds]
        cpu: dict[str, float] = {}
        if all(r.cpu for r in rounds):
            for key in rounds[0].cpu:
                if key.endswith("_percent"):
                    cpu[key] = sum(r.cpu[key] * r.seconds for r in rounds) / sum(r.seconds for r in rounds)
                else:
                    cpu[key] = sum(r.cpu[key] * n for r, n in zip(rounds, answered, strict=True)) / sum(answered)
        return cls(
            name=rounds[0].name,
            requests=sum(r.requests for r in rounds),
            seconds=sum(r.seconds for r in rounds),
            latencies_ms=[ms for r in rounds for ms in r.latencies_ms],
            errors=sum((r.errors for r in rounds), Counter()),
            timings=[t for r in rounds for t in r.timings],
            cpu=cpu,
        )


TIMING = re.compile(r"([a-z_]+);dur=([0-9.]+)(?:;desc=(\d+))?")


def drive(port: int, target: Target, total: int, clients: int, stop: threading.Event, meter: CpuMeter) -> Result:
    """Send `total` requests to `target` from `clients` threads; every request has its own ids."""
    base_headers = target.headers()
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: Counter = Counter()
    timings: list[dict[str, tuple[float, int]]] = []

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        my_timings: list[dict[str, tuple[float, int]]] = []
        my_errors: Counter = Counter()
        while not stop.is_set() and next(counter) < total:
            headers = {
                **base_headers,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", target.path, body=target.body, headers=headers)
                response = conn.getresponse()
                response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as error:
                my_errors[type(error).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if response.status != 200:
                my_errors[f"HTTP {response.status}"] += 1
                continue
            mine.append(elapsed)
            server_timing = response.getheader("Server-Timing")
            if server_timing:
                my_timings.append(
                    {name: (float(ms), int(n or 1)) for name, ms, n in TIMING.findall(server_timing)}
                    | {"client": (elapsed, 1)}
                )
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)
            errors.update(my_errors)
            timings.extend(my_timings)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    cpu_before = meter.snapshot()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join, so Ctrl-C reaches the main thread
            thread.join(0.2)
    seconds = time.perf_counter() - started
    cpu = meter.per_request(cpu_before, meter.snapshot(), max(1, len(latencies)), seconds)
    return Result(target.name, total, seconds, latencies, errors, timings, cpu)


class CpuMeter:
    """CPU time (from /proc, on Linux) of gunicorn's workers, of this process (the load generator),
    of PostgreSQL (its shared processes and the backends serving the bench's database, not other
    databases' backends; none on SQLite) and of the whole machine, so a run shows who used the cores."""

    CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")  # a client backend: "user db 127.0.0.1(port) state"

    def __init__(self, master_pid: int, database: str = "") -> None:
        self.master_pid = master_pid
        self.database = database
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = Path("/proc/stat").exists()

    def snapshot(self) -> dict:
        """CPU seconds so far: per gunicorn worker and PostgreSQL process (by pid), of this process,
        and the machine's busy and total time."""
        if not self.available:
            return {}
        workers: dict[int, float] = {}
        database: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, rest = (entry / "stat").read_text().rsplit(")", 1)
                fields = rest.split()
                seconds = (int(fields[11]) + int(fields[12])) / self.tick
                if int(fields[1]) == self.master_pid:
                    workers[int(entry.name)] = seconds
                elif self.database and name.split("(", 1)[1].startswith("postgres") and self._ours(entry):
                    database[int(entry.name)] = seconds
        times = os.times()
        machine = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = machine[3] + (machine[4] if len(machine) > 4 else 0)
        return {
            "gunicorn": workers,
            "database": database,
            "client": times.user + times.system,
            "busy": (sum(machine) - idle) / self.tick,
            "total": sum(machine) / self.tick,
        }

    def _ours(self, process: Path) -> bool:
        command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return not self.CLIENT_BACKEND.search(command) or f" {self.database} " in command

    def background(self, seconds: float = 1.0) -> float:
        """The share of the machine busy while the bench does nothing (other processes), in %."""
        before = self.snapshot()
        time.sleep(seconds)
        after = self.snapshot()
        if not before:
            return float("nan")
        total = after["total"] - before["total"]
        return 100 * (after["busy"] - before["busy"]) / total if total else float("nan")

    @staticmethod
    def per_request(before: dict, after: dict, requests: int, seconds: float) -> dict:
        if not before or not after:
            return {}

        def grown(name: str) -> float:
            # Per process, so one that exits during the run (a PostgreSQL backend) cannot count negative.
            return sum(value - before[name].get(pid, 0.0) for pid, value in after[name].items())

        used = {"gunicorn": grown("gunicorn"), "database": grown("database")}
        used |= {name: after[name] - before[name] for name in ("client", "busy", "total")}
        other = max(0.0, used["busy"] - used["gunicorn"] - used["database"] - used["client"])
        return {
            "gunicorn": used["gunicorn"] * 1000 / requests,
            "client": used["client"] * 1000 / requests,
            "database": used["database"] * 1000 / requests,
            "other": other * 1000 / requests,
            "busy_percent": 100 * used["busy"] / used["total"] if used["total"] else float("nan"),
            "other_percent": 100 * other / used["total"] if used["total"] else float("nan"),
        }


# --- The server -----------------------------------------------------------------------------------


class Server:
    """gunicorn serving config.wsgi with the bench settings, on a socket the bench bound itself
    (handed over as fd://, so no other process can take the port in between)."""

    def __init__(self, env: dict[str, str], workers: int, threads: int, log: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.sock.set_inheritable(True)
        self.port = self.sock.getsockname()[1]
        self.log = log
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"fd://{self.sock.fileno()}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--chdir",
            str(ROOT),
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
        ]
        with open(log, "wb") as out:
            # Its own session: the bench alone decides when it stops (Ctrl-C reaches the bench).
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(self.sock.fileno(),),
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", "/bench/bare/")
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        return
                    raise SystemExit(f"The bare view answered {response.status}:\n{self.tail()}")
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
                # Its session's process group is gunicorn's own pid: the master and its workers.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.sock.close()


# --- The run --------------------------------------------------------------------------------------


def bench_environment(workdir: Path, settings: str) -> dict[str, str]:
    """DEBUG=false with throwaway keys (the production path), and the database to use."""
    environ.Env.read_env(ROOT / ".env", overwrite=False)
    url = os.environ.get("DATABASE_URL", "")
    if not url or url.startswith(("sqlite:", "sqlite3:")):
        url = f"sqlite:///{workdir / 'webhook-bench.sqlite3'}"
    return {
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FERNET_KEYS": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Loopback HTTP: no redirect to HTTPS, no secure-only cookies.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_ROOT": str(workdir / "static"),
        # The project's default (INFO) unless set: django-q2 logs every enqueue at INFO, a real cost.
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }


def prepare(info: dict) -> None:
    """Migrate, and create a tenant with a Shopify connection that has a client secret. Fills `info`
    as it goes, so an interrupted run still removes what it created."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import OperationalError
    from django.db import connection as db
    from django_q.models import OrmQ

    from integrations.models import Connection
    from tenants.models import Tenant

    info.update(vendor=db.vendor, database=db.settings_dict["NAME"])
    try:
        call_command("migrate", verbosity=0)
    except OperationalError as error:
        raise SystemExit(
            f"Cannot use the database {db.settings_dict['NAME']!r}: {error}\n"
            "For PostgreSQL, create it first, e.g. `createdb -h 127.0.0.1 -U postgres bench_webhooks`."
        ) from None
    info["queued_before"] = OrmQ.objects.order_by("-id").values_list("id", flat=True).first() or 0
    stamp = time.time_ns()
    info["tenant"] = Tenant.objects.create(
        name=f"Webhook bench {stamp}", slug=f"webhook-bench-{stamp}", contact_email="b@example.com"
    )
    info["secret"] = "shpss_" + secrets.token_hex(16)
    info["connection"] = Connection.objects.create(
        tenant=info["tenant"],
        platform="shopify",
        name="bench store",
        sync_frequency="manual",
        credentials={
            "shop_domain": SHOP,
            "access_token": "shpat_" + secrets.token_hex(16),
            "client_secret": info["secret"],
        },
    )
    db.close()  # the server's workers open their own


def queued_tasks(info: dict) -> list[int]:
    """The ids of the drain tasks queued during the run (webhooks.queue: deliveries within a few
    seconds of a queued drain share it, so there are far fewer than events)."""
    from django_q.models import OrmQ

    return [
        row.pk
        for row in OrmQ.objects.filter(id__gt=info["queued_before"]).iterator()
        if row.task.get("func") == "webhooks.tasks.drain"
    ]


def count_stored(info: dict) -> tuple[int, int, int]:
    from webhooks.models import EventStatus, WebhookEvent

    events = WebhookEvent.objects.filter(connection=info["connection"])
    verified = events.filter(status=EventStatus.RECEIVED, signature_valid=True).count()
    return events.count(), verified, len(queued_tasks(info))


def clean_up(info: dict) -> None:
    from django.db import connection as db
    from django_q.models import OrmQ

    from webhooks.models import WebhookEvent

    if "connection" in info:
        OrmQ.objects.filter(pk__in=queued_tasks(info)).delete()
        WebhookEvent.objects.filter(connection=info["connection"])._raw_delete(db.alias)
        info["connection"].delete()
    if "tenant" in info:
        info["tenant"].delete()
    db.close()


def print_result(result: Result) -> None:
    errors = ", ".join(f"{kind} x{n}" for kind, n in result.errors.most_common()) or "none"
    print(
        f"  {result.name:<18} {result.rate:8.1f} req/s   p50 {result.percentile(50):6.1f} ms   "
        f"p95 {result.percentile(95):6.1f} ms   p99 {result.percentile(99):6.1f} ms   "
        f"max {max(result.latencies_ms, default=float('nan')):6.1f} ms   errors: {errors}"
    )
    if result.cpu:
        cpu = result.cpu
        print(
            f"           CPU per request: gunicorn workers {cpu['gunicorn']:.2f} ms, load generator "
            f"{cpu['client']:.2f} ms, PostgreSQL {cpu['database']:.2f} ms, anything else {cpu['other']:.2f} ms; "
            f"machine {cpu['busy_percent']:.0f}% busy"
        )
        if cpu["other_percent"] > 10:
            print(
                f"           warning: other processes took {cpu['other_percent']:.0f}% of the machine during this "
                f"run: the figures are lower and noisier than on a quiet machine"
            )


def print_timings(result: Result) -> None:
    if not result.timings:
        return
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for timing in result.timings:
        for name, (ms, n) in timing.items():
            sums[name] += ms
            counts[name] += n
    n = len(result.timings)
    client, django_ms = sums.pop("client") / n, sums.pop("django") / n
    counts.pop("client")
    counts.pop("django")
    db_ms = sum(sums.values()) / n
    print(f"  {result.name}: mean per request over {n} requests")
    print(f"    {'acknowledged (client side)':<34} {client:7.2f} ms")
    print(f"    {'outside Django (queue, HTTP, wsgi)':<34} {client - django_ms:7.2f} ms")
    print(f"    {'inside Django':<34} {django_ms:7.2f} ms")
    print(f"      {'Python (middleware, view, ORM)':<32} {django_ms - db_ms:7.2f} ms")
    for name in sorted(sums, key=sums.get, reverse=True):
        print(f"      {'db ' + name:<32} {sums[name] / n:7.2f} ms   ({counts[name] / n:.1f} per request)")


def print_profile(profile_dir: Path, top: int) -> None:
    files = sorted(glob.glob(str(profile_dir / "*.prof")))
    if not files:
        print("  (no cProfile output: the workers did not write one)")
        return
    stats = pstats.Stats(*files, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative")
    print(
        f"cProfile of the webhook requests ({len(files)} workers; cProfile slows Python code several times "
        f"over, so read it for proportions), top {top} by cumulative time:"
    )
    stats.print_stats(top)


def interrupt(signum, frame) -> None:
    """SIGTERM ends the bench the way Ctrl-C does: through its clean-up."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="Measured requests per target (default 2,000).")
    parser.add_argument("--warmup", type=int, default=200, help="Unmeasured requests per target first (default 200).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client threads (default 8).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2).")
    parser.add_argument("--threads", type=int, default=1, help="Threads per worker; over 1 means gthread (default 1).")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="Alternate the targets this many times, the requests split between the rounds (default 4).",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Add where the server's time goes (Server-Timing; slows it a little)."
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="TOP",
        help="Also cProfile the webhook requests in the workers and show the TOP functions (slows them a lot).",
    )
    parser.add_argument("--settings", default=SETTINGS, help=f"Settings module for both sides (default {SETTINGS}).")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    (workdir / "static").mkdir()
    server: Server | None = None
    info: dict = {}
    stop = threading.Event()
    try:
        env = bench_environment(workdir, args.settings)
        os.environ.update(env)
        prepare(info)
        server_env = dict(os.environ)
        if args.profile or args.cprofile:
            server_env["BENCH_WEBHOOK_TIMING"] = "1"
        if args.cprofile:
            (workdir / "profile").mkdir()
            server_env["BENCH_WEBHOOK_CPROFILE"] = str(workdir / "profile")
        server = Server(server_env, args.workers, args.threads, workdir / "gunicorn.log")
        server.wait_ready()
        database = info["database"] if info["vendor"] == "postgresql" else ""
        meter = CpuMeter(server.process.pid, database)

        body = json.dumps(shopify_order(), separators=(",", ":")).encode()
        webhook = Target("webhook", f"/webhooks/shopify/{info['connection'].uuid}/", body, info["secret"])
        bare = Target("bare", "/bench/bare/", body, info["secret"])
        # The same bare view where webhooks are served: config.handlers gives it their short chain.
        lean = Target("bare-webhook-chain", "/webhooks/bench-bare/", body, info["secret"])
        targets = (bare, lean, webhook)
        cores = os.cpu_count() or 1
        worker_class = "sync" if args.threads == 1 else "gthread"
        print(
            f"{info['vendor']}: gunicorn {args.workers} {worker_class} workers x {args.threads} threads, "
            f"{args.clients} clients, {args.requests:,} requests per target after {args.warmup} warm-up, "
            f"{len(body):,}-byte signed Shopify {TOPIC} body, DEBUG=false"
        )
        print(
            f"  note: {cores} CPU cores; the load generator (this process, {args.clients} threads) runs on the "
            f"same machine and competes with gunicorn{' and PostgreSQL' if info['vendor'] == 'postgresql' else ''} "
            f"for them"
        )
        busy = meter.background()
        if busy == busy:  # not NaN: /proc is there
            warning = " -- other processes are using the machine: expect lower, noisier figures" if busy > 10 else ""
            print(f"  before the run, with the bench idle, the machine was {busy:.0f}% busy{warning}")
        if hasattr(os, "getloadavg"):
            print("  load average (1, 5, 15 min) before the run: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        for target in targets:
            drive(server.port, target, args.warmup, args.clients, stop, meter)
        rounds: dict[str, list[Result]] = {target.name: [] for target in targets}
        round_count = max(1, min(args.rounds, args.requests))
        per_round = args.requests // round_count
        for n in range(round_count):
            count = args.requests - per_round * (round_count - 1) if n == round_count - 1 else per_round
            for target in targets:
                rounds[target.name].append(drive(server.port, target, count, args.clients, stop, meter))
        results = {name: Result.merge(parts) for name, parts in rounds.items()}
        for result in results.values():
            print_result(result)
        ratio = results["webhook"].rate / results["bare"].rate
        if len(rounds["bare"]) > 1:
            ratios = [w.rate / b.rate for b, w in zip(rounds["bare"], rounds["webhook"], strict=True)]
            print(
                f"  webhook/bare per round ({len(ratios)} rounds of {per_round:,} requests each): "
                + ", ".join(f"{r:.2f}" for r in ratios)
            )
        p99 = results["webhook"].percentile(99)
        print(
            f"  webhook/bare throughput: {ratio:.2f} (target >= {RATIO_TARGET}: "
            f"{'met' if ratio >= RATIO_TARGET else 'MISSED'}); webhook p99 {p99:.1f} ms "
            f"(target < {P99_TARGET_MS} ms: {'met' if p99 < P99_TARGET_MS else 'MISSED'})"
        )
        lean_ratio = results["webhook"].rate / results[lean.name].rate
        print(
            f"  webhook/bare view on the webhooks' own middleware chain: {lean_ratio:.2f} (for reference: that "
            f"bare view answers {results[lean.name].rate / results['bare'].rate:.2f}x the one the target is set on)"
        )
        if results["bare"].cpu and results["webhook"].cpu:
            # What the server itself spends (gunicorn + database), without the load generator or others:
            # the throughput ratio tends to this when the server is CPU-bound and has the cores to itself.
            server_ms = {name: r.cpu["gunicorn"] + r.cpu["database"] for name, r in results.items() if r.cpu}
            print(
                f"  server CPU per request (gunicorn + database): webhook {server_ms['webhook']:.2f} ms, bare "
                f"{server_ms['bare']:.2f} ms; ratio {server_ms['bare'] / server_ms['webhook']:.2f}, at most "
                f"~{cores * 1000 / server_ms['webhook']:,.0f} webhook req/s on {cores} cores when CPU-bound"
            )
        expected = args.warmup + args.requests
        accepted = args.warmup + len(results["webhook"].latencies_ms)
        stored, received, queued = count_stored(info)
        verdict = "all stored" if stored == received == expected and queued else "MISMATCH"
        print(
            f"  stored: {stored:,} events ({received:,} verified and waiting), {queued:,} drain tasks queued, for "
            f"{expected:,} deliveries sent ({accepted:,} answered 200 counting the warm-up): {verdict}"
        )
        log = server.log.read_text(errors="replace")
        locked = log.count("database is locked")
        logged = len(re.findall(r"\bERROR\b", log))
        print(
            f"  server log (LOG_LEVEL={os.environ['LOG_LEVEL']}): {len(log.splitlines()):,} lines, {logged} errors, "
            f"{locked} 'database is locked'"
        )
        if logged:
            print("  last lines of the server log:\n" + server.tail(15))

        if args.profile or args.cprofile:
            print("where the time goes (Server-Timing from bench.webhook_timing; the middleware itself adds a little):")
            for result in results.values():
                print_timings(result)
        if args.cprofile:
            server.stop()  # the workers write their cProfile as they exit
            server = None
            print_profile(workdir / "profile", args.cprofile)
    except KeyboardInterrupt:
        stop.set()
        print("interrupted; cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        stop.set()
        try:
            if server is not None:
                server.stop()
            if info.get("vendor") not in (None, "sqlite"):  # the SQLite file goes with the directory
                clean_up(info)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
