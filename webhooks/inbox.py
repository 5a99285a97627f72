"""Storing deliveries: every verified event in one insert before it is acknowledged; a duplicate
(same provider event id on the same connection) loses the race on the unique constraint and is
only counted; a refused delivery is kept with its reason and never processed."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import queue
from .models import EventStatus, WebhookEvent
from .receivers.base import Delivery, Incoming, Receiver

# Never stored whatever the provider: they carry sessions or credentials, not event data.
ALWAYS_SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization", "x-api-key"})
REDACTED = "[redacted]"


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


def store(receiver: Receiver, delivery: Delivery, incoming: list[Incoming]) -> list[tuple[WebhookEvent, bool]]:
    """Store each verified event; returns (event, created) pairs, created False for a duplicate
    (then the event is the one stored first). New events are queued for processing once committed."""
    connection = delivery.connection
    headers = safe_headers(receiver, delivery)
    batch = len(incoming) > 1
    now = timezone.now()
    results = []
    for item in incoming:
        event = WebhookEvent(
            tenant_id=connection.tenant_id,
            connection=connection,
            provider=receiver.provider,
            service=delivery.service,
            event_id=item.event_id[:255],
            topic=item.topic[:128],
            resource_id=item.resource_id[:255],
            resource_updated_at=item.resource_updated_at,
            headers=headers,
            # A batch keeps each event's own part, not the whole body once per event.
            body="" if batch else _text(delivery.body),
            payload=_clean(item.payload),
            received_at=now,
        )
        results.append(_insert_once(event))
    return results


def _insert_once(event: WebhookEvent) -> tuple[WebhookEvent, bool]:
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint, so a duplicate does not spoil the caller's transaction
                event.save()
        else:
            event.save()  # autocommit: one INSERT, nothing to roll back if it fails
    except IntegrityError:
        if not event.event_id:
            raise
        # Delivered before (or at this very moment by another worker): count it on the first copy.
        first = WebhookEvent.objects.filter(connection=event.connection, event_id=event.event_id, signature_valid=True)
        first.update(duplicates=F("duplicates") + 1, last_duplicate_at=event.received_at)
        return first.first() or event, False
    # Once committed, a drain takes it (and every other waiting event): see webhooks.queue.
    transaction.on_commit(queue.wake)
    return event, True
