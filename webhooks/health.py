"""Per-connection webhook delivery health, for the admin: what arrived in the last day and what
became of it, which topics are registered, and what reconciliation found that webhooks missed."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from integrations.models import Connection, SyncRun

from .models import EventStatus, WebhookEvent, WebhookSubscription

WINDOW = timedelta(hours=24)
RECONCILIATION_WINDOW = timedelta(days=7)


def delivery_health(connection_ids: list[int] | None = None) -> list[dict]:
    """One row per connection that received events in the last day or has subscriptions."""
    since = timezone.now() - WINDOW
    events = WebhookEvent.objects.filter(received_at__gte=since)
    subscriptions = WebhookSubscription.objects.all()
    if connection_ids is not None:
        events = events.filter(connection_id__in=connection_ids)
        subscriptions = subscriptions.filter(connection_id__in=connection_ids)
    counts = {
        row["connection_id"]: row
        for row in events.values("connection_id").annotate(
            received=Count("pk", filter=Q(signature_valid=True)),
            processed=Count("pk", filter=Q(status=EventStatus.PROCESSED)),
            waiting=Count("pk", filter=Q(status__in=[EventStatus.RECEIVED, EventStatus.PROCESSING])),
            retrying=Count("pk", filter=Q(status=EventStatus.RETRYING)),
            parked=Count("pk", filter=Q(status=EventStatus.PARKED)),
            rejected=Count("pk", filter=Q(status=EventStatus.REJECTED)),
            duplicates=Sum("duplicates"),
            last_received=Max("received_at"),
        )
    }
    topics: dict[int, list[str]] = defaultdict(list)
    for connection_id, topic in subscriptions.values_list("connection_id", "topic"):
        topics[connection_id].append(topic)
    missed = dict(
        SyncRun.objects.filter(
            connection_id__in=set(counts) | set(topics), finished_at__gte=timezone.now() - RECONCILIATION_WINDOW
        )
        .values("connection_id")
        .annotate(missed=Sum("missed_by_webhooks"))
        .values_list("connection_id", "missed")
    )
    connections = Connection.objects.filter(pk__in=set(counts) | set(topics)).select_related("tenant")
    rows = []
    for connection in connections:
        row = counts.get(connection.pk, {})
        rows.append(
            {
                "connection": connection,
                "topics": sorted(topics.get(connection.pk, [])),
                "received": row.get("received", 0),
                "processed": row.get("processed", 0),
                "waiting": row.get("waiting", 0),
                "retrying": row.get("retrying", 0),
                "parked": row.get("parked", 0),
                "rejected": row.get("rejected", 0),
                "duplicates": row.get("duplicates") or 0,
                "last_received": row.get("last_received"),
                "missed_by_webhooks": missed.get(connection.pk),
            }
        )
    return rows
