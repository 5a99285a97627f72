#!/usr/bin/env python
"""Campaign send rate: an email campaign to N recipients through `campaigns.sending.run` (the
recipients frozen from a segment, each message rendered with its merge fields and unsubscribe
link, stored before the provider is asked and recorded after), with the real SendGrid provider and
HTTP client posting to a local fake SendGrid that answers 202 and an X-Message-Id, beside the
ceiling: a bare loop of the same number of the same POSTs to the same fake, in the same run.

    .venv/bin/python bench/campaign_send.py                       # 2,000 recipients, temporary SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_campaigns .venv/bin/python bench/campaign_send.py
    .venv/bin/python bench/campaign_send.py --recipients 10000 --batch 500
    .venv/bin/python bench/campaign_send.py --quick --json         # 300 recipients (make bench), as JSON
    .venv/bin/python bench/campaign_send.py --with-budget          # with SendGrid's request budget

The database is a temporary SQLite file (deleted afterwards) or DATABASE_URL when it names
PostgreSQL (migrated; the bench's rows are removed afterwards). The send runs in this process, as
the task would on a worker, one recipient after another. The connection's request budget (the
catalogue's rate for SendGrid, `integrations/platforms.py`) is left out unless --with-budget: this
measures what the hub costs per email, and the output says what the budget would allow. Prints
emails/s, SQL statements per email, the bare loop's rate and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEND_PATH = "/v3/mail/send"


# --- The fake SendGrid ------------------------------------------------------------------------------


def serve(port_queue, taken) -> None:
    """POST /v3/mail/send: 202 with an X-Message-Id, as SendGrid answers a message it takes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != SEND_PATH:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with taken.get_lock():
                taken.value += 1
            self.send_response(202)
            self.send_header("X-Message-Id", secrets.token_hex(11))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


# --- The run --------------------------------------------------------------------------------------


def environment(workdir: Path) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres", "pgsql")):
        url = f"sqlite:///{workdir / 'campaign-bench.sqlite3'}"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
            # The fake SendGrid is on loopback; emails carry unsubscribe links to a public address.
            "INTEGRATIONS_ALLOW_PRIVATE_URLS": "true",
            "PUBLIC_BASE_URL": "https://hub.example.com",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )


def prepare(recipients: int, port: int) -> dict:
    from campaigns.models import Campaign, Segment
    from commerce.models import Customer
    from integrations.models import Connection, ConnectionStatus
    from tenants.models import Tenant

    stamp = time.time_ns()
    tenant = Tenant.objects.create(
        name=f"Campaign bench {stamp}", slug=f"campaign-bench-{stamp}", contact_email="bench@example.com"
    )
    shop = Connection.objects.create(tenant=tenant, platform="shopify", name="bench shop", sync_frequency="manual")
    Customer.objects.bulk_create(
        [
            Customer(
                tenant=tenant,
                connection=shop,
                external_id=f"c{n}",
                email=f"person{n}@example.com",
                first_name=f"Ava{n}",
                last_name="Buyer",
                accepts_marketing=True,
            )
            for n in range(recipients)
        ],
        batch_size=1000,
    )
    sendgrid = Connection.objects.create(
        tenant=tenant,
        platform="sendgrid",
        name="bench SendGrid",
        sync_frequency="manual",
        status=ConnectionStatus.CONNECTED,
        base_url=f"http://127.0.0.1:{port}",
        credentials={"api_key": "SG.bench", "from_email": "shop@example.com"},
    )
    segment = Segment.objects.create(tenant=tenant, name="Everyone")
    campaign = Campaign.objects.create(
        tenant=tenant,
        connection=sendgrid,
        segment=segment,
        name="Bench sale",
        channel="email",
        subject="Hello {{ first_name }}",
        html="<p>Hi {{ first_name }}, use {{ discount_code }} before Sunday.</p>",
        body="Hi {{ first_name }}, use {{ discount_code }} before Sunday.",
        discount_code="BENCH10",
    )
    return {"tenant": tenant, "connection": sendgrid, "campaign": campaign}


def send(info: dict) -> tuple[float, int, str]:
    """Seconds and SQL statements of the whole send task, and what it returned."""
    from django.db import connection

    from campaigns import sending

    sending._enqueue = lambda campaign_id: None  # the bench calls the task itself, below
    sending.schedule(info["campaign"])
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    began = time.perf_counter()
    with connection.execute_wrapper(count):
        outcome = sending.run(info["campaign"].pk)
    return time.perf_counter() - began, statements, outcome


