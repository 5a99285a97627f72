"""Prometheus metrics: every metric object, the hooks that move them, and `GET /metrics`.

Two kinds of figure (docs/operations.md, *Metrics*):

- **Counters and histograms** move where things happen, in whichever process they happen in: web
  requests, webhook receipt, sync runs, webhook processing, outbound deliveries. With
  `PROMETHEUS_MULTIPROC_DIR` set (before the process starts), every process writes its values to
  files there and a scrape adds up all the processes of that machine; without it, a scrape sees
  only the process that answers it.
- **Database gauges** are counted in the database at scrape time (`DatabaseMetrics`, a handful of
  aggregate queries, kept for `DATABASE_CACHE_SECONDS`): exact whichever machine answers, so they
  are the figures to alert on (sync runs by status, webhook and delivery backlogs, the task queue).

The hooks are plain functions called from one line each where the data changes; they only touch
memory (an mmap'd file in multiprocess mode), never the network or the database. Models are
imported inside functions: apps import this module, some of them while Django is still loading.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client writes each process's values there and fails if the folder is missing.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

# --- Counters and histograms (per process, or per machine in multiprocess mode) ------------------

HTTP_REQUESTS = Counter(
    "hub_http_requests_total", "HTTP responses by method, URL route and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "hub_http_request_duration_seconds", "Time to build an HTTP response, by method and URL route.", ["method", "route"]
)
SYNC_RUNS = Counter("hub_sync_runs_total", "Sync runs finished, by platform and status.", ["platform", "status"])
SYNC_DURATION = Histogram(
    "hub_sync_run_duration_seconds",
    "Duration of finished sync runs, by platform.",
    ["platform"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800),
)
RECORDS_SYNCED = Counter(
    "hub_records_synced_total", "Records a sync created or changed, by platform and stream.", ["platform", "stream"]
)
WEBHOOK_EVENTS = Counter(
    "hub_webhook_events_total",
    "Inbound webhook events by provider and outcome: at receipt received, duplicate or rejected; "
    "after processing processed, ignored, failed (will retry) or parked.",
    ["provider", "outcome"],
)
OUTBOUND_DELIVERIES = Counter(
    "hub_outbound_deliveries_total",
    "Attempts at outbound hook deliveries by outcome: delivered, retrying, failed or gone (410).",
    ["outcome"],
)
API_REQUESTS = Counter("hub_api_requests_total", "Public API requests made with a key, by the key's tier.", ["tier"])

# Bounded label values are created up front, so their series exist (at 0) before the first event.
for _outcome in ("delivered", "retrying", "failed", "gone"):
    OUTBOUND_DELIVERIES.labels(_outcome)
for _tier in ("default", "premium", "admin"):
    API_REQUESTS.labels(_tier)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- Hooks ----------------------------------------------------------------------------------------


def http_response(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    """One response (`config.middleware.MetricsMiddleware`)."""
    from tenants.models import AdminApiKey, ApiKey

    method = request.method if request.method in _METHODS else "other"  # any word may arrive here
    route = route_of(request)
    HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
    # DRF puts the key it authenticated on the Django request too.
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        API_REQUESTS.labels(auth.tier).inc()
    elif isinstance(auth, AdminApiKey):
        API_REQUESTS.labels("admin").inc()


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered, as `/api/v1/orders/{pk}`: ids never become label values."""
    from tenants.usage import route_label

    match = getattr(request, "resolver_match", None)
    if match is None:
        return "static" if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")) else "unmatched"
    return route_label(match.route) if match.route else match.view_name or "unnamed"


def sync_run_finished(run: Any) -> None:
    """A sync run ended, whatever its status (`integrations.sync`)."""
    platform = run.connection.platform
    SYNC_RUNS.labels(platform, run.status).inc()
    if run.started_at and run.finished_at:
        SYNC_DURATION.labels(platform).observe((run.finished_at - run.started_at).total_seconds())


def records_synced(platform: str, stream: str, count: int) -> None:
    """A sync page committed: `count` records created or changed."""
    if count:
        RECORDS_SYNCED.labels(platform, stream).inc(count)


def webhook_events_stored(provider: str, stored: Iterable[tuple[Any, bool]]) -> None:
    """A verified delivery was stored (`webhooks.inbox.store`): (event, created) pairs, one per event."""
    outcomes = [created for _, created in stored]
    received = sum(outcomes)
    if received:
        WEBHOOK_EVENTS.labels(provider, "received").inc(received)
    if len(outcomes) > received:
        WEBHOOK_EVENTS.labels(provider, "duplicate").inc(len(outcomes) - received)


def _webhook_event_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # Receipt stores verified events with its own INSERT, which sends no signal; the only events
    # created through the ORM are refused deliveries (`webhooks.inbox.store_rejected`).
    if created and instance.status == "rejected":
        WEBHOOK_EVENTS.labels(instance.provider, "rejected").inc()


post_save.connect(_webhook_event_saved, sender="webhooks.WebhookEvent", dispatch_uid="metrics-webhook-rejected")

_EVENT_OUTCOMES = {"processed": "processed", "ignored": "ignored", "retrying": "failed", "parked": "parked"}


