"""The sync engine: read pages from a connector and hand them to commerce's ingest.

- One run per connection at a time, across workers and hosts: a lease on the connection row,
  taken with one conditional UPDATE and renewed on every page.
- Each page is committed with its cursor in one transaction, so a run that dies (worker killed,
  database gone) resumes after the last committed page, and nothing is half-written.
- A connector whose `read` touches only the network (`reads_in_background`) is read a page
  ahead, in a background thread, while the engine writes the page before: the platform's and the
  database's waits overlap. The read-ahead is bounded (`PrefetchedPages`), so memory does not grow
  with the size of a sync.
- Records that fail to map or store are quarantined with their payload; the run goes on.
- Failures are recorded on the run and the connection, where a person sees them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from types import TracebackType
from typing import Any

from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from commerce.ingest import Source, ingest
from commerce.records import IngestResult
from config import metrics
from config.log_context import connection_log_context
from tenants import activity
from tenants.models import ActivityKind, ActivityLevel

from .connectors import get_connector
from .connectors.base import Connector, Failed, Page
from .crm import push_stream
from .errors import AuthError, IntegrationError
from .models import Connection, ConnectionStatus, QuarantinedRecord, SyncRun, SyncStatus, SyncTrigger
from .tasks import NOT_THE_CONNECTION, note_failure, note_success, update_schedule

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
# How long a run that lost its database waits for it to answer again before giving up on recording
# its failure (the lease then lapses and the next run marks it abandoned).
DATABASE_WAIT_SECONDS = 60
DATABASE_LOST = (
    "The database connection was lost during the sync. The pages committed before are kept; the next run goes on "
    "after the last of them."
)

# Sent after each committed page and at the end of a run: dashboards drop their cached figures.
sync_committed = Signal()  # kwargs: tenant_id, connection_id, stream


class SyncBusy(Exception):
    """Another run holds this connection's lease."""


def acquire_lease(connection: Connection, owner: str) -> bool:
    now = timezone.now()
    taken = (
        Connection.objects.filter(pk=connection.pk)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now) | Q(sync_lease_owner=owner))
        .update(sync_lease_until=now + LEASE, sync_lease_owner=owner)
    )
    return taken == 1


def release_lease(connection: Connection, owner: str) -> None:
    Connection.objects.filter(pk=connection.pk, sync_lease_owner=owner).update(
        sync_lease_until=None, sync_lease_owner=""
    )


def close_abandoned_runs(connection: Connection, run: SyncRun) -> int:
    """Fail the connection's other runs still marked running, once `run` holds the lease: a run
    that lost its lease had its worker die (killed, its host gone) and left its lease to lapse, so
    nothing else would ever finish it. `run` goes on from their last committed page."""
    return (
        SyncRun.objects.filter(connection_id=connection.pk, status=SyncStatus.RUNNING)
        .exclude(pk=run.pk)
        .update(
            status=SyncStatus.FAILED,
            error_code="abandoned",
            error=f"Its worker stopped before the run finished and its lease lapsed; run #{run.pk} went on "
            "from its last committed page.",
            finished_at=timezone.now(),
        )
    )


def create_run(
    connection: Connection, streams: list[str] | None = None, *, full: bool = False, trigger: str = SyncTrigger.MANUAL
) -> SyncRun:
    return SyncRun.objects.create(
        tenant_id=connection.tenant_id,
        connection=connection,
        trigger=trigger,
        streams=list(streams or []),
        full=full,
    )


