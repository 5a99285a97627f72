"""Usage analytics per API key: requests per day, per endpoint and by status.

Requests are not written to the database one by one. Each is one `incr` of a counter in the cache,
named by its minute, key, method, status and endpoint (the URL route, never the raw path). The
first request of a counter also appends the counter's name to a queue (a sequence number and one
cache entry per name). At most once a minute per process, and whenever someone opens a usage
page, the queue is drained into `ApiUsage` rows with one F() increment per row, for minutes that
ended at least a minute ago, so no request of theirs is still counting. A lock in the cache keeps
two processes from draining at once.

What can be lost: counts still in the cache when it is wiped (a Redis restart, or eviction under
memory pressure), at most the last two minutes when draining keeps up. Counters expire after
KEEP_SECONDS if nothing drains them at all.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from .counters import increment
from .models import ApiKey, ApiUsage

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 60
SETTLE_SECONDS = 60
KEEP_SECONDS = 2 * 86400
DRAIN_EVERY_SECONDS = 60
DRAIN_BATCH = 500
USAGE_DAYS = 30

_SEQ = "apiusage:seq"
_DONE = "apiusage:done"
_LOCK = "apiusage:lock"

# When this process last tried to drain the queue (monotonic clock).
_last_drain = time.monotonic()


def _counter(name: str) -> str:
    return f"apiusage:c:{name}"


def _entry(seq: int) -> str:
    return f"apiusage:q:{seq}"


@functools.lru_cache(maxsize=512)
def route_label(route: str) -> str:
    """A URL route as people read it: `api/v1/^orders/(?P<pk>[0-9]+)/?$` → `/api/v1/orders/{pk}`."""
    label = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    label = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", label)
    label = label.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    label = "/" + label.strip("/")
    return label[:200]


def endpoint_of(request: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    return route_label(match.route) if match.route else match.view_name


def record(api_key: ApiKey, endpoint: str, method: str, status_code: int, now: float | None = None) -> None:
    """Count one request: one cache round trip on Redis, two more for a counter's first request."""
    now = time.time() if now is None else now
    name = f"{int(now // BUCKET_SECONDS)}|{api_key.tenant_id}|{api_key.pk}|{method}|{status_code}|{endpoint}"
    _, created = increment(_counter(name), KEEP_SECONDS)
    if created:
        seq, _ = increment(_SEQ, None)
        cache.set(_entry(seq), name, KEEP_SECONDS)


