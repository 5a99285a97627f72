"""Task-cluster work for integrations. Tasks take ids, are idempotent, and record their outcome on
the sync run, never only in the task result."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

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
        return
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": "integrations.tasks.scheduled_sync",
            "args": repr((connection.pk,)),
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
            "next_run": timezone.now() + timezone.timedelta(minutes=minutes),
        },
    )


def next_sync_times(connections) -> dict[int, object]:
    """When each connection's schedule runs next (one query), for dashboards."""
    names = {schedule_name(c): c.pk for c in connections}
    return {
        names[name]: next_run
        for name, next_run in Schedule.objects.filter(name__in=list(names)).values_list("name", "next_run")
    }
