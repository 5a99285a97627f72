"""Processing stored events, once each.

A worker claims an event with one conditional UPDATE (received/retrying → processing, with a lock
that lapses), so two workers never process one event and one that died mid-event gives it back
when its lock lapses (see `sweep`). The handler for the event's (provider, topic) runs inside a
transaction with the status change, so its effect and "processed" commit together. A handler
failure is retried with exponential backoff; after WEBHOOK_MAX_ATTEMPTS, or at once when the
handler says it can never succeed (`Unprocessable`), the event is parked for a person to replay.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config import metrics
from config.log_context import log_context
from integrations.models import ConnectionStatus
from tenants import activity
from tenants.models import ActivityKind, ActivityLevel

from .errors import Unprocessable
from .models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

Handler = Callable[[WebhookEvent], str]
LOCK = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)
# Events left `received` this long were never picked up (the queue lost them): the sweep takes them.
UNCLAIMED_AFTER = timedelta(minutes=2)
CLAIMABLE = (EventStatus.RECEIVED, EventStatus.RETRYING)


@cache
def handlers() -> dict[tuple[str, str], Handler]:
    """Every app's handlers, by (provider, topic). Plain dicts, merged here."""
    from campaigns.webhook_handlers import HANDLERS as messages
    from integrations.webhook_handlers import HANDLERS as commerce
    from payments.webhook_handlers import HANDLERS as payments

    from .generic_handlers import HANDLERS as generic

    return {**commerce, **payments, **messages, **generic}


def process(event_pk: int) -> str:
    """Claim and process one event; returns what happened, for the task's result."""
    now = timezone.now()
    claimed = WebhookEvent.objects.filter(pk=event_pk, status__in=CLAIMABLE).update(
        status=EventStatus.PROCESSING, attempts=F("attempts") + 1, locked_until=now + LOCK, next_attempt_at=None
    )
    if not claimed:
        return "already taken or done"
    event = WebhookEvent.objects.select_related("connection").get(pk=event_pk)
    with log_context(tenant=event.tenant_id, connection=event.connection_id):
        return _handle(event)


def _handle(event: WebhookEvent) -> str:
    handler = handlers().get((event.provider, event.topic))
    if handler is None:
        return _finish(event, EventStatus.IGNORED, outcome=f"No handler for the topic “{event.topic}”.")
    if not event.connection.enabled or event.connection.status == ConnectionStatus.DISABLED:
        return _finish(event, EventStatus.IGNORED, outcome="The connection is disabled.")
    try:
        with transaction.atomic():
            outcome = handler(event) or "done"
            return _finish(event, EventStatus.PROCESSED, outcome=outcome)
    except Unprocessable as problem:
        logger.warning("Webhook event %s parked: %s", event.pk, problem)
        return _finish(event, EventStatus.PARKED, error=str(problem))
    except Exception as problem:  # passing trouble: retried, then parked
        logger.exception("Webhook event %s failed (attempt %s)", event.pk, event.attempts)
        error = f"{type(problem).__name__}: {problem}"
        if event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            return _finish(event, EventStatus.PARKED, error=f"Gave up after {event.attempts} attempts. {error}")
        return _finish(event, EventStatus.RETRYING, error=error, retry_at=timezone.now() + backoff(event.attempts))


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... at most an hour, with up to 20 % jitter so retries do not bunch."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    seconds = min(base, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * (1 + random.random() * 0.2))  # noqa: S311 (jitter)


def _finish(event: WebhookEvent, status: str, *, outcome: str = "", error: str = "", retry_at=None) -> str:
    now = timezone.now()
    finished = WebhookEvent.objects.filter(pk=event.pk, status=EventStatus.PROCESSING).update(
        status=status,
        outcome=outcome[:255],
        error=error,
        next_attempt_at=retry_at,
        locked_until=None,
        processed_at=now if status in (EventStatus.PROCESSED, EventStatus.IGNORED) else None,
    )
    if finished:
        metrics.webhook_event_finished(event.provider, status)
        _announce(event, status, outcome or error)
    return f"{status}: {outcome or error}"


# --- The activity stream ---------------------------------------------------------------------------
# A parked event is one entry (a person has to act). Processed events are many, so while a drain
# works through a round of waiting events they are counted per connection and written as one entry
# each at the end of the round (WEBHOOK_ACTIVITY_PER_EVENT writes one per event instead). An event
# processed on its own (replay, the minute sweep's retries) is an entry of its own.

