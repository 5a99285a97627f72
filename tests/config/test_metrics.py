"""GET /metrics: who may scrape, what the text holds, and that the counters move where things happen
while the database gauges equal what the database holds."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ, Task
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from integrations.models import SyncRun, SyncStatus
from integrations.sync import run_sync
from tests.integrations.test_sync_engine import ListConnector, pages_of
from webhooks import processing
from webhooks.models import DeliveryStatus, EventStatus, HookDelivery, HookSubscription, WebhookEvent
from webhooks.outbound import delivery, signing
from webhooks.outbound.targets import Answer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-tests-0123456789"
SHOPIFY_SECRET = "shpss_metrics_test_secret"
ORDER = {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1", "updated_at": "2026-11-20T10:00:00Z"}

FAMILIES = [
    "hub_http_requests_total",
    "hub_http_request_duration_seconds",
    "hub_sync_runs_total",
    "hub_sync_run_duration_seconds",
    "hub_records_synced_total",
    "hub_webhook_events_total",
    "hub_outbound_deliveries_total",
    "hub_api_requests_total",
    "hub_sync_runs_last_24h",
    "hub_webhook_events_open",
    "hub_outbound_deliveries_open",
    "hub_task_queue_length",
    "hub_task_failures",
    "hub_metrics_database_up",
]


@pytest.fixture(autouse=True)
def _metrics_settings(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    metrics.DATABASE.forget()
    yield
    metrics.DATABASE.forget()


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry (tests run without PROMETHEUS_MULTIPROC_DIR)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client | None = None, **headers: str):
    return (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)


def families(text: str) -> dict[str, dict[tuple, float]]:
    """{family name: {sorted label items: value}} of an exposition text."""
    return {
        family.name: {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


# --- Who may scrape ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", ["", f"Bearer {TOKEN}", "Bearer "])
def test_metrics_is_a_404_when_neither_a_token_nor_an_allow_list_is_set(authorization):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=authorization, REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_token_opens_metrics(settings):
    settings.METRICS_TOKEN = TOKEN
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization", ["", "Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"]
)
def test_a_wrong_or_missing_token_is_a_404(settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 404


@pytest.mark.django_db
def test_a_refused_post_is_a_404_too_so_the_address_is_not_revealed(settings):
    settings.METRICS_TOKEN = TOKEN
    assert Client().post("/metrics").status_code == 404
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("192.168.0.7", True),
        ("192.168.0.8", False),
        ("11.0.0.1", False),
        ("fd00::1", True),
        ("2001:db8::1", False),
    ],
)
def test_an_address_in_the_allow_list_may_scrape_without_a_token(settings, address, allowed):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", " 192.168.0.7/32", "fd00::/8"]
    response = Client().get("/metrics", REMOTE_ADDR=address)
    assert response.status_code == (200 if allowed else 404)


@pytest.mark.django_db
def test_the_token_still_works_beside_an_allow_list(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert scrape(REMOTE_ADDR="203.0.113.9").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404


# --- What the text holds -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_text_holds_every_metric_family(settings):
    settings.METRICS_TOKEN = TOKEN
    text = scrape().content.decode()
    for family in FAMILIES:
        assert f"# TYPE {family} " in text, family
    assert families(text)["hub_metrics_database_up"] == {(): 1.0}


@pytest.mark.django_db
def test_a_request_is_counted_under_its_route_never_its_path(settings, api_key):
    settings.METRICS_TOKEN = TOKEN
    _, raw = api_key
    labels = {"method": "GET", "route": "/api/v1/orders/{pk}", "status": "404"}
    before = value("hub_http_requests_total", **labels)
    before_timed = value("hub_http_request_duration_seconds_count", method="GET", route="/api/v1/orders/{pk}")
    before_api = value("hub_api_requests_total", tier="default")

    assert Client().get("/api/v1/orders/987654321", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404

    assert value("hub_http_requests_total", **labels) == before + 1
    assert value("hub_http_request_duration_seconds_count", method="GET", route="/api/v1/orders/{pk}") == (
        before_timed + 1
    )
    assert value("hub_api_requests_total", tier="default") == before_api + 1
    text = scrape().content.decode()
    assert "987654321" not in text
    assert 'route="/api/v1/orders/{pk}"' in text


@pytest.mark.django_db
def test_unknown_paths_and_methods_share_one_label_each():
    before = value("hub_http_requests_total", method="other", route="unmatched", status="404")
    Client().generic("BREW", "/no/such/page/12345")
    assert value("hub_http_requests_total", method="other", route="unmatched", status="404") == before + 1


@pytest.mark.django_db
def test_a_premium_key_is_counted_under_its_tier(tenant_a):
    from tenants.models import ApiKey

    _, raw = ApiKey.generate(tenant=tenant_a, name="premium", tier="premium")
    before = value("hub_api_requests_total", tier="premium")
    Client().get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert value("hub_api_requests_total", tier="premium") == before + 1


# --- Sync runs -----------------------------------------------------------------------------------


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(
        tenant_a,
        "shopify",
        credentials={"shop_domain": "m.myshopify.com", "access_token": "x", "client_secret": SHOPIFY_SECRET},
    )


@pytest.mark.django_db
def test_a_sync_run_moves_the_run_duration_and_record_counters(shop):
    runs = value("hub_sync_runs_total", platform="shopify", status="succeeded")
    timed = value("hub_sync_run_duration_seconds_count", platform="shopify")
    records = value("hub_records_synced_total", platform="shopify", stream="orders")

    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30)))

    assert run.status == SyncStatus.SUCCEEDED
    assert value("hub_sync_runs_total", platform="shopify", status="succeeded") == runs + 1
    assert value("hub_sync_run_duration_seconds_count", platform="shopify") == timed + 1
    assert value("hub_records_synced_total", platform="shopify", stream="orders") == records + 30

    # The same orders again change nothing: the run counts, no record does.
    run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(30)), full=True)
    assert value("hub_records_synced_total", platform="shopify", stream="orders") == records + 30


@pytest.mark.django_db
def test_a_failed_sync_run_is_counted_as_failed(shop):
    before = value("hub_sync_runs_total", platform="shopify", status="failed")
    run = run_sync(shop, ["orders"], connector=ListConnector(shop, pages_of(10), fail_at={0: RuntimeError("boom")}))
    assert run.status == SyncStatus.FAILED
    assert value("hub_sync_runs_total", platform="shopify", status="failed") == before + 1


# --- Webhooks ------------------------------------------------------------------------------------


def deliver(connection, *, webhook_id: str, secret: str = SHOPIFY_SECRET, topic: str = "orders/updated"):
    raw = json.dumps(ORDER).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return Client().post(
        f"/webhooks/shopify/{connection.uuid}/",
        data=raw,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic,
        HTTP_X_SHOPIFY_HMAC_SHA256=signature,
        HTTP_X_SHOPIFY_SHOP_DOMAIN="m.myshopify.com",
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
    )


@pytest.mark.django_db
def test_a_delivery_counts_as_received_and_its_repeat_as_duplicate(shop):
    received = value("hub_webhook_events_total", provider="shopify", outcome="received")
    duplicate = value("hub_webhook_events_total", provider="shopify", outcome="duplicate")

    assert deliver(shop, webhook_id="m-1").json()["status"] == "received"
    assert value("hub_webhook_events_total", provider="shopify", outcome="received") == received + 1
    assert value("hub_webhook_events_total", provider="shopify", outcome="duplicate") == duplicate

    assert deliver(shop, webhook_id="m-1").json()["status"] == "duplicate"
    assert value("hub_webhook_events_total", provider="shopify", outcome="received") == received + 1
    assert value("hub_webhook_events_total", provider="shopify", outcome="duplicate") == duplicate + 1
    # The route of a webhook address holds no connection uuid.
    assert value("hub_http_requests_total", method="POST", route="/webhooks/{provider}/{connection_uuid}", status="200")


@pytest.mark.django_db
def test_a_delivery_with_a_bad_signature_counts_as_rejected(shop):
    before = value("hub_webhook_events_total", provider="shopify", outcome="rejected")
    assert deliver(shop, webhook_id="m-2", secret="not-the-secret").status_code == 401
    assert value("hub_webhook_events_total", provider="shopify", outcome="rejected") == before + 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("handler", "outcome", "status"),
    [
        (lambda event: "stored", "processed", EventStatus.PROCESSED),
        (lambda event: 1 / 0, "failed", EventStatus.RETRYING),
    ],
)
def test_processing_an_event_counts_its_outcome(shop, monkeypatch, handler, outcome, status):
    monkeypatch.setattr(processing, "handlers", lambda: {("shopify", "orders/updated"): handler})
    deliver(shop, webhook_id=f"m-{outcome}")
    event = WebhookEvent.objects.get(event_id=f"m-{outcome}")
    before = value("hub_webhook_events_total", provider="shopify", outcome=outcome)

    processing.process(event.pk)

    assert WebhookEvent.objects.get(pk=event.pk).status == status
    assert value("hub_webhook_events_total", provider="shopify", outcome=outcome) == before + 1


# --- Outbound deliveries -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(status=200, body="{}"), "delivered"),
        (Answer(status=500, error="The target answered 500."), "retrying"),
        (Answer(status=410, error="Gone"), "gone"),
        (Answer(error="Refused: a private address", refused=True), "failed"),
    ],
)
def test_an_outbound_attempt_counts_its_outcome(tenant_a, monkeypatch, answer, outcome):
    hook = HookSubscription.objects.create(
        tenant=tenant_a, target_url="https://hooks.example.com/x", event="order.created", secret=signing.new_secret()
    )
    item = HookDelivery.objects.create(
        tenant=tenant_a, subscription=hook, event="order.created", webhook_id="msg_metrics_1", payload={"a": 1}
    )
    monkeypatch.setattr(delivery.targets, "post", lambda url, body, headers: answer)
    before = value("hub_outbound_deliveries_total", outcome=outcome)

    delivery.deliver(item.pk, 0)

    assert value("hub_outbound_deliveries_total", outcome=outcome) == before + 1


# --- Database gauges -----------------------------------------------------------------------------


@pytest.fixture
def busy_database(tenant_a, tenant_b, make_connection):
    """Rows in every state the gauges count, and some they must leave out."""
    shop = make_connection(tenant_a, "shopify")
    woo = make_connection(tenant_b, "woocommerce")
    now = timezone.now()
    for connection, status, count in [
        (shop, SyncStatus.SUCCEEDED, 3),
        (shop, SyncStatus.FAILED, 2),
        (woo, SyncStatus.SUCCEEDED, 1),
        (woo, SyncStatus.RUNNING, 1),
    ]:
        for _ in range(count):
            SyncRun.objects.create(tenant=connection.tenant, connection=connection, status=status)
    # Older than a day: not counted.
    SyncRun.objects.create(
        tenant=shop.tenant, connection=shop, status=SyncStatus.FAILED, queued_at=now - timedelta(days=2)
    )

    n = iter(range(1000))
    for connection, provider, status, count in [
        (shop, "shopify", EventStatus.RECEIVED, 4),
        (shop, "shopify", EventStatus.PARKED, 2),
        (woo, "woocommerce", EventStatus.RETRYING, 3),
        (shop, "shopify", EventStatus.PROCESSED, 5),  # finished: not counted
        (shop, "shopify", EventStatus.REJECTED, 1),  # finished: not counted
    ]:
        for _ in range(count):
            WebhookEvent.objects.create(
                tenant=connection.tenant,
                connection=connection,
                provider=provider,
                status=status,
                event_id=f"e{next(n)}",
            )

    hook = HookSubscription.objects.create(
        tenant=tenant_a, target_url="https://hooks.example.com/x", event="order.created", secret=signing.new_secret()
    )
    for status, count in [(DeliveryStatus.PENDING, 2), (DeliveryStatus.RETRYING, 1), (DeliveryStatus.SUCCEEDED, 4)]:
        for _ in range(count):
            HookDelivery.objects.create(
                tenant=tenant_a,
                subscription=hook,
                event="order.created",
                webhook_id=f"msg_{next(n)}",
                payload={},
                status=status,
            )

    OrmQ.objects.all().delete()
    for i in range(3):
        OrmQ.objects.create(key="hub", payload=f"task-{i}", lock=now - timedelta(seconds=1))
    OrmQ.objects.create(key="hub", payload="held by a worker", lock=now + timedelta(minutes=30))
    for i in range(2):
        Task.objects.create(
            id=f"failed{i}", name=f"failed-{i}", func="x.y", started=now, stopped=now, success=False, attempt_count=1
        )
    Task.objects.create(id="ok0", name="ok-0", func="x.y", started=now, stopped=now, success=True, attempt_count=1)


@pytest.mark.django_db
def test_the_database_gauges_equal_what_the_database_holds(settings, busy_database):
    settings.METRICS_TOKEN = TOKEN
    figures = families(scrape().content.decode())

    assert figures["hub_sync_runs_last_24h"] == {
        (("platform", "shopify"), ("status", "succeeded")): 3,
        (("platform", "shopify"), ("status", "failed")): 2,
        (("platform", "woocommerce"), ("status", "succeeded")): 1,
        (("platform", "woocommerce"), ("status", "running")): 1,
    }
    assert figures["hub_webhook_events_open"] == {
        (("provider", "shopify"), ("status", "received")): 4,
        (("provider", "shopify"), ("status", "parked")): 2,
        (("provider", "woocommerce"), ("status", "retrying")): 3,
    }
    assert figures["hub_outbound_deliveries_open"] == {(("status", "pending"),): 2, (("status", "retrying"),): 1}
    assert figures["hub_task_queue_length"] == {(): 3}
    assert figures["hub_task_failures"] == {(): 2}


@pytest.mark.django_db
def test_the_database_gauges_take_a_fixed_number_of_queries(busy_database, django_assert_num_queries):
    with django_assert_num_queries(5):
        metrics.DATABASE.read()


@pytest.mark.django_db
def test_the_database_gauges_are_kept_for_a_few_seconds(settings, tenant_a, make_connection, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    shop = make_connection(tenant_a, "shopify")
    SyncRun.objects.create(tenant=tenant_a, connection=shop, status=SyncStatus.FAILED)
    first = families(scrape().content.decode())["hub_sync_runs_last_24h"]

    SyncRun.objects.create(tenant=tenant_a, connection=shop, status=SyncStatus.FAILED)
    assert families(scrape().content.decode())["hub_sync_runs_last_24h"] == first

    monkeypatch.setattr(metrics, "DATABASE_CACHE_SECONDS", 0)
    assert families(scrape().content.decode())["hub_sync_runs_last_24h"] == {
        (("platform", "shopify"), ("status", "failed")): 2
    }


@pytest.mark.django_db
def test_a_database_error_reports_the_gauges_down_instead_of_failing_the_scrape(settings, monkeypatch):
    settings.METRICS_TOKEN = TOKEN

    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setattr(metrics.DATABASE, "read", broken)
    response = scrape()
    assert response.status_code == 200
    figures = families(response.content.decode())
    assert figures["hub_metrics_database_up"] == {(): 0}
    assert "hub_http_requests" in figures


# --- Multiprocess mode ---------------------------------------------------------------------------

_COUNT_ONE = """
import django
django.setup()
from config import metrics
metrics.webhook_events_stored("shopify", [(None, True)])
metrics.records_synced("shopify", "orders", 5)
"""

_RENDER = """
import django
django.setup()
from config import metrics
metrics.DATABASE.read = lambda: []
print(metrics.render().decode())
"""


def test_processes_sharing_a_multiprocess_folder_are_added_up_in_one_scrape(tmp_path):
    folder = tmp_path / "prometheus"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
    }

    def run(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    run(_COUNT_ONE)
    run(_COUNT_ONE)  # another process: a worker, another gunicorn worker
    figures = families(run(_RENDER))

    assert figures["hub_webhook_events"][(("outcome", "received"), ("provider", "shopify"))] == 2
    assert figures["hub_records_synced"][(("platform", "shopify"), ("stream", "orders"))] == 10
