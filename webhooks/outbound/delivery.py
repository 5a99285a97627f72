"""Sending deliveries: one attempt at a time, retried with backoff, at least once.

A task claims a delivery with one conditional UPDATE on its attempt count, so a delivery queued
twice (the sweep re-queues what the queue seems to have lost) is still sent once per attempt. The
claim holds it for `LEASE`; a worker that dies mid-attempt gives it back to the sweep when that
lapses. The outcome:

- any 2xx: succeeded, and the subscription is no longer failing;
- 410 Gone: the target is gone for good (Zapier's answer for a deleted zap): the subscription is
  switched off at once and its waiting deliveries cancelled;
- a target that is not allowed (a private address at send time): failed, not retried;
- anything else (other statuses, redirects, timeouts, refused connections): retried after
  HOOKS_RETRY_DELAYS, then failed. A subscription all of whose attempts have failed for
  HOOKS_DISABLE_AFTER_DAYS is switched off, audited, and its client's owners are emailed.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone
from django_q.tasks import async_task

from config import metrics
from tenants import audit
from tenants.models import Membership, Role

from ..models import DeliveryStatus, HookDelivery, HookSubscription
from . import signing, targets

logger = logging.getLogger(__name__)

OPEN = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
# How long one attempt holds its delivery; longer than the connect and read timeouts together.
LEASE = timedelta(minutes=2)
# A queued delivery no worker has taken by then is queued again by the sweep.
REQUEUE_AFTER = timedelta(minutes=5)
# Deliveries per task, all of one subscription, so one slow target never delays another's.
CHUNK = 25
TASK = "webhooks.tasks.deliver_hooks"


def max_attempts() -> int:
    return len(settings.HOOKS_RETRY_DELAYS) + 1


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt, with ±10 % jitter so retries do not bunch."""
    seconds = settings.HOOKS_RETRY_DELAYS[attempts - 1]
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))  # noqa: S311 (jitter)


def enqueue(items: Iterable[tuple[int, int, int]]) -> int:
    """Queue (delivery pk, its attempt count, subscription pk) triples, in tasks per subscription."""
    by_subscription: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pk, attempts, subscription_id in items:
        by_subscription[subscription_id].append((pk, attempts))
    tasks = 0
    for pairs in by_subscription.values():
        for start in range(0, len(pairs), CHUNK):
            async_task(TASK, pairs[start : start + CHUNK])
            tasks += 1
    return tasks


def deliver_many(pairs: Iterable[tuple[int, int]]) -> str:
    outcomes = []
    for pk, attempts in pairs:
        try:
            outcomes.append(deliver(pk, attempts))
        except Exception:  # one broken delivery must not hold up the rest; its hold lapses for the sweep
            logger.exception("Hook delivery %s failed unexpectedly", pk)
            outcomes.append(f"{pk}: crashed")
    return "; ".join(outcomes)


def deliver(pk: int, attempts: int) -> str:
    """Make attempt number `attempts + 1` at a delivery, if nobody has made it yet."""
    now = timezone.now()
    attempt = attempts + 1
    if attempt > max_attempts():
        return f"{pk}: out of attempts"
    claimed = HookDelivery.objects.filter(pk=pk, status__in=OPEN, attempts=attempts).update(
        attempts=attempt, next_attempt_at=now + LEASE, last_attempt_at=now
    )
    if not claimed:
        return f"{pk}: already taken or done"
    item = HookDelivery.objects.select_related("subscription").filter(pk=pk).first()
    if item is None:
        return f"{pk}: unsubscribed meanwhile"
    subscription = item.subscription
    if not subscription.active:
        _finish(item, attempt, DeliveryStatus.CANCELLED, error="The subscription was switched off.")
        return f"{pk}: cancelled"

    body = json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False).encode()
    answer = targets.post(subscription.target_url, body, signing.headers(subscription.secret, item.webhook_id, body))
    recorded = {"response_code": answer.status, "response_ms": answer.ms, "response_body": answer.body}
    if answer.ok:
        _finish(item, attempt, DeliveryStatus.SUCCEEDED, delivered_at=timezone.now(), **recorded)
        HookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(failing_since=None)
        return f"{pk}: delivered ({answer.status})"
    if answer.status == 410:
        _finish(item, attempt, DeliveryStatus.FAILED, error="The target answered 410 Gone.", **recorded)
        switch_off(subscription, "The target answered 410 Gone: it no longer wants these events.", notify=False)
        return f"{pk}: target gone, subscription switched off"
    if answer.refused or attempt >= max_attempts():
        error = answer.error if answer.refused else f"Gave up after {attempt} attempts. {answer.error}"
        _finish(item, attempt, DeliveryStatus.FAILED, error=error, **recorded)
        outcome = "refused" if answer.refused else "failed"
    else:
        retry_at = timezone.now() + retry_delay(attempt)
        _finish(item, attempt, DeliveryStatus.RETRYING, error=answer.error, next_attempt_at=retry_at, **recorded)
        outcome = "will retry"
    _note_failure(subscription, answer.error)
    return f"{pk}: {outcome} ({answer.error})"