@connection_log_context
def run_sync(
    connection: Connection,
    streams: list[str] | None = None,
    *,
    full: bool = False,
    trigger: str = SyncTrigger.MANUAL,
    run: SyncRun | None = None,
    connector: Connector | None = None,
    on_progress: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    """Sync `streams` (default: every stream of the platform) of one connection and return the run."""
    connector = connector or get_connector(connection)
    if run is None:
        run = create_run(connection, streams, full=full, trigger=trigger)
    known = (*connector.streams, *connector.push_streams)
    run.streams = list(streams or run.streams or known)
    unknown = sorted(set(run.streams) - set(known))
    if unknown:
        return _finish(run, SyncStatus.FAILED, f"Unknown stream(s) for this platform: {', '.join(unknown)}.", "config")
    # The run's own id: a run redelivered after its worker died takes its lease back at once.
    owner = f"run-{run.pk}"
    if not acquire_lease(connection, owner):
        return _finish(run, SyncStatus.SKIPPED, "Another sync of this connection is running.", "busy")
    close_abandoned_runs(connection, run)

    # The stored cursors, not the caller's copy: another run may have moved them since it loaded.
    connection.cursors = Connection.objects.values_list("cursors", flat=True).get(pk=connection.pk)
    run.status, run.started_at, run.heartbeat_at = SyncStatus.RUNNING, timezone.now(), timezone.now()
    run.save(update_fields=["status", "streams", "started_at", "heartbeat_at"])
    source = Source(tenant_id=connection.tenant_id, connection_id=connection.pk, channel=connection.platform)
    try:
        for stream in run.streams:
            _sync_stream(connector, connection, run, stream, source, owner, on_progress)
    except IntegrationError as error:
        _record_failure(connection, error)
        return _finish(run, SyncStatus.FAILED, str(error), error.code)
    except SyncBusy as error:
        return _finish(run, SyncStatus.FAILED, str(error), "busy")
    except Exception as error:
        if _database_gone(error):
            # A restart, a failover, the connection killed. Each page was committed whole with its
            # cursor, so the next run goes on after the last one.
            logger.exception("Sync run %s of connection %s lost its database connection", run.pk, connection.pk)
            _await_database()
            return _finish(run, SyncStatus.FAILED, DATABASE_LOST, "database")
        logger.exception("Sync run %s of connection %s crashed", run.pk, connection.pk)
        return _finish(run, SyncStatus.FAILED, "The sync stopped on an internal error; it has been logged.", "internal")
    finally:
        release_lease(connection, owner)
    newly_connected = (
        Connection.objects.filter(pk=connection.pk)
        .exclude(status__in=[ConnectionStatus.DISABLED, ConnectionStatus.CONNECTED])
        .update(status=ConnectionStatus.CONNECTED, last_error="")
    )
    if newly_connected:
        # A first successful sync proves the connection as a test does: it may now be scheduled.
        update_schedule(Connection.objects.get(pk=connection.pk))
    return _finish(run, SyncStatus.SUCCEEDED)


def _sync_stream(connector, connection, run, stream, source, owner, on_progress) -> None:
    if stream in connector.push_streams:
        # The other way: the hub's records out to the platform (a CRM's contacts; integrations.crm).
        def commit_position(name: str, cursor: dict[str, Any]) -> None:
            _commit_position(connection, owner, name, cursor)

        push_stream(connector, connection, run, stream, commit_position, on_progress=on_progress)
        return
    cursor = None if run.full else (connection.cursors or {}).get(stream)
    counts = run.counts.setdefault(stream, {"created": 0, "updated": 0, "unchanged": 0, "failed": 0})
    progress = run.progress.setdefault(stream, {"seen": 0, "total": None, "done": False})
    pages = connector.read(stream, cursor, full=run.full)
    with (
        PrefetchedPages(pages, name=f"sync-run-{run.pk}-{stream}")
        if getattr(connector, "reads_in_background", False)
        else closing(pages)
    ) as pages:
        for page in pages:
            _commit_page(connection, run, stream, source, owner, page, counts, progress)
            if on_progress:
                on_progress(run)
    progress["done"] = True
    run.save(update_fields=["progress"])


def _commit_page(connection, run, stream, source, owner, page: Page, counts: dict, progress: dict) -> None:
    records = [r for r in page.records if not isinstance(r, Failed)]
    failed = [r for r in page.records if isinstance(r, Failed)]
    with transaction.atomic():
        result: IngestResult = ingest(stream, source, records) if records else IngestResult()
        quarantine(connection, run, stream, failed, result)
        _commit_position(connection, owner, stream, page.cursor)
        counts["created"] += result.created
        counts["updated"] += result.updated
        counts["unchanged"] += result.unchanged
        counts["failed"] += len(failed) + len(result.failures)
        progress["seen"] += len(page.records)
        progress["total"] = page.total if page.total is not None else progress["total"]
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["counts", "progress", "heartbeat_at"])
    sync_committed.send(sender=SyncRun, tenant_id=source.tenant_id, connection_id=source.connection_id, stream=stream)
    metrics.records_synced(connection.platform, stream, result.created + result.updated)


