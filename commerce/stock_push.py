"""The tasks that push the hub's stock figures to the platforms, and the low-stock email.

A task pushes one listing (`push_listing`). It claims the listing with one conditional UPDATE
(queued/retrying and due → pushing, with a lock that lapses), so two workers never push one
listing at once, reads the hub's figure as it is then, and hands it to `commerce.pushes`. The
outcome is recorded on the listing, where the admin, the dashboard and the API show it:

- landed: `pushed`, with the quantity, the platform's id and the time; when the figure changed
  while the push was on its way, another push is queued at once;
- refused for a passing reason (429, 5xx, a timeout: `PushResult.retryable`): `retrying`, again
  after 30 s, 1 min, 2 min… at most an hour (STOCK_PUSH_RETRY_BASE_SECONDS), until
  STOCK_PUSH_MAX_ATTEMPTS attempts, then `failed`;
- refused for good: `failed`, with the platform's reason, until a person pushes again.

`sweep` (once a minute) queues the retries that are due, pushes the queue lost, and listings
whose worker died mid-push. Tasks take ids and may run twice: a push sets an absolute quantity.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.utils import timezone

from tenants.models import Membership, Role, Tenant

from . import pushes
from .models import PushStatus, StockItem, StockListing
from .stock import enqueue, queue_pushes, reorder_point

logger = logging.getLogger(__name__)

LOCK = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
# A queued push the queue has not delivered after this long is queued again by the sweep.
UNCLAIMED_AFTER = timedelta(minutes=2)
CLAIMABLE = (PushStatus.QUEUED, PushStatus.RETRYING)


def push_listing(listing_id: int) -> str:
    now = timezone.now()
    claimed = StockListing.objects.filter(pk=listing_id, push_status__in=CLAIMABLE, next_push_at__lte=now).update(
        push_status=PushStatus.PUSHING, push_attempts=F("push_attempts") + 1, push_locked_until=now + LOCK
    )
    if not claimed:
        return "not due, or taken by another worker"
    listing = StockListing.objects.select_related("item").filter(pk=listing_id).first()
    if listing is None:
        return "the listing is gone"
    item = listing.item
    quantity, version, attempt = item.on_hand, item.version, listing.push_attempts
    push = pushes.StockPush(
        tenant_id=listing.tenant_id,
        connection_id=listing.connection_id,
        sku=item.sku,
        quantity=quantity,
        location_id=listing.location_id,
        product_external_id=listing.product_external_id,
        variant_external_id=listing.variant_external_id,
    )
    try:
        result = pushes.pusher().set_stock(push)
    except Exception as error:  # a bug or an outage on our side: tried again like a 5xx
        logger.exception("Stock push of listing %s raised", listing_id)
        result = pushes.PushResult(ok=False, message=f"{type(error).__name__}: {error}", retryable=True)
    mine = StockListing.objects.filter(pk=listing_id, push_status=PushStatus.PUSHING, push_attempts=attempt)
    if result.ok:
        mine.update(
            push_status=PushStatus.PUSHED,
            pushed_quantity=quantity,
            pushed_version=version,
            pushed_at=timezone.now(),
            remote_id=result.remote_id[:255],
            push_message="",
            next_push_at=None,
            push_locked_until=None,
        )
        # The figure moved while the push was on its way: push the new one.
        if StockItem.objects.filter(pk=item.pk).exclude(version=version).exists():
            again = StockListing.objects.filter(pk=listing_id, push_status=PushStatus.PUSHED).update(
                push_status=PushStatus.QUEUED, push_attempts=0, next_push_at=timezone.now()
            )
            if again:
                enqueue([listing_id])
        return f"{item.sku}: pushed {quantity}"
    if result.retryable and attempt < settings.STOCK_PUSH_MAX_ATTEMPTS:
        mine.update(
            push_status=PushStatus.RETRYING,
            push_message=result.message,
            next_push_at=timezone.now() + backoff(attempt),
            push_locked_until=None,
        )
        return f"{item.sku}: will retry ({result.message})"
    message = result.message if not result.retryable else f"Gave up after {attempt} attempts. {result.message}"
    mine.update(push_status=PushStatus.FAILED, push_message=message, next_push_at=None, push_locked_until=None)
    return f"{item.sku}: failed ({message})"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... at most an hour, with up to 20 % jitter so retries do not bunch."""
    base = settings.STOCK_PUSH_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    seconds = min(base, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * (1 + random.random() * 0.2))  # noqa: S311 (jitter)


def push_again(listings) -> int:
    """Queue a fresh push of the hub's figure to these listings (a person's "Push again")."""
    return len(queue_pushes(listings))


def sweep(now=None, limit: int = 1000) -> str:
    """Queue pushes that are due: retries, queued ones never delivered, and ones whose worker died."""
    now = now or timezone.now()
    StockListing.objects.filter(push_status=PushStatus.PUSHING, push_locked_until__lt=now).update(
        push_status=PushStatus.RETRYING, push_locked_until=None, next_push_at=now
    )
    due = list(
        StockListing.objects.filter(
            Q(push_status=PushStatus.RETRYING, next_push_at__lte=now)
            | Q(push_status=PushStatus.QUEUED, next_push_at__lte=now - UNCLAIMED_AFTER)
        )
        .order_by("next_push_at")
        .values_list("pk", flat=True)[:limit]
    )
    enqueue(due)
    return f"{len(due)} stock pushes queued"


# --- Low-stock email ------------------------------------------------------------------------------


def email_low_stock(tenant_id: int, item_ids: list[int]) -> str:
    """Email the tenant's owners the SKUs that fell to their reorder point (those still low)."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "no such tenant"
    items = list(
        StockItem.objects.for_tenant(tenant)
        .filter(pk__in=item_ids, low_since__isnull=False)
        .annotate(point=reorder_point(tenant))
        .filter(on_hand__lte=F("point"))
        .order_by("on_hand", "sku")
    )
    owners = Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_related("user")
    recipients = list(dict.fromkeys(m.user.email for m in owners if m.user.email))
    if not items or not recipients:
        return "nothing to send"
    lines = [f"- {item.sku} {item.title}: {item.on_hand} left (reorder at {item.point})" for item in items]
    subject = f"Low stock: {items[0].sku}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")
    message = (
        f"Hello,\n\nThese SKUs of {tenant.name} are at or below their reorder point in the commerce hub:\n\n"
        + "\n".join(lines)
        + "\n\nThe stock page of your dashboard lists every SKU with its channels.\n"
    )
    send_mail(subject, message, None, recipients)
    return f"emailed {len(recipients)} owner(s) about {len(items)} SKU(s)"