def bare_loop(port: int, count: int) -> float:
    """Seconds for `count` POSTs of a mail/send body like the provider's, on one keep-alive session."""
    import requests

    body = {
        "personalizations": [{"to": [{"email": "person@example.com"}], "custom_args": {"hub_message_id": "x" * 36}}],
        "from": {"email": "shop@example.com"},
        "subject": "Hello Ava",
        "content": [
            {
                "type": "text/plain",
                "value": "Hi Ava, use BENCH10 before Sunday.\n\nUnsubscribe: https://hub.example.com/u/x",
            },
            {"type": "text/html", "value": "<p>Hi Ava, use BENCH10 before Sunday.</p>"},
        ],
        "headers": {"List-Unsubscribe": "<https://hub.example.com/u/x>", "List-Unsubscribe-Post": "One-Click"},
    }
    began = time.perf_counter()
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer SG.bench"
        for _ in range(count):
            response = session.post(f"http://127.0.0.1:{port}{SEND_PATH}", json=body, timeout=30)
            if response.status_code != 202:
                raise SystemExit(f"The fake SendGrid answered {response.status_code}")
    return time.perf_counter() - began


def clean_up(info: dict) -> None:
    from campaigns.models import Message
    from commerce.models import Customer

    tenant = info.get("tenant")
    if tenant is None:
        return
    if "campaign" in info:
        info["campaign"].delete()
    Message.objects.for_tenant(tenant).delete()
    Customer.objects.for_tenant(tenant).delete()
    tenant.delete()


def run(args: argparse.Namespace, workdir: Path) -> dict:
    environment(workdir)
    import django

    django.setup()
    from django.conf import settings

    # DEBUG keeps every SQL statement in memory; a benchmark measures the production path.
    settings.DEBUG = False
    settings.CAMPAIGN_BATCH_SIZE = args.batch
    from django.core.management import call_command
    from django.db import connection

    from campaigns.models import Message, MessageStatus, Recipient, RecipientState
    from integrations.platforms import CATALOGUE

    call_command("migrate", verbosity=0)
    spec = CATALOGUE["sendgrid"]
    if not args.with_budget:
        CATALOGUE["sendgrid"] = dataclasses.replace(spec, rate_limit=1e9, rate_burst=10**9)
    taken = multiprocessing.Value("i", 0)
    ports: multiprocessing.Queue = multiprocessing.Queue()
    fake = multiprocessing.Process(target=serve, args=(ports, taken), daemon=True)
    fake.start()
    info: dict = {}
    try:
        port = ports.get(timeout=10)
        info = prepare(args.recipients, port)
        seconds, statements, outcome = send(info)
        campaign = info["campaign"]
        sent = Recipient.objects.filter(campaign=campaign, state=RecipientState.SENT).count()
        answered = Message.objects.filter(pk__in=Recipient.objects.filter(campaign=campaign).values("message_id"))
        queued = answered.filter(status=MessageStatus.QUEUED).exclude(provider_id="").count()
        if outcome != "sent" or sent != args.recipients or queued != sent or taken.value != sent:
            raise SystemExit(
                f"The campaign did not go as expected: {outcome!r}, {sent} sent, {queued} queued with an id, "
                f"{taken.value} taken by the fake, for {args.recipients} recipients"
            )
        ceiling_seconds = bare_loop(port, args.recipients)
    finally:
        fake.terminate()
        clean_up(info)
        CATALOGUE["sendgrid"] = spec
    budget = spec.rate_burst / max(1.0, spec.rate_burst / spec.rate_limit)
    return {
        "database": connection.vendor,
        "recipients": args.recipients,
        "batch": args.batch,
        "with_budget": args.with_budget,
        "seconds": round(seconds, 2),
        "emails_per_second": round(args.recipients / seconds, 1),
        "statements_per_email": round(statements / args.recipients, 1),
        "ceiling_emails_per_second": round(args.recipients / ceiling_seconds, 1),
        "budget_emails_per_second": round(budget, 1),
        "load_average": round(os.getloadavg()[0], 2),
    }


def report(figures: dict) -> None:
    ratio = figures["emails_per_second"] / figures["ceiling_emails_per_second"]
    budget = "with" if figures["with_budget"] else "without"
    print(
        f"{figures['database']}: {figures['recipients']:,} emails in {figures['seconds']} s = "
        f"{figures['emails_per_second']:,} emails/s ({budget} the request budget), "
        f"{figures['statements_per_email']} SQL statements per email, batches of {figures['batch']}"
    )
    print(
        f"  bare POST loop: {figures['ceiling_emails_per_second']:,} posts/s; campaign/bare: {ratio:.2f}; "
        f"load average {figures['load_average']}"
    )
    print(
        f"  SendGrid's request budget in the catalogue allows about {figures['budget_emails_per_second']:,} "
        f"emails/s per connection ({figures['budget_emails_per_second'] * 3600:,.0f} an hour)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100, help="CAMPAIGN_BATCH_SIZE (default 100, the setting's).")
    parser.add_argument(
        "--with-budget", action="store_true", help="Keep SendGrid's request budget (slow: a few emails a second)."
    )
    parser.add_argument("--quick", action="store_true", help="300 recipients (make bench).")
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON line.")
    args = parser.parse_args()
    if args.quick:
        args.recipients = 300
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the fake and the files are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    try:
        figures = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