class PrefetchedPages:
    """The pages of a connector's `read`, read in a background thread one page ahead of the caller.

    The thread reads a page while the caller writes the one before, and waits when one page is
    ready and not yet taken: besides the page the caller holds, at most one page waits and one is
    being read, however many a sync has. An error of the read reaches the caller, raised where the
    failing page would have come, after every page read before it. Leaving the `with` block stops
    the thread after the read in progress (a failed write reads no further) and closes `read`.

    Only for connectors whose `read` touches nothing but the network: the thread has a database
    connection of its own, outside the caller's transaction."""

    _PAGE, _END, _ERROR = "page", "end", "error"

    def __init__(self, pages: Iterator[Page], *, name: str = "sync-read-ahead") -> None:
        self._pages = pages
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)

    def __enter__(self) -> PrefetchedPages:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        # A read blocked on the full queue takes the freed place, sees the stop and ends.
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join()

    def __iter__(self) -> Iterator[Page]:
        while True:
            kind, value = self._queue.get()
            if kind == self._PAGE:
                yield value
            elif kind == self._ERROR:
                raise value
            else:
                return

    def _read(self) -> None:
        try:
            for page in self._pages:
                self._queue.put((self._PAGE, page))
                if self._stop.is_set():
                    return
            self._queue.put((self._END, None))
        except BaseException as error:  # raised again in the caller's thread
            self._queue.put((self._ERROR, error))
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()
            # Whatever the read opened on Django's per-thread handlers (a cache client for the
            # rate budget) is closed with the thread.
            connections.close_all()
            caches.close_all()


def _commit_position(connection: Connection, owner: str, stream: str, cursor: dict[str, Any]) -> None:
    """Store the stream's cursor and renew the lease in one statement, inside the page's
    transaction. Only the lease holder writes cursors (the admin and the API save other columns
    only), so the in-memory copy is current; a run that lost its lease rolls its page back."""
    cursors = {**(connection.cursors or {}), stream: cursor}
    updated = Connection.objects.filter(pk=connection.pk, sync_lease_owner=owner).update(
        cursors=cursors, sync_lease_until=timezone.now() + LEASE
    )
    if not updated:
        raise SyncBusy("This run lost the connection's sync lease to another run; its last page was not kept.")
    connection.cursors = cursors


def quarantine(connection, run, stream, failed: list[Failed], result: IngestResult) -> None:
    rows = [
        QuarantinedRecord(
            tenant_id=connection.tenant_id,
            connection=connection,
            sync_run=run,
            stream=stream,
            external_id=f.external_id[:128],
            payload=_jsonable(f.payload),
            error=f.error[:2000],
        )
        for f in [*failed, *result.failures]
    ]
    if rows:
        QuarantinedRecord.objects.bulk_create(rows)


def _jsonable(payload: Any) -> Any:
    if isinstance(payload, (dict, list, str, int, float, bool)) or payload is None:
        return payload
    return {"repr": repr(payload)[:5000]}


# PostgreSQL's codes for a connection that broke: class 08, and the server shutting down or starting.
CONNECTION_LOST_STATES = {"57P01", "57P02", "57P03"}


