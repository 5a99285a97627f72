"""Task-cluster work for integrations. Tasks take ids, are idempotent, and record their outcome on
the sync run, never only in the task result."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from tenants import activity
from tenants.models import ActivityKind, ActivityLevel

from .models import Connection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger

logger = logging.getLogger(__name__)


def enqueue_sync(
    connection: Connection, streams: list[str] | None = None, *, full: bool = False, trigger: str = SyncTrigger.MANUAL
) -> SyncRun:
    from .sync import create_run

    run = create_run(connection, streams, full=full, trigger=trigger)
    # Enqueue once the run row is committed, so the worker always finds it.
    transaction.on_commit(lambda: async_task("integrations.tasks.sync_run", run.pk, task_name=f"sync-run-{run.pk}"))
    return run


def sync_run(run_id: int) -> str:
    """Run a queued sync. Delivered again if a worker dies: a run that already finished is left alone;
    one that was running resumes from its committed cursors."""
    from .sync import run_sync

    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.status in {SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.SKIPPED}:
        return "nothing to do"
    run = run_sync(run.connection, run.streams or None, full=run.full, trigger=run.trigger, run=run)
    return run.status


def scheduled_sync(connection_id: int) -> str:
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection disabled or gone"
    if connection.is_paused:
        return skip_paused(connection)
    from .sync import create_run, run_sync

    run = run_sync(connection, trigger=SyncTrigger.SCHEDULE, run=create_run(connection, trigger=SyncTrigger.SCHEDULE))
    return run.status


def schedule_name(connection: Connection) -> str:
    return f"sync-connection-{connection.pk}"


# Connections that sync on their schedule: proven to work (a failing one keeps trying, as its
# trouble may pass). Untested ones wait for a successful test; ones that need reauthorisation
# would only fail again.
SCHEDULED_STATUSES = {ConnectionStatus.CONNECTED, ConnectionStatus.FAILING}


def update_schedule(connection: Connection) -> None:
    """Keep the connection's django-q2 schedule in step with its frequency, enabled flag and status."""
    name = schedule_name(connection)
    seconds = connection.frequency_seconds
    # A connection with nothing to sync (a payment gateway) is never scheduled, however it tests.
    nothing_to_sync = not connection.spec.streams
    if (
        not connection.enabled
        or seconds is None
        or connection.is_demo
        or nothing_to_sync
        or connection.status not in SCHEDULED_STATUSES
    ):
        Schedule.objects.filter(name=name).delete()
        return
    minutes = max(1, seconds // 60)
    existing = Schedule.objects.filter(name=name).first()
    if existing and existing.minutes == minutes and existing.args == repr((connection.pk,)):
        next_run = _held_back(existing.next_run, connection, minutes)
        if next_run != existing.next_run:
            Schedule.objects.filter(pk=existing.pk).update(next_run=next_run)
        return
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": "integrations.tasks.scheduled_sync",
            "args": repr((connection.pk,)),
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
            "next_run": _held_back(timezone.now() + timedelta(minutes=minutes), connection, minutes),
        },
    )


def _held_back(next_run: datetime | None, connection: Connection, minutes: int) -> datetime:
    """The schedule's next run, moved to the end of the connection's pause while the circuit
    breaker is open, and back to at most one period away once it is not."""
    regular = timezone.now() + timedelta(minutes=minutes)
    if connection.is_paused:
        return max(next_run or regular, connection.paused_until)
    return min(next_run, regular) if next_run else regular


def next_sync_times(connections) -> dict[int, object]:
    """When each connection's schedule runs next (one query), for dashboards."""
    names = {schedule_name(c): c.pk for c in connections}
    return {
        names[name]: next_run
        for name, next_run in Schedule.objects.filter(name__in=list(names)).values_list("name", "next_run")
    }


# --- Circuit breaker -------------------------------------------------------------------------------
# A connection whose syncs and tests keep failing is not hammered on its schedule: from
# CIRCUIT_BREAKER_FAILURES failures in a row, scheduled syncs wait until `paused_until`, 15 minutes
# at first and twice as long after each further failure, at most a day. Its django-q schedule is
# moved to the end of the pause, so nothing even starts meanwhile; a scheduled sync that starts
# anyway (a race with the scheduler) is skipped with the reason on its run. Manual syncs and tests
# still run, and the first success closes the breaker.

