"""Changes into deliveries. Every function here runs after the change has committed (the receivers
in `webhooks.signals` register them with `transaction.on_commit`), so a rolled-back change sends
nothing. Each first asks which events the tenant is subscribed to, in one indexed query, and does
nothing more for a tenant with no subscription to them; the rest is a constant number of queries
per page of records, never one per row.

A state such as "fulfilled" or "low on stock" is announced when it is reached, not on every later
write of the object: `HookMark` keeps what was last announced for each object.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import Campaign
from commerce.models import Customer, FulfillmentStatus, InventoryLevel, Order, OrderStatus, ProductVariant
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus

from ..models import HookDelivery, HookEvent, HookMark, HookSubscription, Milestone, MilestoneKind
from . import delivery, events
from .shaping import apply_template
from .signing import new_webhook_id

logger = logging.getLogger(__name__)

E = HookEvent
ORDER_EVENTS = {E.ORDER_CREATED, E.ORDER_UPDATED, E.ORDER_FULFILLED, E.ORDER_REFUNDED}
INTEGRATION_EVENTS = {E.INTEGRATION_CONNECTED, E.INTEGRATION_FAILED}
CONNECTED, FAILED = "connected", "failed"
CONFIRMS_CONNECTED = (ConnectionStatus.CONNECTED,)
CONFIRMS_FAILED = (ConnectionStatus.FAILING, ConnectionStatus.NEEDS_REAUTH)


def subscribed_events(tenant_id: int) -> set[str]:
    """The events the tenant has an active subscription to (one query on the subscription index)."""
    return set(
        HookSubscription.objects.filter(tenant_id=tenant_id, active=True)
        .order_by()
        .values_list("event", flat=True)
        .distinct()
    )


def publish(tenant_id: int, event: str, items: list[dict]) -> list[HookDelivery]:
    """One delivery per active subscription to `event` and item of data, stored and queued."""
    if not items:
        return []
    subscriptions = list(
        HookSubscription.objects.filter(tenant_id=tenant_id, event=event, active=True).only("pk", "payload_template")
    )
    now = timezone.now()
    rows = []
    for subscription in subscriptions:
        for data in items:
            webhook_id = new_webhook_id()
            body = events.envelope(event, data, webhook_id=webhook_id, timestamp=now)
            rows.append(
                HookDelivery(
                    tenant_id=tenant_id,
                    subscription=subscription,
                    event=event,
                    webhook_id=webhook_id,
                    payload=apply_template(subscription.payload_template, body),
                    next_attempt_at=now + delivery.REQUEUE_AFTER,
                    created_at=now,
                )
            )
    if rows:
        HookDelivery.objects.bulk_create(rows, batch_size=500)
        delivery.enqueue((row.pk, 0, row.subscription_id) for row in rows)
    return rows


# --- Commerce records (commerce.signals.records_written) ----------------------------------------------


def records_written(tenant_id: int, stream: str, created: list[int], updated: list[int]) -> None:
    subscribed = subscribed_events(tenant_id)
    if stream == "orders":
        if subscribed & ORDER_EVENTS:
            _orders(tenant_id, created, updated, subscribed)
        check_milestones(tenant_id, subscribed)
    elif stream == "customers" and E.CUSTOMER_CREATED in subscribed and created:
        cutoff = _backfill_cutoff()
        new = Customer.objects.filter(tenant_id=tenant_id, pk__in=created).filter(
            Q(platform_created_at__gte=cutoff) | Q(platform_created_at__isnull=True, created_at__gte=cutoff)
        )
        publish(tenant_id, E.CUSTOMER_CREATED, events.customers(new.order_by("pk")))
    elif stream in ("inventory", "products") and E.PRODUCT_LOW_STOCK in subscribed:
        _low_stock(tenant_id, stream, [*created, *updated])


def _backfill_cutoff():
    return timezone.now() - timedelta(days=settings.HOOKS_BACKFILL_DAYS)


def _orders(tenant_id: int, created: list[int], updated: list[int], subscribed: set[str]) -> None:
    cutoff = _backfill_cutoff()
    rows = list(
        Order.objects.filter(tenant_id=tenant_id, pk__in=[*created, *updated])
        .order_by("pk")
        .values_list("pk", "placed_at", "fulfillment_status", "financial_status")
    )
    created_set = set(created)
    # An old order arriving for the first time is history (a first sync's backfill): it is marked,
    # so it is not announced later either, but it is not announced now.
    history = {pk for pk, placed_at, *_ in rows if pk in created_set and placed_at < cutoff}
    by_event: dict[str, list[int]] = {}
    if E.ORDER_CREATED in subscribed:
        by_event[E.ORDER_CREATED] = [pk for pk, *_ in rows if pk in created_set and pk not in history]
    if E.ORDER_UPDATED in subscribed:
        by_event[E.ORDER_UPDATED] = [pk for pk, *_ in rows if pk not in created_set]
    if E.ORDER_FULFILLED in subscribed:
        fulfilled = {pk: "fulfilled" for pk, _, status, _ in rows if status == FulfillmentStatus.FULFILLED}
        by_event[E.ORDER_FULFILLED] = sorted(_mark(tenant_id, E.ORDER_FULFILLED, fulfilled) - history)
    if E.ORDER_REFUNDED in subscribed:
        refunded = {pk: status for pk, *_, status in rows if status in events.REFUNDED}
        by_event[E.ORDER_REFUNDED] = sorted(_mark(tenant_id, E.ORDER_REFUNDED, refunded) - history)
    wanted = {pk for pks in by_event.values() for pk in pks}
    if not wanted:
        return
    data = {item["id"]: item for item in events.orders(Order.objects.filter(pk__in=wanted).order_by("pk"))}
    for event, pks in by_event.items():
        publish(tenant_id, event, [data[pk] for pk in pks if pk in data])


def _low_stock(tenant_id: int, stream: str, pks: list[int]) -> None:
    if not pks:
        return
    # A variant linked to a SKU the hub keeps across channels is announced by that SKU's figure
    # (`stock_low`), not by its platform's own.
    if stream == "inventory":
        variant_ids = (
            InventoryLevel.objects.filter(tenant_id=tenant_id, pk__in=pks)
            .filter(variant__stock_listings__isnull=True)
            .values_list("variant_id")
        )
    else:
        variant_ids = (
            ProductVariant.objects.filter(tenant_id=tenant_id, product_id__in=pks)
            .filter(stock_listings__isnull=True)
            .values_list("pk")
        )
    rows = list(events.stock(tenant_id, variant_ids).order_by("pk"))
    low = {row["pk"]: row for row in rows if row["available"] <= row["point"]}
    restocked = [row["pk"] for row in rows if row["pk"] not in low]
    if restocked:
        # Back above the reorder point: the next fall is announced again.
        HookMark.objects.filter(tenant_id=tenant_id, topic=E.PRODUCT_LOW_STOCK, object_id__in=restocked).delete()
    fresh = _mark(tenant_id, E.PRODUCT_LOW_STOCK, dict.fromkeys(low, "low"))
    publish(tenant_id, E.PRODUCT_LOW_STOCK, events.low_stock(low[pk] for pk in sorted(fresh)))


# The keys of a product.low_stock event's data, as `events.low_stock` builds them for a variant.
LOW_STOCK_KEYS = ("variant_id", "product_id", "sku", "title", "variant_title", "available", "reorder_point")


def stock_low(tenant_id: int, items: list[dict]) -> None:
    """SKUs whose hub figure fell to their reorder point (commerce.signals.stock_low: commerce marks
    each fall, so each is announced once), as product.low_stock events with the SKU's stock item."""
    if items and E.PRODUCT_LOW_STOCK in subscribed_events(tenant_id):
        data = [
            {**{key: item[key] for key in LOW_STOCK_KEYS}, "stock_item_id": item["stock_item_id"]} for item in items
        ]
        publish(tenant_id, E.PRODUCT_LOW_STOCK, data)