_batch: ContextVar[Counter | None] = ContextVar("webhook_activity_batch", default=None)


def _announce(event: WebhookEvent, status: str, text: str) -> None:
    connection = event.connection
    if status == EventStatus.PARKED:
        activity.record(
            event.tenant_id,
            ActivityKind.WEBHOOK_PARKED,
            f"Webhook event #{event.pk} ({event.topic or 'no topic'}) from “{connection.name}” parked: {text}",
            level=ActivityLevel.ERROR,
            connection_id=event.connection_id,
            subject=f"webhook_event:{event.pk}",
        )
        return
    if status != EventStatus.PROCESSED:
        return
    counts = _batch.get()
    key = (event.tenant_id, event.connection_id, connection.name, event.topic)
    if counts is None or settings.WEBHOOK_ACTIVITY_PER_EVENT:
        _record_processed({key: 1})
    else:
        # Counted once the event's transaction commits, like every activity.
        transaction.on_commit(lambda: counts.update([key]))


@contextmanager
def batch() -> Iterator[None]:
    """Processed events inside the block go in the activity stream as one entry per connection."""
    counts: Counter = Counter()
    token = _batch.set(counts)
    try:
        yield
    finally:
        _batch.reset(token)
        _record_processed(counts)


def _record_processed(counts: dict[tuple[int, int, str, str], int]) -> None:
    per_connection: dict[tuple[int, int, str], Counter] = {}
    for (tenant_id, connection_id, name, topic), n in counts.items():
        per_connection.setdefault((tenant_id, connection_id, name), Counter())[topic or "(none)"] += n
    for (tenant_id, connection_id, name), topics in per_connection.items():
        total = sum(topics.values())
        plural = "event" if total == 1 else "events"
        activity.record(
            tenant_id,
            ActivityKind.WEBHOOK_PROCESSED,
            f"{total} webhook {plural} from “{name}” processed ({', '.join(sorted(topics))}).",
            connection_id=connection_id,
            subject=f"connection:{connection_id}",
            data={"count": total, "topics": dict(topics)},
        )


def due(now=None, limit: int = 500) -> list[int]:
    """Events the sweep should (re)queue: retries that are due, received ones the queue never
    delivered, and ones whose worker died while holding them."""
    now = now or timezone.now()
    stale_locks = WebhookEvent.objects.filter(status=EventStatus.PROCESSING, locked_until__lt=now)
    stale_locks.update(status=EventStatus.RETRYING, locked_until=None, next_attempt_at=now)
    return list(
        WebhookEvent.objects.filter(
            Q(status=EventStatus.RETRYING, next_attempt_at__lte=now)
            | Q(status=EventStatus.RECEIVED, received_at__lt=now - UNCLAIMED_AFTER)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def waiting(limit: int = 100) -> list[int]:
    """Events stored and not yet taken by anyone, oldest first."""
    return list(
        WebhookEvent.objects.filter(status=EventStatus.RECEIVED).order_by("pk").values_list("pk", flat=True)[:limit]
    )


def drain(seconds: float) -> tuple[int, bool]:
    """Process waiting events until none is left or `seconds` have passed. Returns how many were
    processed and whether some may still wait (the caller queues another drain)."""
    from . import queue

    deadline = time.monotonic() + seconds
    done = 0
    while True:
        pks = waiting()
        if not pks:
            # Nothing left: let the next delivery ring again, then look once more for one stored
            # while the bell could not ring (see webhooks.queue).
            queue.rearm()
            queue.settle()
            pks = waiting()
            if not pks:
                return done, False
        with batch():
            for pk in pks:
                process(pk)
                done += 1
                if time.monotonic() >= deadline:
                    return done, True


def replay(events) -> int:
    """Put parked, failed, ignored or processed events back in the queue (the admin's Replay).
    Rejected ones are never processed: their signature did not hold."""
    pks = list(events.exclude(status__in=[EventStatus.REJECTED, EventStatus.PROCESSING]).values_list("pk", flat=True))
    WebhookEvent.objects.filter(pk__in=pks).update(
        status=EventStatus.RECEIVED, attempts=0, next_attempt_at=None, error="", outcome=""
    )
    from .queue import enqueue

    for pk in pks:
        transaction.on_commit(lambda pk=pk: enqueue(pk))
    return len(pks)