def _database_gone(error: Exception) -> bool:
    """Whether `error` is PostgreSQL's connection breaking (a restart, a failover, the backend
    terminated), rather than a statement failing. A connection left broken outside a transaction
    is closed here, as nothing else outside a request would, so that recording the failure and
    releasing the lease run on a new one."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or not isinstance(error, OperationalError | InterfaceError):
        return False
    state = getattr(error.__cause__, "sqlstate", None) or ""
    if state and not state.startswith("08") and state not in CONNECTION_LOST_STATES:
        return False  # a lock or statement timeout, a deadlock: the connection is fine
    if db.connection is not None and not db.in_atomic_block and not db.is_usable():
        db.close()
    return True


def _await_database(seconds: float | None = None) -> bool:
    """After the connection broke: wait, at most DATABASE_WAIT_SECONDS, until the database answers
    again (a restart takes seconds), so that the run's failure is recorded and its lease released
    rather than left for the lease to lapse. Returns whether it answered."""
    db = connections[DEFAULT_DB_ALIAS]
    deadline = time.monotonic() + (DATABASE_WAIT_SECONDS if seconds is None else seconds)
    while True:
        try:
            db.ensure_connection()
            with db.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except (OperationalError, InterfaceError):
            db.close()
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)


def _record_failure(connection: Connection, error: IntegrationError) -> None:
    status = ConnectionStatus.NEEDS_REAUTH if isinstance(error, AuthError) else ConnectionStatus.FAILING
    Connection.objects.filter(pk=connection.pk).exclude(status=ConnectionStatus.DISABLED).update(
        status=status, last_error=str(error)[:2000]
    )


def _finish(run: SyncRun, status: str, error: str = "", code: str = "") -> SyncRun:
    now = timezone.now()
    run.status, run.error, run.error_code, run.finished_at = status, error, code, now
    run.started_at = run.started_at or now
    run.save(update_fields=["status", "error", "error_code", "finished_at", "started_at", "streams"])
    metrics.sync_run_finished(run)
    sync_committed.send(sender=SyncRun, tenant_id=run.tenant_id, connection_id=run.connection_id, stream=None)
    _announce(run)
    return run


def _announce(run: SyncRun) -> None:
    """A finished run counts for the connection's failure streak (alerts, the circuit breaker) and
    goes in the tenant's activity stream."""
    connection = run.connection
    if run.status == SyncStatus.SUCCEEDED:
        note_success(connection)
        totals = run.totals
        changed = ", ".join(f"{totals[k]} {k}" for k in ("created", "updated", "failed") if totals[k])
        activity.record(
            run.tenant_id,
            ActivityKind.SYNC_COMPLETED,
            f"Sync #{run.pk} of “{connection.name}” completed: {changed or 'nothing new'}.",
            level=ActivityLevel.WARNING if totals["failed"] else ActivityLevel.INFO,
            connection_id=run.connection_id,
            subject=f"sync_run:{run.pk}",
            data={"trigger": run.trigger, **totals},
        )
    elif run.status == SyncStatus.FAILED:
        if run.error_code not in NOT_THE_CONNECTION:
            note_failure(connection, run.error)
        activity.record(
            run.tenant_id,
            ActivityKind.SYNC_FAILED,
            f"Sync #{run.pk} of “{connection.name}” failed: {run.error}",
            level=ActivityLevel.ERROR,
            connection_id=run.connection_id,
            subject=f"sync_run:{run.pk}",
            data={"trigger": run.trigger, "error_code": run.error_code},
        )


def retry_quarantined(record: QuarantinedRecord) -> bool:
    """Parse and store a quarantined record again; mark it resolved when it goes in."""
    connection = record.connection
    connector = get_connector(connection)
    source = Source(tenant_id=connection.tenant_id, connection_id=connection.pk, channel=connection.platform)
    record.attempts += 1
    try:
        parsed = connector.parse(record.stream, record.payload)
        with transaction.atomic():
            result = ingest(record.stream, source, [parsed])
            if result.failures:
                raise ValueError(result.failures[0].error)
            record.resolved_at = timezone.now()
            record.save(update_fields=["attempts", "resolved_at"])
    except Exception as exc:  # the record stays quarantined with the new error
        record.error = f"{type(exc).__name__}: {exc}"[:2000]
        record.save(update_fields=["attempts", "error"])
        return False
    sync_committed.send(
        sender=SyncRun, tenant_id=connection.tenant_id, connection_id=connection.pk, stream=record.stream
    )
    return True
