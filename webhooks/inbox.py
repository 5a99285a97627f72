"""Storing deliveries: every verified event in one insert before it is acknowledged; a duplicate
(same provider event id on the same connection) loses the race on the unique constraint, inserts
nothing and is only counted; a refused delivery is kept with its reason and never processed."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import F
from django.utils import timezone

from config import metrics

from . import queue
from .models import EventStatus, WebhookEvent
from .receivers.base import Delivery, Incoming, Receiver

# Never stored whatever the provider: they carry sessions or credentials, not event data.
ALWAYS_SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization", "x-api-key"})
REDACTED = "[redacted]"

# What receipt sends for each event; every other column starts with the model's default (and the
# signature valid), written into the statement once rather than sent with every delivery.
_SENT = [
    WebhookEvent._meta.get_field(name)
    for name in (
        "tenant",
        "connection",
        "provider",
        "service",
        "event_id",
        "topic",
        "resource_id",
        "resource_updated_at",
        "headers",
        "body",
        "payload",
        "received_at",
    )
]
# The ones the ORM converts for the database (JSON, dates); the rest go as they are.
_CONVERTED = frozenset(field.attname for field in _SENT if field.get_internal_type() in ("JSONField", "DateTimeField"))
_STARTING = {"signature_valid": True}


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and "%" not in value:  # % would be read as a parameter marker
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"Add the column with a {type(value).__name__} default to webhooks.inbox._SENT")


_FIXED = [
    (field.column, _literal(_STARTING.get(field.name, field.get_default())))
    for field in WebhookEvent._meta.concrete_fields
    if not field.primary_key and field not in _SENT
]
# One statement stores an event or finds it a duplicate. The conflict target is the partial unique
# constraint `webhook_event_once_per_connection` with its predicate written exactly as the
# migration created it (SQLite matches it token for token): a second delivery of the same event
# inserts nothing and returns no row, so there is no IntegrityError to catch, no savepoint inside a
# transaction and no aborted transaction to recover. The same SQL runs on PostgreSQL and on SQLite
# (3.35+ for RETURNING, TRUE and FALSE).
_INSERT = (
    'INSERT INTO "{table}" ({columns}) VALUES ({values}) '
    'ON CONFLICT ("connection_id", "event_id") WHERE ("signature_valid" AND NOT ("event_id" = \'\')) '
    'DO NOTHING RETURNING "id"'
).format(
    table=WebhookEvent._meta.db_table,
    columns=", ".join([*(f'"{field.column}"' for field in _SENT), *(f'"{column}"' for column, _ in _FIXED)]),
    values=", ".join([*(["%s"] * len(_SENT)), *(literal for _, literal in _FIXED)]),
)


def safe_headers(receiver: Receiver, delivery: Delivery) -> dict[str, str]:
    hidden = ALWAYS_SECRET_HEADERS | set(receiver.secret_headers)
    return {name: (REDACTED if name in hidden else _clean(value)) for name, value in sorted(delivery.headers.items())}


def _text(body: bytes) -> str:
    # PostgreSQL text cannot hold NUL; the stored body is for people to read (the signature was
    # checked on the raw bytes already), so NUL shows as the replacement character.
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _clean(value):
    """A JSON value without NUL characters, which PostgreSQL's jsonb refuses."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def store_rejected(receiver: Receiver, delivery: Delivery, reason: str) -> WebhookEvent:
    connection = delivery.connection
    return WebhookEvent.objects.create(
        tenant_id=connection.tenant_id,
        connection=connection,
        provider=receiver.provider,
        service=delivery.service,
        topic=_rejected_topic(delivery),
        headers=safe_headers(receiver, delivery),
        body=_text(delivery.body),
        signature_valid=False,
        status=EventStatus.REJECTED,
        error=reason,
    )


def _rejected_topic(delivery: Delivery) -> str:
    """The topic a refused delivery claims, for the log only (it is not trusted)."""
    for name in ("x-shopify-topic", "x-wc-webhook-topic", "x-hub-event"):
        if delivery.header(name):
            return delivery.header(name)[:128]
    return ""


def store(receiver: Receiver, delivery: Delivery, incoming: list[Incoming]) -> list[tuple[int | None, bool]]:
    """Store each verified event; returns (event id, created) pairs, created False for a duplicate
    (then the id is the one stored first). New events are queued for processing once committed."""
    connection = delivery.connection
    db = connections[DEFAULT_DB_ALIAS]
    headers = safe_headers(receiver, delivery)
    batch = len(incoming) > 1
    now = timezone.now()
    results = []
    for item in incoming:
        values = {
            "tenant_id": connection.tenant_id,
            "connection_id": connection.pk,
            "provider": receiver.provider,
            "service": delivery.service,
            # Ids and topics come out of the body too, so NUL is replaced there as well.
            "event_id": _clean(item.event_id)[:255],
            "topic": _clean(item.topic)[:128],
            "resource_id": _clean(item.resource_id)[:255],
            "resource_updated_at": item.resource_updated_at,
            "headers": headers,
            # A batch keeps each event's own part, not the whole body once per event.
            "body": "" if batch else _text(delivery.body),
            "payload": _clean(item.payload),
            "received_at": now,
        }
        results.append(_insert_once(db, values))
    metrics.webhook_events_stored(receiver.provider, results)
    return results


