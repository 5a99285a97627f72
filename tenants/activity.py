"""The activity stream: what happened to a tenant's data and connections, in one table the
dashboards poll and the API lists.

`record()` is what the apps call where things happen (a sync run finishing, webhook events
processed or parked, a payment's outcome, a campaign sent). It costs one insert, made after the
caller's transaction commits, so a rolled-back change leaves no trace in the stream; a failure to
write the row is logged and never reaches the caller. Rows are kept for ACTIVITY_RETENTION_DAYS
and removed in batches by `manage.py cleanup_activity` (daily on the task worker)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import Activity, ActivityLevel

logger = logging.getLogger(__name__)

MESSAGE_MAX = Activity._meta.get_field("message").max_length
SUBJECT_MAX = Activity._meta.get_field("subject").max_length


def record(
    tenant_id: int,
    kind: str,
    message: str,
    *,
    level: str = ActivityLevel.INFO,
    connection_id: int | None = None,
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the tenant's activity stream once the current transaction commits (at
    once outside a transaction)."""
    row = Activity(
        tenant_id=tenant_id,
        kind=kind,
        level=level,
        message=_clip(message, MESSAGE_MAX),
        connection_id=connection_id,
        subject=_clip(subject, SUBJECT_MAX),
        data=data or {},
    )

    def insert() -> None:
        try:
            row.created_at = timezone.now()
            row.save(force_insert=True)
        except Exception:  # the stream is a record of work done, never a reason for it to fail
            logger.exception("Could not record %s activity for tenant %s", kind, tenant_id)

    transaction.on_commit(insert)


def _clip(text: str, limit: int) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- The feeds the dashboards poll ------------------------------------------------------------------

FEED_FIRST = 10  # entries a feed starts with
FEED_MAX = 50  # new entries one poll returns at most (the newest; `more` says some were left out)


def feed(entries: QuerySet, after: int | None, tz=None, *, with_tenant: bool = False) -> dict[str, Any]:
    """The newest entries of `entries` (already scoped) with an id above `after`, newest first, and
    the id to ask after next time. Without `after`, the latest FEED_FIRST."""
    if with_tenant:
        entries = entries.select_related("tenant")
    if after is None:
        rows = list(entries.order_by("-id")[:FEED_FIRST])
        more = False
    else:
        rows = list(entries.filter(id__gt=after).order_by("-id")[: FEED_MAX + 1])
        more = len(rows) > FEED_MAX
        rows = rows[:FEED_MAX]
    last_id = rows[0].pk if rows else (after or 0)
    return {"items": [as_dict(row, tz, with_tenant=with_tenant) for row in rows], "last_id": last_id, "more": more}


def as_dict(activity: Activity, tz=None, *, with_tenant: bool = False) -> dict[str, Any]:
    """An entry as the JSON feeds give it; `when` is the time in `tz` (default: the site's), in words."""
    when = timezone.localtime(activity.created_at, tz)
    item = {
        "id": activity.pk,
        "kind": activity.kind,
        "kind_label": activity.get_kind_display(),
        "level": activity.level,
        "message": activity.message,
        "connection_id": activity.connection_id,
        "subject": activity.subject,
        "created_at": activity.created_at.isoformat(),
        "when": f"{when.day} {when:%b %Y, %H:%M}",
    }
    if with_tenant:
        item["tenant"] = {"id": activity.tenant_id, "name": activity.tenant.name}
    return item


def parse_after(value: str | None) -> int | None:
    """The feed's `after` parameter: an entry id, or None when absent. Raises ValueError otherwise."""
    if value in (None, ""):
        return None
    after = int(value)
    if after < 0:
        raise ValueError(value)
    return after


# --- Retention -------------------------------------------------------------------------------------


def delete_in_batches(queryset: QuerySet, batch_size: int = 1000) -> tuple[int, int]:
    """Delete the queryset's rows `batch_size` at a time, each batch its own short statement, so a
    large backlog never holds a long lock. Returns (rows deleted, batches)."""
    model = queryset.model
    deleted = batches = 0
    while True:
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted, batches
        count, _ = model._default_manager.filter(pk__in=pks).delete()
        deleted += count
        batches += 1


def prune(days: int | None = None, batch_size: int = 1000, now=None) -> tuple[int, int]:
    """Delete activity older than `days` (default ACTIVITY_RETENTION_DAYS), in batches."""
    days = settings.ACTIVITY_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return delete_in_batches(Activity.objects.filter(created_at__lt=cutoff), batch_size)