def _mark(tenant_id: int, topic: str, states: dict[int, str]) -> set[int]:
    """Record each object's state under `topic`; return the objects whose state is new."""
    if not states:
        return set()
    known = dict(
        HookMark.objects.filter(tenant_id=tenant_id, topic=topic, object_id__in=list(states)).values_list(
            "object_id", "value"
        )
    )
    fresh = {pk for pk, value in states.items() if known.get(pk) != value}
    if fresh:
        now = timezone.now()
        HookMark.objects.bulk_create(
            [
                HookMark(tenant_id=tenant_id, topic=topic, object_id=pk, value=states[pk], updated_at=now)
                for pk in fresh
            ],
            update_conflicts=True,
            unique_fields=["tenant", "topic", "object_id"],
            update_fields=["value", "updated_at"],
        )
    return fresh


# --- Milestones --------------------------------------------------------------------------------------


def current_values(tenant_id: int, currencies: Iterable[str]) -> dict[str, Decimal]:
    """The figures milestones watch, in one aggregate: counted (not cancelled) orders of all time,
    and their revenue in each of `currencies` (money is never summed across currencies)."""
    counted = Order.objects.filter(tenant_id=tenant_id).exclude(status=OrderStatus.CANCELLED)
    sums = {
        f"revenue_{code}": Coalesce(Sum("total", filter=Q(currency=code)), Decimal(0))
        for code in sorted(set(currencies))
        if code.isalpha() and len(code) == 3
    }
    figures = counted.aggregate(order_count=Count("pk"), **sums)
    return {name: Decimal(value) for name, value in figures.items()}


