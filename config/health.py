"""GET /health/: database, cache and task cluster, as JSON, 200 when all are up and 503 otherwise."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .tasks import HEARTBEAT_FUNC


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def check_cache() -> dict:
    key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, 10)
    ok = cache.get(key) == value
    cache.delete(key)
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {"ok": ok, "backend": backend}


def check_task_cluster() -> dict:
    from django_q.models import OrmQ, Success

    last = Success.objects.filter(func=HEARTBEAT_FUNC).order_by("-stopped").values_list("stopped", flat=True).first()
    max_age = timedelta(seconds=settings.HEALTH_HEARTBEAT_MAX_AGE)
    ok = last is not None and timezone.now() - last <= max_age
    result = {"ok": ok, "last_heartbeat": last.isoformat() if last else None, "queued": OrmQ.objects.count()}
    if not ok:
        result["error"] = "no worker has run the heartbeat task recently: is `manage.py qcluster` running?"
    return result


CHECKS = {"database": check_database, "cache": check_cache, "task_cluster": check_task_cluster}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # a health check reports failures, it never raises them
            results[name] = {"ok": False, "error": type(exc).__name__}
    healthy = all(r["ok"] for r in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
