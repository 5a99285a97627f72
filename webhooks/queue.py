"""How stored events reach a worker.

The `WebhookEvent` table is the queue: an event is stored `received`, and whatever processes it
claims it there (`processing.process`). The task queue is only the doorbell. Receipt rings it
(`wake`) after its insert commits, and a ring queues one `drain` task, which processes every
waiting event and then lets the bell be rung again. Rings within WEBHOOK_DRAIN_COALESCE_SECONDS of
a queued drain are absorbed (a cache flag), so a flood of deliveries costs one task-queue insert
every few seconds instead of one per delivery, and the acknowledgement stays one insert.

Nothing is lost if a ring is absorbed while a drain is finishing: the drain clears the flag and
then looks once more, so an event stored before the flag was cleared is seen by that look, and one
stored after rings a new drain. If the cache is down, every ring queues a drain (slower, not
wrong). And if the task queue loses a drain, the minute sweep takes events left `received`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

DRAIN_FLAG = "webhooks:drain-queued"


def wake() -> None:
    """Make sure a drain is queued or running: queue one unless one was queued moments ago."""
    try:
        if not cache.add(DRAIN_FLAG, 1, timeout=settings.WEBHOOK_DRAIN_COALESCE_SECONDS):
            return
    except Exception:  # the cache is down: ring anyway, a spare drain finds nothing and stops
        logger.warning("Cache unavailable; queueing a webhook drain without coalescing", exc_info=True)
    queue_drain()


def queue_drain() -> None:
    async_task("webhooks.tasks.drain", task_name="webhook-drain")


def rearm() -> None:
    """Called by a drain that found nothing left: the next ring queues a new drain."""
    try:
        cache.delete(DRAIN_FLAG)
    except Exception:  # the flag lapses by itself; until then the minute sweep covers
        logger.warning("Cache unavailable; the webhook drain flag lapses by itself", exc_info=True)


def enqueue(pk: int) -> None:
    """One event in its own task (Replay of a chosen event)."""
    async_task("webhooks.tasks.process_event", pk, task_name=f"webhook-{pk}")
