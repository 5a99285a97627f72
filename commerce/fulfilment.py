"""Fulfilling orders: a tracking number, a carrier and the lines shipped, pushed to the order's
platform through `commerce.pushes` (commerce never calls a connector itself).

`fulfil(order, tracking_number, carrier, lines)` checks what it is given and stores a `Fulfilment`.
The carrier, however it is written ("UPS", "united parcel service"), becomes the hub's code and must
be one the order's platform accepts, or the error lists those it does. Quantities must not exceed
what remains unfulfilled, counting every fulfilment of the order that has not failed; no lines
means every line still unfulfilled. Once the transaction commits, a task pushes it.

The push claims the row with one conditional UPDATE (pending/retrying → pushing, with a lock that
lapses), so two workers never push one fulfilment at once, and one whose worker died gives it back
when its lock lapses (`sweep`). The connectors read the platform's order before creating anything,
so a push repeated after a lost answer finds the fulfilment that landed instead of shipping twice.
The outcome is recorded on the row:
- pushed, with the platform's id. Only now does the order's `fulfillment_status` become partial or
  fulfilled in the hub, and `records_written` announces the change (the order.fulfilled hook);
- retrying: a passing failure (429, 5xx, a timeout, or an error of ours), tried again with
  exponential backoff until FULFILMENT_MAX_ATTEMPTS attempts, then failed;
- failed, with the platform's reason, for a person; its lines are free to be fulfilled again.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from . import carriers, metrics, pushes, signals
from .models import (
    FulfillmentStatus,
    Fulfilment,
    FulfilmentRule,
    FulfilmentSettings,
    FulfilmentSource,
    NotifyVia,
    Order,
    OrderLine,
    OrderStatus,
)
from .models import FulfilmentPushStatus as Status
from .signals import records_written

logger = logging.getLogger(__name__)

PUSH_TASK = "commerce.fulfilment.push_many"
LOCK = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)
# Fulfilments left pending this long were never picked up (the queue lost them): the sweep takes them.
UNCLAIMED_AFTER = timedelta(minutes=2)
QUEUE_CHUNK = 50
# A sweep hands over to the next one (every minute) after this long.
SWEEP_SECONDS = 50
CLAIMABLE = (Status.PENDING, Status.RETRYING)
# Every fulfilment but a failed one holds its lines.
ACTIVE = (Status.PENDING, Status.PUSHING, Status.PUSHED, Status.RETRYING)
IN_FLIGHT = (Status.PENDING, Status.PUSHING, Status.RETRYING)
WAITING = (FulfillmentStatus.UNFULFILLED, FulfillmentStatus.PARTIAL)
MAX_TRACKING_CHARS = 128


class FulfilmentError(ValueError):
    """What was asked cannot be fulfilled; the message is for people. `field` names the input at
    fault (the API's per-field errors); `accepted` lists the carriers the platform takes."""

    def __init__(self, message: str, *, field: str = "non_field_errors", accepted: list[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.accepted = accepted


# --- What is left to ship ----------------------------------------------------------------------------


def waiting_orders(tenant) -> QuerySet[Order]:
    """The tenant's orders still to ship, oldest first: not cancelled, nothing or only part fulfilled."""
    return (
        Order.objects.for_tenant(tenant)
        .filter(fulfillment_status__in=WAITING)
        .exclude(status=OrderStatus.CANCELLED)
        .order_by("placed_at", "pk")
    )


@dataclass
class Remaining:
    """What is left to fulfil on one order, counting every fulfilment that has not failed."""

    lines: dict[int, int] = field(default_factory=dict)  # line id → quantity still to fulfil
    labels: dict[int, str] = field(default_factory=dict)  # line id → "title (SKU)"
    skus: dict[int, str] = field(default_factory=dict)
    taken_whole: bool = False  # a fulfilment of "everything left" holds the whole order

    @property
    def anything(self) -> bool:
        if self.taken_whole:
            return False
        return any(quantity > 0 for quantity in self.lines.values()) if self.lines else True


def remaining_by_order(order_ids: Iterable[int]) -> dict[int, Remaining]:
    """What is left on each order, in two queries whatever their number."""
    ids = list(order_ids)
    left = {pk: Remaining() for pk in ids}
    for pk, order_id, quantity, title, sku in OrderLine.objects.filter(order_id__in=ids).values_list(
        "pk", "order_id", "quantity", "title", "sku"
    ):
        left[order_id].lines[pk] = quantity
        left[order_id].labels[pk] = f"{title} ({sku})" if sku else title
        left[order_id].skus[pk] = sku
    for order_id, lines in Fulfilment.objects.filter(order_id__in=ids, status__in=ACTIVE).values_list(
        "order_id", "lines"
    ):
        if not lines:
            left[order_id].taken_whole = True
            continue
        for line_id, quantity in lines:
            if line_id in left[order_id].lines:
                left[order_id].lines[line_id] -= quantity
    for remaining in left.values():
        remaining.lines = {pk: 0 if remaining.taken_whole else max(0, q) for pk, q in remaining.lines.items()}
    return left


def lines_for_skus(order: Order, wanted: Sequence[tuple[str, int | None]], left: Remaining) -> list[tuple[int, int]]:
    """(line id, quantity) for (SKU, quantity) pairs; no quantity takes all that is left of the SKU.
    A SKU on several lines is spread over them in order."""
    out: list[tuple[int, int]] = []
    for sku, quantity in wanted:
        line_ids = [pk for pk, line_sku in left.skus.items() if line_sku == sku]
        if not line_ids:
            raise FulfilmentError(f"The SKU “{sku}” is not on order #{order.number}.", field="lines")
        if quantity is None:
            quantity = sum(left.lines[pk] for pk in line_ids)
            if not quantity:
                raise FulfilmentError(f"Nothing of “{sku}” is left to fulfil on order #{order.number}.", field="lines")
        for pk in line_ids:
            take = min(quantity, left.lines[pk])
            if take:
                out.append((pk, take))
                quantity -= take
        if quantity:  # more than is left: the last line takes it, and `fulfil` refuses it with the figures
            out.append((line_ids[-1], quantity))
    return out


# --- Fulfilling --------------------------------------------------------------------------------------


def accepted_carriers(order: Order) -> list[str]:
    """The hub carrier codes the order's platform accepts."""
    return list(pushes.pusher().carriers(order.tenant_id, order.connection_id))


def resolve_carrier(order: Order, given: str, accepted: list[str] | None = None) -> str:
    """The hub code for a carrier as people write it, if the order's platform accepts it."""
    if accepted is None:
        accepted = accepted_carriers(order)
    if not accepted:
        raise FulfilmentError(
            f"Orders from {metrics.channel_label(order.channel)} cannot be fulfilled through the hub: "
            "its platform takes no fulfilments from it."
        )
    if not (given or "").strip():
        names = ", ".join(carriers.CARRIERS[code].name for code in accepted if code in carriers.CARRIERS)
        raise FulfilmentError(f"Choose a carrier. Accepted: {names}.", field="carrier", accepted=accepted)
    try:
        return carriers.normalise(given, accepted)
    except carriers.UnknownCarrier as unknown:
        raise FulfilmentError(str(unknown), field="carrier", accepted=accepted) from None


def fulfil(
    order: Order,
    tracking_number: str,
    carrier: str,
    lines: Sequence[tuple[int, int]] | None = None,
    *,
    notify_customer: bool | None = None,
    by=None,
    source: str = FulfilmentSource.MANUAL,
    rule: FulfilmentRule | None = None,
    accepted: list[str] | None = None,
    queue: bool = True,
) -> Fulfilment:
    """Store a fulfilment of `order` and queue its push once the transaction commits.

    `lines` are (order line id, quantity); none means every line still unfulfilled. `notify_customer`
    defaults to the tenant's setting. `accepted` (the platform's carriers) saves a lookup when the
    caller has it. Raises FulfilmentError, saying why, when anything is wrong."""
    tracking_number = (tracking_number or "").strip()
    if len(tracking_number) > MAX_TRACKING_CHARS:
        raise FulfilmentError(
            f"A tracking number has at most {MAX_TRACKING_CHARS} characters.", field="tracking_number"
        )
    code = resolve_carrier(order, carrier, accepted)
    if notify_customer is None:
        notify_customer = FulfilmentSettings.of(order.tenant_id).notify_customers
    with transaction.atomic():
        # Locked, so two fulfilments of one order never both take its last units.
        order = Order.objects.select_for_update().get(pk=order.pk, tenant_id=order.tenant_id)
        if order.status == OrderStatus.CANCELLED:
            raise FulfilmentError(f"Order #{order.number} is cancelled.")
        if order.fulfillment_status == FulfillmentStatus.FULFILLED:
            raise FulfilmentError(f"Order #{order.number} is already fulfilled.")
        left = remaining_by_order([order.pk])[order.pk]
        wanted = _checked_lines(order, lines or [], left)
        if tracking_number:
            twin = Fulfilment.objects.filter(order=order, status__in=ACTIVE, tracking_number=tracking_number).first()
            if twin is not None:
                raise FulfilmentError(
                    f"Order #{order.number} already has a fulfilment with the tracking number "
                    f"{tracking_number} (fulfilment {twin.pk}).",
                    field="tracking_number",
                )
        fulfilment = Fulfilment.objects.create(
            tenant_id=order.tenant_id,
            order=order,
            connection_id=order.connection_id,
            tracking_number=tracking_number,
            carrier=code,
            tracking_url=carriers.tracking_url(code, tracking_number),
            lines=[[line_id, quantity] for line_id, quantity in wanted],
            notify_customer=notify_customer,
            source=source,
            rule=rule,
            created_by=by if getattr(by, "pk", None) else None,
        )
        if queue:
            pk = fulfilment.pk
            transaction.on_commit(lambda: queue_pushes([pk]))
    return fulfilment


def _checked_lines(order: Order, lines: Sequence[tuple[int, int]], left: Remaining) -> list[tuple[int, int]]:
    if not lines:
        if not left.anything:
            raise FulfilmentError(f"Nothing is left to fulfil on order #{order.number}.", field="lines")
        return []
    merged: dict[int, int] = {}
    for line_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise FulfilmentError("Each quantity is a whole number of at least 1.", field="lines")
        merged[line_id] = merged.get(line_id, 0) + quantity
    for line_id, quantity in merged.items():
        if line_id not in left.lines:
            raise FulfilmentError(f"Line {line_id} is not a line of order #{order.number}.", field="lines")
        if quantity > left.lines[line_id]:
            raise FulfilmentError(
                f"Only {left.lines[line_id]} of “{left.labels[line_id]}” left to fulfil on order "
                f"#{order.number}, not {quantity}.",
                field="lines",
            )
    return sorted(merged.items())


def queue_pushes(ids: Iterable[int]) -> None:
    """Queue the pushes of these fulfilments, a few per task (call it once they are committed)."""
    from django_q.tasks import async_task

    ids = list(ids)
    for start in range(0, len(ids), QUEUE_CHUNK):
        chunk = ids[start : start + QUEUE_CHUNK]
        async_task(PUSH_TASK, chunk, task_name=f"fulfilment-push-{chunk[0]}")


# --- Pushing -----------------------------------------------------------------------------------------


def push_many(fulfilment_ids: list[int]) -> str:
    """The task: push each fulfilment, one after another."""
    outcomes = [push(pk) for pk in fulfilment_ids]
    return f"{len(outcomes)} fulfilments: " + "; ".join(outcomes)[:500]


def push(fulfilment_id: int) -> str:
    """Claim one fulfilment, push it, record what happened; returns it, for the task's result."""
    now = timezone.now()
    claimed = Fulfilment.objects.filter(pk=fulfilment_id, status__in=CLAIMABLE).update(
        status=Status.PUSHING,
        attempts=F("attempts") + 1,
        locked_until=now + LOCK,
        next_attempt_at=None,
        updated_at=now,
    )
    if not claimed:
        return f"{fulfilment_id}: already taken or done"
    fulfilment = Fulfilment.objects.select_related("order").get(pk=fulfilment_id)
    try:
        request = push_request(fulfilment)
    except FulfilmentError as problem:
        _finish(fulfilment, Status.FAILED, error=str(problem))
        return f"{fulfilment_id}: failed: {problem}"
    try:
        result = pushes.pusher().fulfil(request)
    except Exception as problem:  # our fault or a connector's, not the platform's answer: retried, then failed
        logger.exception("Fulfilment %s: the push raised", fulfilment.pk)
        result = pushes.PushResult(ok=False, message=f"{type(problem).__name__}: {problem}", retryable=True)
    return record(fulfilment, result)


def push_request(fulfilment: Fulfilment) -> pushes.FulfilmentPush:
    lines: tuple[tuple[str, int], ...] = ()
    if fulfilment.lines:
        external = dict(
            OrderLine.objects.filter(
                order_id=fulfilment.order_id, pk__in=[pk for pk, _ in fulfilment.lines]
            ).values_list("pk", "external_id")
        )
        if any(pk not in external for pk, _ in fulfilment.lines):
            raise FulfilmentError("Some of its lines are no longer on the order (the platform changed it).")
        lines = tuple((external[pk], quantity) for pk, quantity in fulfilment.lines)
    return pushes.FulfilmentPush(
        tenant_id=fulfilment.tenant_id,
        connection_id=fulfilment.connection_id,
        order_external_id=fulfilment.order.external_id,
        tracking_number=fulfilment.tracking_number,
        carrier=fulfilment.carrier,
        lines=lines,
        tracking_url=fulfilment.tracking_url,
        # When the hub tells the customer itself, the platform must not email them as well.
        notify_customer=fulfilment.notify_customer and not _hub_notifies(fulfilment.tenant_id),
        reference=str(fulfilment.pk),
    )


def _hub_notifies(tenant_id: int) -> bool:
    return FulfilmentSettings.of(tenant_id).notify_via == NotifyVia.HUB


def record(fulfilment: Fulfilment, result: pushes.PushResult) -> str:
    """Record the platform's answer to a claimed fulfilment's push."""
    pk = fulfilment.pk
    if result.ok:
        with transaction.atomic():
            if _finish(fulfilment, Status.PUSHED, remote_id=result.remote_id):
                order_shipped(fulfilment.order_id)
                if fulfilment.notify_customer and _hub_notifies(fulfilment.tenant_id):
                    tenant_id = fulfilment.tenant_id
                    transaction.on_commit(
                        lambda: signals.fulfilment_shipped.send(
                            sender=Fulfilment, tenant_id=tenant_id, fulfilment_id=pk
                        )
                    )
        return f"{pk}: pushed {result.remote_id}"
    message = result.message or "The platform refused the fulfilment and gave no reason."
    if not result.retryable:
        _finish(fulfilment, Status.FAILED, error=message)
        return f"{pk}: failed: {message}"
    if fulfilment.attempts >= settings.FULFILMENT_MAX_ATTEMPTS:
        _finish(fulfilment, Status.FAILED, error=f"Gave up after {fulfilment.attempts} attempts. {message}")
        return f"{pk}: gave up: {message}"
    _finish(fulfilment, Status.RETRYING, error=message, retry_at=timezone.now() + backoff(fulfilment.attempts))
    return f"{pk}: retrying: {message}"


def _finish(
    fulfilment: Fulfilment, status: str, *, error: str = "", remote_id: str = "", retry_at: datetime | None = None
) -> bool:
    now = timezone.now()
    changes = {"status": status, "last_error": error, "next_attempt_at": retry_at, "locked_until": None}
    if status == Status.PUSHED:
        changes.update(remote_id=remote_id[:255], pushed_at=now)
    # Only while it is still ours: a push that outlived its lock may have been taken over meanwhile.
    return bool(Fulfilment.objects.filter(pk=fulfilment.pk, status=Status.PUSHING).update(**changes, updated_at=now))


def backoff(attempts: int) -> timedelta:
    """FULFILMENT_RETRY_BASE_SECONDS, then twice as long each time, at most an hour, with up to 20 %
    jitter so the retries of a bulk fulfilment do not all come back at once."""
    base = settings.FULFILMENT_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    seconds = min(base, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * (1 + random.random() * 0.2))  # noqa: S311 (jitter)


def order_shipped(order_id: int) -> None:
    """After a push landed: the order's fulfillment_status from the fulfilments its platform has
    accepted, and `records_written` for the change (inside the caller's transaction, as ingest
    sends it, so receivers act once it commits)."""
    order = Order.objects.select_for_update().get(pk=order_id)
    status = shipped_status(order)
    if status is None or status == order.fulfillment_status or order.fulfillment_status == FulfillmentStatus.FULFILLED:
        return
    Order.objects.filter(pk=order.pk).update(fulfillment_status=status, updated_at=timezone.now())
    metrics.invalidate(order.tenant_id)
    records_written.send(
        sender=Order,
        tenant_id=order.tenant_id,
        connection_id=order.connection_id,
        stream="orders",
        created=[],
        updated=[order.pk],
    )


def shipped_status(order: Order) -> str | None:
    """Fulfilled when the pushed fulfilments cover every line (or one took everything left),
    partial when they cover some; None without any pushed fulfilment."""
    pushed = list(Fulfilment.objects.filter(order=order, status=Status.PUSHED).values_list("lines", flat=True))
    if not pushed:
        return None
    if any(not lines for lines in pushed):
        return FulfillmentStatus.FULFILLED
    shipped: dict[int, int] = defaultdict(int)
    for lines in pushed:
        for line_id, quantity in lines:
            shipped[line_id] += quantity
    ordered = dict(OrderLine.objects.filter(order=order).values_list("pk", "quantity"))
    if ordered and all(shipped[pk] >= quantity for pk, quantity in ordered.items()):
        return FulfillmentStatus.FULFILLED
    return FulfillmentStatus.PARTIAL


# --- The sweep ---------------------------------------------------------------------------------------


def due(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Fulfilments the sweep should push: retries that are due, pending ones the queue never
    delivered, and ones whose worker died mid-push (their lock lapsed)."""
    now = now or timezone.now()
    stalled = Fulfilment.objects.filter(status=Status.PUSHING, locked_until__lt=now)
    stalled.filter(attempts__gte=settings.FULFILMENT_MAX_ATTEMPTS).update(
        status=Status.FAILED,
        locked_until=None,
        last_error=f"Gave up: the push stopped midway (its worker died) {settings.FULFILMENT_MAX_ATTEMPTS} times.",
        updated_at=now,
    )
    stalled.update(
        status=Status.RETRYING,
        locked_until=None,
        next_attempt_at=now,
        last_error="The last push stopped midway (its worker died); trying again.",
        updated_at=now,
    )
    return list(
        Fulfilment.objects.filter(
            Q(status=Status.RETRYING, next_attempt_at__lte=now)
            | Q(status=Status.PENDING, created_at__lt=now - UNCLAIMED_AFTER)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def sweep(now: datetime | None = None) -> str:
    """Every minute (a standing schedule, config/tasks.py): push what `due` finds, here, one after
    another, so a backlog never floods the queue; hand over to the next sweep after a while."""
    deadline = time.monotonic() + SWEEP_SECONDS
    done = 0
    for pk in due(now):
        push(pk)
        done += 1
        if time.monotonic() >= deadline:
            break
    return f"{done} fulfilments pushed"