def milestone_value(item: Milestone, figures: dict[str, Decimal]) -> Decimal:
    if item.kind == MilestoneKind.ORDER_COUNT:
        return figures["order_count"]
    return figures.get(f"revenue_{item.currency}", Decimal(0))


def check_milestones(tenant_id: int, subscribed: set[str] | None = None) -> list[Milestone]:
    """Mark the milestones the tenant's orders have now reached, each once, and announce them."""
    waiting = list(Milestone.objects.filter(tenant_id=tenant_id, reached_at__isnull=True))
    if not waiting:
        return []
    figures = current_values(tenant_id, [m.currency for m in waiting if m.kind == MilestoneKind.REVENUE])
    now = timezone.now()
    reached = []
    for item in waiting:
        value = milestone_value(item, figures)
        if value < item.threshold:
            continue
        # Conditional, so two pages committing at once announce it once.
        if Milestone.objects.filter(pk=item.pk, reached_at__isnull=True).update(reached_at=now, reached_value=value):
            item.reached_at, item.reached_value = now, value
            reached.append(item)
    subscribed = subscribed_events(tenant_id) if subscribed is None else subscribed
    if reached and E.ANALYTICS_MILESTONE in subscribed:
        publish(tenant_id, E.ANALYTICS_MILESTONE, [events.milestone(item) for item in reached])
    return reached


# --- Connections and sync runs -----------------------------------------------------------------------


def connection_state(connection_id: int, state: str, *, only_after_failure: bool = False) -> None:
    """Announce a connection that is now connected or failed, once per change of state."""
    conn = Connection.objects.filter(pk=connection_id).first()
    if conn is None:
        return
    _connection_state(conn, state, subscribed_events(conn.tenant_id), only_after_failure=only_after_failure)


def _connection_state(conn: Connection, state: str, subscribed: set[str], *, only_after_failure: bool) -> None:
    if not subscribed & INTEGRATION_EVENTS:
        return
    # Only what the connection's own status confirms: a disabled connection that passes a test is
    # not "connected", and a sync that failed on our side leaves the connection as it was.
    if conn.status not in (CONFIRMS_CONNECTED if state == CONNECTED else CONFIRMS_FAILED):
        return
    previous = (
        HookMark.objects.filter(tenant_id=conn.tenant_id, topic="integration", object_id=conn.pk)
        .values_list("value", flat=True)
        .first()
    )
    if previous == state or (only_after_failure and previous != FAILED):
        return
    _mark(conn.tenant_id, "integration", {conn.pk: state})
    event = E.INTEGRATION_CONNECTED if state == CONNECTED else E.INTEGRATION_FAILED
    if event in subscribed:
        publish(conn.tenant_id, event, [events.connection(conn)])


def sync_finished(run_pk: int) -> None:
    run = SyncRun.objects.select_related("connection").filter(pk=run_pk).first()
    if run is None:
        return
    subscribed = subscribed_events(run.tenant_id)
    if not subscribed:
        return
    if run.status == SyncStatus.SUCCEEDED:
        if E.SYNC_COMPLETED in subscribed:
            publish(run.tenant_id, E.SYNC_COMPLETED, [events.sync_run(run)])
        _connection_state(run.connection, CONNECTED, subscribed, only_after_failure=True)
    elif run.status == SyncStatus.FAILED:
        _connection_state(run.connection, FAILED, subscribed, only_after_failure=False)


def campaign_sent(tenant_id: int, campaign_id: int) -> None:
    if E.CAMPAIGN_SENT not in subscribed_events(tenant_id):
        return
    campaign = (
        Campaign.objects.for_tenant(tenant_id).select_related("segment", "connection").filter(pk=campaign_id).first()
    )
    if campaign is not None:
        publish(tenant_id, E.CAMPAIGN_SENT, [events.campaign(campaign)])