def record_response(request: Any, response: Any) -> None:
    """Count an API response if a tenant's key made the request; drain now and then. Never fails
    the response it counts."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        return
    endpoint = endpoint_of(request)
    if endpoint is None:
        return
    global _last_drain
    try:
        record(api_key, endpoint, request.method, response.status_code)
        if time.monotonic() - _last_drain >= DRAIN_EVERY_SECONDS:
            _last_drain = time.monotonic()
            drain()
    except Exception:
        logger.exception("Could not record API usage")


def drain(*, everything: bool = False, now: float | None = None) -> int:
    """Add the counts of settled minutes to `ApiUsage` (of every minute with `everything`, which
    only tests use: a request counting in the current minute meanwhile could be lost). Returns how
    many rows were written to."""
    if not cache.add(_LOCK, 1, 300):
        return 0
    try:
        return _drain(everything, time.time() if now is None else now)
    finally:
        cache.delete(_LOCK)


def _drain(everything: bool, now: float) -> int:
    open_from = None if everything else int((now - SETTLE_SECONDS) // BUCKET_SECONDS)
    done, last = cache.get(_DONE) or 0, cache.get(_SEQ) or 0
    if done > last:  # the sequence was lost with the cache: start again from its beginning
        done = 0
    totals: dict[tuple, int] = defaultdict(int)
    finished, drained_keys = done, []
    for start in range(done + 1, last + 1, DRAIN_BATCH):
        seqs = range(start, min(start + DRAIN_BATCH, last + 1))
        names = cache.get_many([_entry(seq) for seq in seqs])
        counts = cache.get_many([_counter(name) for name in names.values()]) if names else {}
        for seq in seqs:
            name = names.get(_entry(seq))
            if name is None:
                # Expired, or its request is between taking the number and writing the name. Passed
                # over only once a later entry is drained: that one was numbered after it, in a
                # minute long settled, so this one's name would have been written long ago.
                continue
            bucket, tenant_id, key_id, method, status_code, endpoint = name.split("|", 5)
            if open_from is not None and int(bucket) >= open_from:
                break
            day = datetime.fromtimestamp(int(bucket) * BUCKET_SECONDS, tz=UTC).date()
            totals[(int(tenant_id), int(key_id), day, endpoint, method, int(status_code))] += int(
                counts.get(_counter(name)) or 0
            )
            drained_keys += [_entry(seq), _counter(name)]
            finished = seq
        else:
            continue
        break
    if finished == done:
        return 0
    _write(totals)
    cache.set(_DONE, finished, None)
    if drained_keys:
        cache.delete_many(drained_keys)
    return len(totals)


@transaction.atomic
def _write(totals: dict[tuple, int]) -> None:
    # All or nothing: the queue is marked drained only after this commits, so a failure part way
    # would otherwise count the written rows twice.
    existing = set(ApiKey.objects.filter(pk__in={key_id for _, key_id, *_ in totals}).values_list("pk", flat=True))
    for (tenant_id, key_id, day, endpoint, method, status_code), count in totals.items():
        if not count or key_id not in existing:
            continue
        row = {"api_key_id": key_id, "day": day, "endpoint": endpoint, "method": method, "status_code": status_code}
        if ApiUsage.objects.filter(**row).update(count=F("count") + count):
            continue
        try:
            with transaction.atomic():
                ApiUsage.objects.create(tenant_id=tenant_id, count=count, **row)
        except IntegrityError:  # another process created the row first
            ApiUsage.objects.filter(**row).update(count=F("count") + count)


# --- Reading ----------------------------------------------------------------------------------


def usage_window(days: int = USAGE_DAYS, today: date | None = None) -> tuple[date, date]:
    """The first and last day (UTC) of the last `days` days."""
    today = today or timezone.now().astimezone(UTC).date()
    return today - timedelta(days=days - 1), today


def _rate(requests: int, errors: int) -> float | None:
    return round(100 * errors / requests, 1) if requests else None


ERRORS = Q(status_code__gte=400)


def key_summary(api_key: ApiKey, days: int = USAGE_DAYS, today: date | None = None) -> dict[str, Any]:
    """One key's last `days` days (UTC): per day (every day, zeros included), per endpoint and in
    total, each with its error count and rate. Two queries."""
    since, today = usage_window(days, today)
    rows = ApiUsage.objects.for_tenant(api_key.tenant_id).filter(api_key=api_key, day__gte=since, day__lte=today)
    figures = {"requests": Sum("count"), "errors": Sum("count", filter=ERRORS)}
    by_day = {row["day"]: row for row in rows.order_by().values("day").annotate(**figures)}
    per_day = []
    for n in range(days):
        day = since + timedelta(days=n)
        row = by_day.get(day, {})
        requests, errors = row.get("requests") or 0, row.get("errors") or 0
        per_day.append({"day": day, "requests": requests, "errors": errors, "error_rate": _rate(requests, errors)})
    endpoints = [
        {
            "method": row["method"],
            "endpoint": row["endpoint"],
            "requests": row["requests"],
            "errors": row["errors"] or 0,
            "error_rate": _rate(row["requests"], row["errors"] or 0),
        }
        for row in rows.order_by().values("method", "endpoint").annotate(**figures).order_by("-requests", "endpoint")
    ]
    requests = sum(d["requests"] for d in per_day)
    errors = sum(d["errors"] for d in per_day)
    peak = max((d["requests"] for d in per_day), default=0)
    for d in per_day:
        d["share"] = round(100 * d["requests"] / peak) if peak else 0
    return {
        "since": since,
        "until": today,
        "days": per_day,
        "endpoints": endpoints,
        "requests": requests,
        "errors": errors,
        "error_rate": _rate(requests, errors),
    }


def totals_by_key(tenant, keys, days: int = USAGE_DAYS, today: date | None = None) -> dict[int, dict[str, Any]]:
    """Requests, errors and error rate of each of a tenant's keys over the last `days` days."""
    return totals(ApiUsage.objects.for_tenant(tenant).filter(api_key__in=keys), days, today)


def totals(rows, days: int = USAGE_DAYS, today: date | None = None) -> dict[int, dict[str, Any]]:
    """Per key of the `ApiUsage` rows given: requests, errors and error rate over the last `days` days."""
    since, today = usage_window(days, today)
    rows = (
        rows.filter(day__gte=since, day__lte=today)
        .order_by()
        .values("api_key")
        .annotate(requests=Sum("count"), errors=Sum("count", filter=ERRORS))
    )
    return {
        row["api_key"]: {
            "requests": row["requests"],
            "errors": row["errors"] or 0,
            "error_rate": _rate(row["requests"], row["errors"] or 0),
        }
        for row in rows
    }
