"""The client dashboard's activity feed: JSON the overview's widget polls every few seconds."""

from __future__ import annotations

import zoneinfo

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import activity
from .models import Activity
from .views import tenant_required


@require_GET
@tenant_required
def feed(request: HttpRequest) -> JsonResponse:
    """`?after=<id>`: the client's own entries newer than that id (newest first), and `last_id`."""
    try:
        after = activity.parse_after(request.GET.get("after"))
    except ValueError:
        return JsonResponse({"error": "`after` must be an activity id."}, status=400)
    entries = Activity.objects.for_tenant(request.tenant)
    payload = activity.feed(entries, after, zoneinfo.ZoneInfo(request.tenant.time_zone))
    return JsonResponse(payload, headers={"Cache-Control": "no-store"})