PAUSE_FIRST = timedelta(minutes=15)
PAUSE_MAX = timedelta(hours=24)
# Failed runs that say nothing about the connection: another run held it, the request was wrong, the
# hub's own database went away, or the run's worker died (its successor marks it abandoned).
NOT_THE_CONNECTION = {"busy", "config", "database", "abandoned"}


def pause_for(failures: int) -> timedelta:
    beyond = max(0, failures - settings.CIRCUIT_BREAKER_FAILURES)
    return min(PAUSE_MAX, PAUSE_FIRST * 2 ** min(beyond, 10))


def note_failure(connection: Connection, reason: str) -> None:
    """A sync run or test of the connection failed: count it, say so in the activity stream once
    ALERT_FAILURES_IN_A_ROW is reached, and open (or hold open, longer) the circuit breaker from
    CIRCUIT_BREAKER_FAILURES on."""
    reason = " ".join(str(reason).split())[:300] or "no reason given"
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        failures = Connection.objects.values_list("consecutive_failures", flat=True).get(pk=connection.pk)
        if failures == 1:
            Connection.objects.filter(pk=connection.pk).update(failing_since=timezone.now())
        paused_until = None
        if failures >= settings.CIRCUIT_BREAKER_FAILURES:
            paused_until = timezone.now() + pause_for(failures)
            why = f"{failures} syncs or tests failed in a row; the last: {reason}"
            Connection.objects.filter(pk=connection.pk).update(paused_until=paused_until, pause_reason=why[:500])
    connection.consecutive_failures = failures
    name = connection.name
    if failures == settings.ALERT_FAILURES_IN_A_ROW:
        activity.record(
            connection.tenant_id,
            ActivityKind.CONNECTION_FAILING,
            f"“{name}” failed {failures} times in a row: {reason}",
            level=ActivityLevel.ERROR,
            connection_id=connection.pk,
            subject=f"connection:{connection.pk}",
        )
    if paused_until is not None:
        connection.paused_until, connection.pause_reason = paused_until, why[:500]
        activity.record(
            connection.tenant_id,
            ActivityKind.CONNECTION_PAUSED,
            f"Scheduled syncs of “{name}” paused until {paused_until:%Y-%m-%d %H:%M} UTC after {failures} "
            "failures in a row.",
            level=ActivityLevel.WARNING,
            connection_id=connection.pk,
            subject=f"connection:{connection.pk}",
            data={"paused_until": paused_until.isoformat(), "failures": failures},
        )
        # The stored row, not the caller's copy: its status may have moved (e.g. to needs_reauth).
        update_schedule(Connection.objects.get(pk=connection.pk))


def note_success(connection: Connection) -> None:
    """A sync run or test succeeded: the failure count starts again and the breaker closes."""
    row = Connection.objects.filter(pk=connection.pk).values_list("consecutive_failures", "paused_until").first()
    if row is None or row == (0, None):
        return
    failures, paused_until = row
    Connection.objects.filter(pk=connection.pk).update(
        consecutive_failures=0, failing_since=None, paused_until=None, pause_reason=""
    )
    connection.consecutive_failures, connection.failing_since = 0, None
    connection.paused_until, connection.pause_reason = None, ""
    if failures >= settings.ALERT_FAILURES_IN_A_ROW or paused_until is not None:
        activity.record(
            connection.tenant_id,
            ActivityKind.CONNECTION_RECOVERED,
            f"“{connection.name}” works again after {failures} failure{'s' if failures != 1 else ''} in a row.",
            connection_id=connection.pk,
            subject=f"connection:{connection.pk}",
        )
    if paused_until is not None:
        update_schedule(Connection.objects.get(pk=connection.pk))


def skip_paused(connection: Connection) -> str:
    """A scheduled sync that started while the breaker holds the connection: a skipped run says
    why, in the sync history, and the schedule is moved to the end of the pause."""
    now = timezone.now()
    why = f"Scheduled sync skipped: paused until {connection.paused_until:%Y-%m-%d %H:%M} UTC because " + (
        connection.pause_reason or "its syncs kept failing."
    )
    SyncRun.objects.create(
        tenant_id=connection.tenant_id,
        connection=connection,
        trigger=SyncTrigger.SCHEDULE,
        status=SyncStatus.SKIPPED,
        error=why,
        error_code="paused",
        started_at=now,
        finished_at=now,
    )
    update_schedule(connection)
    return why
