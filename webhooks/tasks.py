"""Task-cluster work for webhooks. Tasks take ids and are idempotent; outcomes are recorded on the
event rows, where people look."""

from __future__ import annotations

from . import processing, queue

# A drain hands over to a fresh task after this long, so no task nears the queue's timeout.
DRAIN_SECONDS = 120


def process_event(event_pk: int) -> str:
    return processing.process(event_pk)


def drain() -> str:
    """Process every stored event that waits (webhooks.queue rings this after receipt)."""
    done, more = processing.drain(DRAIN_SECONDS)
    if more:
        queue.queue_drain()
    return f"{done} events processed" + (", more waiting: another drain queued" if more else "")


def sweep() -> str:
    """Every minute: process events whose retry is due, that the queue never delivered, or whose
    worker died. Runs them here, one after another, so a backlog never floods the queue."""
    done = [processing.process(pk) for pk in processing.due()]
    return f"{len(done)} events processed"


def register_webhooks(connection_pk: int) -> str:
    from integrations.models import Connection

    from .registration import register

    connection = Connection.objects.filter(pk=connection_pk).first()
    if connection is None:
        return "connection gone"
    return register(connection).summary


def deliver_hooks(pairs: list[tuple[int, int]]) -> str:
    """Outbound hooks: attempt each (delivery pk, attempts so far), in order (one subscription's)."""
    from .outbound.delivery import deliver_many

    return deliver_many(pairs)


def deliver_due_hooks() -> str:
    """Every minute: queue outbound hook retries that are due, and deliveries the queue lost."""
    from .outbound.delivery import sweep

    return sweep()