def _finish(item: HookDelivery, attempt: int, status: str, **fields) -> None:
    fields.setdefault("next_attempt_at", None)
    # Only while the attempt is still ours (a lapsed lease may have let another worker in).
    if HookDelivery.objects.filter(pk=item.pk, attempts=attempt, status__in=OPEN).update(status=status, **fields):
        metrics.outbound_delivery_finished(status, fields.get("response_code"))


def _note_failure(subscription: HookSubscription, error: str) -> None:
    now = timezone.now()
    HookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(failing_since=now)
    since = subscription.failing_since or now
    days = settings.HOOKS_DISABLE_AFTER_DAYS
    if since <= now - timedelta(days=days):
        reason = (
            f"Every delivery since {since:%Y-%m-%d %H:%M} UTC failed ({days} days or more); "
            f"the last error: {error or 'unknown'}"
        )
        switch_off(subscription, reason, notify=True)


def switch_off(subscription: HookSubscription, reason: str, *, notify: bool) -> bool:
    """Deactivate a subscription (once), cancel what it still had to send, audit it and, when
    `notify`, email the client's owners. Returns whether this call switched it off."""
    now = timezone.now()
    switched = HookSubscription.objects.filter(pk=subscription.pk, active=True).update(
        active=False, disabled_at=now, disabled_reason=reason
    )
    if not switched:
        return False
    cancel_waiting(subscription.pk, "The subscription was switched off.")
    audit.record(
        "hook.disabled",
        tenant=subscription.tenant,
        target=subscription,
        subscription=subscription.pk,
        event=subscription.event,
        reason=reason,
    )
    if notify:
        notify_owners(subscription, reason)
    return True


def cancel_waiting(subscription_pk: int, why: str) -> int:
    return HookDelivery.objects.filter(subscription_id=subscription_pk, status__in=OPEN).update(
        status=DeliveryStatus.CANCELLED, next_attempt_at=None, error=why
    )


def notify_owners(subscription: HookSubscription, reason: str) -> None:
    tenant = subscription.tenant
    owners = Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_related("user")
    recipients = list(
        dict.fromkeys(email for email in [tenant.contact_email, *(m.user.email for m in owners)] if email)
    )
    if not recipients:
        return
    host = urlsplit(subscription.target_url).hostname or "its target"
    message = (
        f"Hello,\n\nThe commerce hub has switched off the webhook subscription #{subscription.pk} of {tenant.name} "
        f"for {subscription.event} events to {host}.\n\n{reason}\n\n"
        "No further events will be sent to it. Once the receiving end works again, subscribe again "
        "(for a Zapier zap: turn the zap off and on).\n"
    )
    try:
        send_mail(f"Webhook to {host} switched off", message, None, recipients)
    except Exception:  # mail trouble must not undo the switch-off
        logger.exception("Could not email the owners of %s about hook subscription %s", tenant, subscription.pk)


# --- The sweep ---------------------------------------------------------------------------------------


def sweep(now=None, limit: int = 2000) -> str:
    """Queue retries that are due, deliveries the queue lost and ones whose worker died; fail the
    ones whose last attempt died with its worker."""
    now = now or timezone.now()
    due = list(
        HookDelivery.objects.filter(status__in=OPEN, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", "attempts", "subscription_id")[:limit]
    )
    spent = [pk for pk, attempts, _ in due if attempts >= max_attempts()]
    if spent:
        HookDelivery.objects.filter(pk__in=spent, status__in=OPEN).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            error="The last attempt never finished (its worker stopped).",
        )
    ready = [row for row in due if row[1] < max_attempts()]
    # Held for a queue turn, so the next sweep does not queue them again meanwhile.
    HookDelivery.objects.filter(pk__in=[pk for pk, *_ in ready], status__in=OPEN).update(
        next_attempt_at=now + REQUEUE_AFTER
    )
    enqueue(ready)
    return f"{len(ready)} deliveries queued, {len(spent)} given up"