def _insert_once(db: BaseDatabaseWrapper, values: dict[str, object]) -> tuple[int | None, bool]:
    # The ORM's own conversion of each value for the database (JSON, dates), without the rest of
    # save(): no field of WebhookEvent computes its value on save, and pre_save/post_save are not
    # sent for verified events (what must happen on receipt is called from here and `store`).
    params = []
    for field in _SENT:
        value = values[field.attname]
        params.append(field.get_db_prep_save(value, db) if value is not None and field.attname in _CONVERTED else value)
    row = _execute_insert(db, params)
    if row is None:
        # Delivered before (or at this very moment by another worker): count it on the first copy.
        first = WebhookEvent.objects.filter(
            connection_id=values["connection_id"], event_id=values["event_id"], signature_valid=True
        )
        first.update(duplicates=F("duplicates") + 1, last_duplicate_at=values["received_at"])
        return first.values_list("pk", flat=True).first(), False
    # Once committed, a drain takes it (and every other waiting event): see webhooks.queue.
    transaction.on_commit(queue.wake)
    return row[0], True


def _execute_insert(db: BaseDatabaseWrapper, params: list) -> tuple | None:
    """Run the insert; its row (the new id), or None for a duplicate.

    On PostgreSQL, unless the statement is being logged or wrapped (DEBUG, CaptureQueriesContext,
    connection.execute_wrapper), it goes to psycopg directly, on one cursor kept for the
    connection: Django's cursor wrapper, made and closed for every delivery, cost about 60 µs, near
    a tenth of what receipt cost the web worker. What the wrapper does that matters here is done
    the same way: the thread check, the health check, (re)connecting, refusing a broken transaction,
    and turning psycopg's errors into Django's (so a lost database is answered 503, see views)."""
    if db.vendor != "postgresql" or db.queries_logged or db.execute_wrappers:
        with _cursor(db) as cursor, _prepared(db):
            cursor.execute(_INSERT, params)
            return cursor.fetchone()
    db.validate_thread_sharing()
    _skip_round_trip_health_check(db)
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_no_broken_transaction()
    cursor = getattr(db, "_webhook_insert_cursor", None)
    if cursor is None or cursor.connection is not db.connection:  # first use, or a new connection
        cursor = db._webhook_insert_cursor = db.Database.Cursor(db.connection)
    with db.wrap_database_errors, _prepared(db):
        cursor.execute(_INSERT, params)
        return cursor.fetchone()


def _cursor(db: BaseDatabaseWrapper) -> CursorWrapper:
    """Django's cursor (its error translation, query logging and execute wrappers), and on
    PostgreSQL one that sends the parameters apart from the statement instead of quoting a few KB
    of body into its text, as `_execute_insert`'s own cursor does: PostgreSQL then parses the same
    short statement every time, and with DATABASE_PREPARE_THRESHOLD set (config/settings.py)
    prepares it once per connection (`_prepared`)."""
    if db.vendor != "postgresql":
        return db.cursor()
    _skip_round_trip_health_check(db)
    cursor = db.cursor()
    client_side, cursor.cursor = cursor.cursor, db.Database.Cursor(db.connection)  # same connection
    client_side.close()
    return cursor


@contextlib.contextmanager
def _prepared(db: BaseDatabaseWrapper) -> Iterator[None]:
    """On PostgreSQL, let psycopg prepare this statement (after WEBHOOK_PREPARE_THRESHOLD runs on the
    connection), and only this one: the connection's own threshold, Django's None, is put back at
    once, so no other statement is counted or remembered (psycopg keeps the text of each one it
    counts, and ingest's run to megabytes)."""
    threshold = getattr(settings, "WEBHOOK_PREPARE_THRESHOLD", None)
    raw = db.connection if db.vendor == "postgresql" else None
    if raw is None or threshold is None:
        yield
        return
    previous = raw.prepare_threshold
    raw.prepare_threshold = threshold
    try:
        yield
    finally:
        raw.prepare_threshold = previous


def _skip_round_trip_health_check(db: BaseDatabaseWrapper) -> None:
    """With CONN_HEALTH_CHECKS, Django runs `SELECT 1` before a request's first query: one more
    round trip per delivery, before the insert's own. A connection the server closed (restart,
    idle timeout, pg_terminate_backend) has something to read on its socket (the server's goodbye,
    or the end of the stream), so when there is nothing to read the check is counted as done;
    otherwise Django's own check runs and replaces the connection. A connection whose peer vanished
    without a word would hang `SELECT 1` just as it hangs the insert."""
    if not db.health_check_enabled or db.health_check_done or db.connection is None or db.connection.closed:
        return
    if not hasattr(select, "poll"):  # Windows: Django's check runs
        return
    poller = select.poll()
    try:
        poller.register(db.connection.fileno(), select.POLLIN)
        waiting = poller.poll(0)
    except (OSError, ValueError, db.Database.Error):
        return
    if not waiting:
        db.health_check_done = True