def webhook_event_finished(provider: str, status: str) -> None:
    """A worker finished with an event (`webhooks.processing`), with its new status."""
    outcome = _EVENT_OUTCOMES.get(status)
    if outcome:
        WEBHOOK_EVENTS.labels(provider, outcome).inc()


def outbound_delivery_finished(status: str, response_code: int | None) -> None:
    """An attempt at an outbound hook delivery ended (`webhooks.outbound.delivery`). A delivery
    cancelled before its attempt (its subscription was switched off) is not an attempt."""
    if status == "succeeded":
        OUTBOUND_DELIVERIES.labels("delivered").inc()
    elif status == "retrying":
        OUTBOUND_DELIVERIES.labels("retrying").inc()
    elif status == "failed":
        OUTBOUND_DELIVERIES.labels("gone" if response_code == 410 else "failed").inc()


# --- Database gauges, counted at scrape time ------------------------------------------------------

DATABASE_CACHE_SECONDS = 10.0
SYNC_WINDOW = timedelta(hours=24)
# Only the states that drain; the finished ones grow for ever and are the counters' business.
OPEN_EVENT_STATUSES = ("received", "processing", "retrying", "parked")
OPEN_DELIVERY_STATUSES = ("pending", "retrying")


class DatabaseMetrics:
    """Gauges read from the database, the same whichever process or machine is scraped. Six
    aggregate queries, at most once per DATABASE_CACHE_SECONDS per process."""

    def __init__(self) -> None:
        self._families: list[GaugeMetricFamily] | None = None
        self._read_at = 0.0

    def forget(self) -> None:
        self._families = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._families is None or time.monotonic() - self._read_at >= DATABASE_CACHE_SECONDS:
            try:
                self._families = self.read()
                self._read_at = time.monotonic()
            except Exception:  # a scrape reports the database down, it never fails
                logger.exception("Could not read the database metrics")
                up = GaugeMetricFamily("hub_metrics_database_up", "Whether the database gauges could be read.")
                up.add_metric([], 0)
                return iter([up])
        return iter(self._families)

    def read(self) -> list[GaugeMetricFamily]:
        from django.db.models import Count
        from django_q.models import Failure

        from integrations.models import SyncRun
        from webhooks.models import HookDelivery, WebhookEvent

        up = GaugeMetricFamily("hub_metrics_database_up", "Whether the database gauges could be read.")
        up.add_metric([], 1)

        runs = GaugeMetricFamily(
            "hub_sync_runs_last_24h",
            "Sync runs queued in the last 24 hours, by platform and status.",
            labels=["platform", "status"],
        )
        since = timezone.now() - SYNC_WINDOW
        for row in (
            SyncRun.objects.filter(queued_at__gte=since)
            .order_by()
            .values("connection__platform", "status")
            .annotate(n=Count("id"))
        ):
            runs.add_metric([row["connection__platform"], row["status"]], row["n"])

        events = GaugeMetricFamily(
            "hub_webhook_events_open",
            "Inbound webhook events not finished, by provider and status (received, processing, retrying, parked).",
            labels=["provider", "status"],
        )
        for row in (
            WebhookEvent.objects.filter(status__in=OPEN_EVENT_STATUSES)
            .order_by()
            .values("provider", "status")
            .annotate(n=Count("id"))
        ):
            events.add_metric([row["provider"], row["status"]], row["n"])

        deliveries = GaugeMetricFamily(
            "hub_outbound_deliveries_open",
            "Outbound hook deliveries still to send, by status (pending, retrying).",
            labels=["status"],
        )
        open_deliveries = dict(
            HookDelivery.objects.filter(status__in=OPEN_DELIVERY_STATUSES)
            .order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in OPEN_DELIVERY_STATUSES:
            deliveries.add_metric([status], open_deliveries.get(status, 0))

        queue = GaugeMetricFamily("hub_task_queue_length", "Tasks waiting in the django-q2 queue for a worker.")
        queue.add_metric([], task_queue_length())
        failures = GaugeMetricFamily(
            "hub_task_failures", "Failed tasks django-q2 keeps (at most Q_CLUSTER save_limit per function)."
        )
        failures.add_metric([], Failure.objects.count())
        return [up, runs, events, deliveries, queue, failures]


def task_queue_length() -> int:
    """Tasks waiting for a worker: with the ORM broker (what settings configure), queue rows not
    held by a worker; with any other broker, its own count."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.models import OrmQ

    if Conf.ORM:
        # The ORM broker's own queue_size(), without its close_old_connections() mid-request.
        return OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME, lock__lte=timezone.now()).count()
    return get_broker().queue_size() or 0


DATABASE = DatabaseMetrics()


# --- The endpoint -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def scrape_allowed(request: HttpRequest) -> bool:
    """The request carries `Authorization: Bearer <METRICS_TOKEN>`, or comes from an address in
    METRICS_ALLOWED_IPS. With neither set, nobody may scrape."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    networks = _networks(tuple(settings.METRICS_ALLOWED_IPS))
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


def render() -> bytes:
    """The exposition text: this process's metrics (or, in multiprocess mode, every process's on
    this machine) followed by the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(DATABASE)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. Anyone not allowed gets the 404 of an address that does not exist."""
    if not scrape_allowed(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
