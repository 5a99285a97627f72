"""What people do to connections (admin, API, commands all call these): test, sync, stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, OuterRef, Q, Subquery
from django.dispatch import Signal
from django.utils import timezone

from tenants import audit

from .connectors import CONNECTORS, get_connector
from .connectors.base import CheckResult
from .errors import IntegrationError
from .models import Connection, ConnectionStatus, SyncRun, SyncStatus
from .tasks import note_failure, note_success

# Sent after a connection test is recorded (kwargs: connection, result), e.g. so webhooks can
# register their subscriptions once credentials are known to work.
connection_tested = Signal()


def test_connection(connection: Connection, *, request=None, actor=None) -> CheckResult:
    """Run the connector's check, record the result on the connection and in the audit log."""
    if connection.platform not in CONNECTORS:
        # Nothing to test (manual uploads, or a platform whose connector is still to come): say
        # so without marking the connection failing.
        return CheckResult(
            ok=False,
            message=f"{connection.get_platform_display()} connections cannot be tested yet.",
            error_code="not_testable",
        )
    try:
        result = get_connector(connection).check()
    except IntegrationError as error:  # e.g. a missing credential
        result = CheckResult.failure(error)
    if result.ok:
        status = ConnectionStatus.CONNECTED
    elif result.error_code == "auth":
        status = ConnectionStatus.NEEDS_REAUTH
    else:
        status = ConnectionStatus.FAILING
    if connection.status == ConnectionStatus.DISABLED:
        status = ConnectionStatus.DISABLED
    connection.status = status
    connection.last_tested_at = timezone.now()
    connection.last_test_result = result.as_dict()
    connection.last_error = "" if result.ok else str(result.message + (f" ({result.hint})" if result.hint else ""))
    connection.save(update_fields=["status", "last_tested_at", "last_test_result", "last_error", "updated_at"])
    # A test counts like a sync run for the failure streak; a passing one closes the circuit breaker.
    if result.ok:
        note_success(connection)
    else:
        note_failure(connection, connection.last_error)
    audit.record(
        "connection.tested",
        request=request,
        actor=actor,
        tenant=connection.tenant,
        target=connection,
        ok=result.ok,
        error_code=result.error_code,
    )
    connection_tested.send(sender=Connection, connection=connection, result=result)
    return result


def request_sync(
    connection: Connection,
    streams: list[str] | None = None,
    *,
    full: bool = False,
    trigger: str,
    request=None,
    actor=None,
) -> SyncRun:
    """Queue a sync run on the task cluster now (the admin's "Sync now", the API, webhooks)."""
    from .tasks import enqueue_sync

    run = enqueue_sync(connection, streams, full=full, trigger=trigger)
    audit.record(
        "sync.requested",
        request=request,
        actor=actor,
        tenant=connection.tenant,
        target=connection,
        run=run.pk,
        streams=run.streams,
        full=full,
        trigger=trigger,
    )
    return run


def connection_stats(connections) -> dict[int, dict[str, Any]]:
    """Per-connection sync figures in one query: total, successful, failed, last and average
    duration, success rate, running now."""
    finished = Q(status__in=[SyncStatus.SUCCEEDED, SyncStatus.FAILED])
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        SyncRun.objects.filter(connection__in=connections)
        .values("connection_id")
        .annotate(
            total=Count("id", filter=finished),
            successful=Count("id", filter=Q(status=SyncStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=SyncStatus.FAILED)),
            running=Count("id", filter=Q(status=SyncStatus.RUNNING)),
            average=Avg(duration, filter=Q(status=SyncStatus.SUCCEEDED)),
            last_finished=Max("finished_at", filter=finished),
        )
    )
    stats = {}
    for row in rows:
        total = row["total"]
        stats[row["connection_id"]] = {
            "total": total,
            "successful": row["successful"],
            "failed": row["failed"],
            "running": row["running"],
            "success_rate": round(100 * row["successful"] / total, 1) if total else None,
            "average_duration": _seconds(row["average"]),
            "last_finished_at": row["last_finished"],
        }
    latest = SyncRun.objects.filter(connection=OuterRef("pk"), finished_at__isnull=False).order_by("-finished_at")
    last_runs = Connection.objects.filter(pk__in=[c.pk for c in connections]).annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_duration=Subquery(latest.annotate(d=duration).values("d")[:1], output_field=DurationField()),
    )
    for row in last_runs.values("pk", "last_status", "last_duration"):
        if row["last_status"] is None:
            continue
        entry = stats.setdefault(row["pk"], {})
        entry["last_status"] = row["last_status"]
        entry["last_duration"] = _seconds(row["last_duration"])
    return stats


def _seconds(value: timedelta | None) -> float | None:
    return round(value.total_seconds(), 2) if value is not None else None
