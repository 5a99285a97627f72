"""How stored events reach a worker.

The `WebhookEvent` table is the queue: an event is stored `received`, and whatever processes it
claims it there (`processing.process`). The task queue is only the doorbell. Receipt rings it
(`wake`) after its insert commits, and a ring queues one `drain` task, which processes every
waiting event and then lets the bell be rung again. Rings within WEBHOOK_DRAIN_COALESCE_SECONDS of
a queued drain are absorbed (a cache flag), so a flood of deliveries costs one task-queue insert
every few seconds instead of one per delivery, and the acknowledgement stays one insert.

A process that has seen the flag set does not ask the cache again for WEBHOOK_RING_MEMO_SECONDS
(1 s): a ring is then no round trip at all (a cache call on Redis took about 0.2 ms, a fifth of
what a delivery costs its web worker).

Nothing is lost if a ring is absorbed while a drain is finishing. The drain clears the flag, waits
out the memo, and then looks once more (`processing.drain`). A ring absorbed by the flag or by a
process's memo was rung at most WEBHOOK_RING_MEMO_SECONDS after that process last saw the flag set,
and after its event was committed: if the flag was cleared since, that look comes later and sees
the event; if not, the drain that clears it next looks after that. An event stored after the flag
was cleared (and the memo ran out) rings a new drain. If the cache is down, every ring queues a
drain (slower, not wrong). And if the task queue loses a drain, the minute sweep takes events
left `received`.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

DRAIN_FLAG = "webhooks:drain-queued"
# When this process last saw the flag set (time.monotonic()); a race between threads only costs a
# spare cache call.
_flag_seen_at = float("-inf")


def wake() -> None:
    """Make sure a drain is queued or running: queue one unless one was queued moments ago."""
    global _flag_seen_at
    now = time.monotonic()
    if now - _flag_seen_at < settings.WEBHOOK_RING_MEMO_SECONDS:
        return
    try:
        if not cache.add(DRAIN_FLAG, 1, timeout=settings.WEBHOOK_DRAIN_COALESCE_SECONDS):
            _flag_seen_at = now
            return
    except Exception:  # the cache is down: ring anyway, a spare drain finds nothing and stops
        logger.warning("Cache unavailable; queueing a webhook drain without coalescing", exc_info=True)
        queue_drain()
        return
    queue_drain()
    _flag_seen_at = now


def settle() -> None:
    """Called by a drain between re-arming and its last look: wait until no process can still be
    absorbing rings on the memory of the flag it cleared."""
    time.sleep(settings.WEBHOOK_RING_MEMO_SECONDS)


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
