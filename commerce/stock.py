"""One stock figure per SKU across channels.

A `StockItem` holds the hub's figure for a SKU (`on_hand`); each `StockListing` is one channel's
listing of it (a connection and the platform's product, variant and location ids). Listings are
linked by SKU when a sync or webhook brings a variant (`reconcile`), and by hand in the admin or on
the dashboard. Per-location figures are the platforms' own, in `InventoryLevel`.

The figure changes in four ways, each of which pushes the new figure to listings through
`commerce.pushes` (a task per listing, `commerce.stock_push`):

- A person sets it (`set_stock`, `set_many`: admin, dashboard, API, CSV): pushed to every listing.
- A sale (`record_sales`, new orders after their page commits): taken off with a conditional
  UPDATE that never goes below zero, so when two channels sell the last unit at once one sale
  gets it and the other is flagged as an `Oversell` for a person. Pushed to the other channels
  (the selling channel took the sale off its own figure already).
- A platform reports a different figure (`reconcile`, after a products or inventory page commits):
  the connection's conflict strategy decides. `timestamp` (the default): the newer figure wins;
  `platform_priority`: the platform's; `hub_priority`: the hub's; `manual`: a `StockConflict` waits
  for a person (`resolve_conflict`). Taking the platform's figure pushes it to the other listings;
  keeping the hub's pushes the hub's back to that listing.
- A person resolves a conflict by taking the platform's figure.

Whenever the figure falls to the reorder point (the item's own, else the tenant's default) or
below, `check_low_stock` announces it once (the `stock_low` signal: the product.low_stock hook,
and the owners' email when the tenant asked for it), and again only after a restock above it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Max, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone
from django_q.tasks import async_task

from tenants import audit
from tenants.models import Tenant

from .models import (
    ConflictStatus,
    ConflictStrategy,
    InventoryLevel,
    LinkSource,
    OrderLine,
    Oversell,
    ProductVariant,
    PushStatus,
    StockAlertSettings,
    StockChannelSettings,
    StockConflict,
    StockItem,
    StockListing,
)
from .signals import stock_low

logger = logging.getLogger(__name__)

PUSH_TASK = "commerce.stock_push.push_listing"
EMAIL_TASK = "commerce.stock_push.email_low_stock"
# The platform of each tenant's "Manual uploads" connection (commerce.uploads): its listings stand
# for the hub's own data, with no platform behind them to push to.
MANUAL_PLATFORM = "manual"
# A listing whose last push has not landed is left out when platform figures are compared: the
# platform has not taken the hub's figure yet, so its own is not news (a failed push waits for a
# person to push again).
NOT_LANDED = (PushStatus.QUEUED, PushStatus.PUSHING, PushStatus.RETRYING, PushStatus.FAILED)


class StockError(ValueError):
    """A stock change that cannot be made, in words for people."""


def reorder_point(tenant: Tenant) -> Coalesce:
    """The reorder point in force of a stock item: its own, else the tenant's default."""
    return Coalesce("reorder_point", Value(tenant.default_reorder_point))


def strategy_of(connection_id: int) -> str:
    found = StockChannelSettings.objects.filter(connection_id=connection_id).values_list("conflict_strategy", flat=True)
    return found.first() or ConflictStrategy.TIMESTAMP


# --- Setting the figure ---------------------------------------------------------------------------


def set_stock(item: StockItem, quantity: int, *, via: str, request=None, actor=None) -> StockItem:
    """Set the hub's figure for one SKU and push it to every listing; `via` says where (admin,
    dashboard, api, csv) for the audit log."""
    return set_many(item.tenant, {item.sku: quantity}, via=via, request=request, actor=actor)[0]


def set_many(tenant: Tenant, quantities: dict[str, int], *, via: str, request=None, actor=None) -> list[StockItem]:
    """Set the figures of several SKUs of the tenant at once, all or nothing; every SKU must have a
    stock item. Returns the items, in the order given."""
    bad = [sku for sku, quantity in quantities.items() if not isinstance(quantity, int) or quantity < 0]
    if bad:
        raise StockError(f"Stock cannot be negative (SKU {', '.join(bad[:5])}).")
    with transaction.atomic():
        items = {
            item.sku: item
            for item in StockItem.objects.for_tenant(tenant)
            .filter(sku__in=list(quantities))
            .order_by("pk")
            .select_for_update()
        }
        unknown = [sku for sku in quantities if sku not in items]
        if unknown:
            raise StockError(f"No stock item has the SKU {', '.join(unknown[:5])}: sync or link it first.")
        now = timezone.now()
        for sku, item in items.items():
            item.on_hand, item.version, item.changed_at = quantities[sku], item.version + 1, now
        StockItem.objects.bulk_update(list(items.values()), ["on_hand", "version", "changed_at"], batch_size=500)
        queue_pushes(StockListing.objects.filter(item__in=list(items.values())))
        check_low_stock(tenant, [item.pk for item in items.values()])
        audit.record(
            "stock.set",
            request=request,
            actor=actor,
            tenant=tenant,
            target=", ".join(list(quantities)[:5]) + ("…" if len(quantities) > 5 else ""),
            via=via,
            quantities=dict(list(quantities.items())[:100]),
            count=len(quantities),
        )
    return [items[sku] for sku in quantities]


# --- Pushes ---------------------------------------------------------------------------------------


def queue_pushes(listings: QuerySet[StockListing]) -> list[int]:
    """Queue a push of the hub's current figure to each of these listings, as a task each once the
    change commits. A listing being pushed right now is left to its task, which pushes again when
    the figure changed under it. Listings with no platform behind them (manual uploads, the demo's
    made-up shops) are skipped."""
    rows = list(listings.values_list("pk", "connection__platform", "connection__is_demo"))
    ids = [pk for pk, platform, demo in rows if platform != MANUAL_PLATFORM and not demo]
    skipped = [pk for pk, platform, demo in rows if platform == MANUAL_PLATFORM or demo]
    if skipped:
        StockListing.objects.filter(pk__in=skipped).update(push_status=PushStatus.SKIPPED)
    if not ids:
        return []
    StockListing.objects.filter(pk__in=ids).exclude(push_status=PushStatus.PUSHING).update(
        push_status=PushStatus.QUEUED, push_attempts=0, push_message="", next_push_at=timezone.now()
    )
    transaction.on_commit(lambda: enqueue(ids))
    return ids


def enqueue(listing_ids: Iterable[int]) -> None:
    for pk in listing_ids:
        async_task(PUSH_TASK, pk, task_name=f"stock-push-{pk}")


# --- Sales ----------------------------------------------------------------------------------------


@dataclass
class _Sale:
    line_external_id: str
    order_id: int
    placed_at: datetime
    quantity: int


def record_sales(tenant_id: int, connection_id: int, order_ids: Collection[int]) -> list[Oversell]:
    """Take new orders' lines off the hub's figures of their SKUs and push the new figures to the
    other channels. Runs after the orders' page committed; returns the oversells it flagged.

    Not taken off: cancelled orders, lines without a tracked SKU, and orders placed before the
    stock item existed (history, already in the figure it started from) or before the hub last took
    this channel's own figure (which had the sale in it)."""
    sku = Coalesce(NullIf("sku", Value("")), "variant__sku")
    tracked = StockItem.objects.filter(tenant_id=tenant_id).values("sku")
    lines = list(
        OrderLine.objects.filter(tenant_id=tenant_id, order_id__in=list(order_ids), counted=True, quantity__gt=0)
        .annotate(stock_sku=sku)
        .filter(stock_sku__in=tracked)
        .order_by("placed_at", "order_id", "pk")
        .values_list("stock_sku", "external_id", "order_id", "placed_at", "quantity")
    )
    if not lines:
        return []
    items = {
        item.sku: item
        for item in StockItem.objects.filter(tenant_id=tenant_id, sku__in={line[0] for line in lines}).only(
            "pk", "sku", "counted_at"
        )
    }
    adopted = dict(
        StockListing.objects.filter(item__in=list(items.values()), connection_id=connection_id)
        .values("item")
        .annotate(last=Max("adopted_at"))
        .values_list("item", "last")
    )
    sales: dict[int, list[_Sale]] = defaultdict(list)
    for stock_sku, external_id, order_id, placed_at, quantity in lines:
        item = items[stock_sku]
        last = adopted.get(item.pk)
        if placed_at <= item.counted_at or (last is not None and placed_at <= last):
            continue
        sales[item.pk].append(_Sale(external_id, order_id, placed_at, quantity))
    if not sales:
        return []

    tenant = Tenant.objects.get(pk=tenant_id)
    oversells: list[Oversell] = []
    with transaction.atomic():
        now = timezone.now()
        # In primary key order, so two pages selling the same SKUs lock them in one order.
        for item_pk in sorted(sales):
            sold = sales[item_pk]
            total = sum(sale.quantity for sale in sold)
            taken = StockItem.objects.filter(pk=item_pk, on_hand__gte=total).update(
                on_hand=F("on_hand") - total, version=F("version") + 1, changed_at=now
            )
            if not taken:
                oversells += _oversold(tenant_id, item_pk, sold, now)
        Oversell.objects.bulk_create(oversells, ignore_conflicts=True)
        first_sale = {item_pk: min(sale.placed_at for sale in sold) for item_pk, sold in sales.items()}
        # The selling channel took the sale off its own figure, unless the hub pushed its figure
        # there after the sale (overwriting that): then it gets the new one too.
        others = Q(item__in=list(sales)) & ~Q(connection_id=connection_id)
        overwritten = Q()
        for item_pk, placed_at in first_sale.items():
            overwritten |= Q(item_id=item_pk, connection_id=connection_id, pushed_at__gte=placed_at)
        queue_pushes(StockListing.objects.filter(others | overwritten))
        check_low_stock(tenant, list(sales))
    return oversells


def _oversold(tenant_id: int, item_pk: int, sold: list[_Sale], now: datetime) -> list[Oversell]:
    """The hub has fewer units than these sales took: each takes what is left, in the order they
    were placed, and each that got less than it sold is flagged. Stock ends at zero."""
    item = StockItem.objects.select_for_update().get(pk=item_pk)
    left = item.on_hand
    flagged = []
    for sale in sold:
        got = min(left, sale.quantity)
        left -= got
        if got < sale.quantity:
            flagged.append(
                Oversell(
                    tenant_id=tenant_id,
                    item_id=item_pk,
                    sku=item.sku,
                    order_id=sale.order_id,
                    line_external_id=sale.line_external_id,
                    quantity=sale.quantity,
                    short=sale.quantity - got,
                    created_at=now,
                )
            )
    StockItem.objects.filter(pk=item_pk).update(on_hand=left, version=F("version") + 1, changed_at=now)
    logger.warning("Oversold %s of tenant %s: %s sale(s) short", item.sku, tenant_id, len(flagged))
    return flagged


# --- Platform figures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A platform's figure for one listing, and the time it is from."""

    quantity: int
    seen_at: datetime


def reconcile(tenant_id: int, connection_id: int, variant_ids: Collection[int] | QuerySet) -> None:
    """After a page of products or stock from a connection commits: link its variants to stock
    items by SKU (creating the items of SKUs new to the hub, from the platform's figure), then
    apply the connection's conflict strategy to each listing whose platform figure differs from
    the hub's. A constant number of queries per page, plus a few per differing figure."""
    variants = list(
        ProductVariant.objects.filter(
            tenant_id=tenant_id,
            connection_id=connection_id,
            pk__in=variant_ids if isinstance(variant_ids, QuerySet) else list(variant_ids),
        )
        .order_by("pk")
        .values("pk", "external_id", "sku", "title", "product__external_id", "product__title")
    )
    if not variants:
        return
    figures = _figures([v["pk"] for v in variants])
    with transaction.atomic():
        created_items = _link(tenant_id, connection_id, variants, figures)
        compared = [
            (listing, figure)
            for listing in StockListing.objects.filter(
                connection_id=connection_id, variant_id__in=[v["pk"] for v in variants]
            )
            .exclude(push_status__in=NOT_LANDED)
            .exclude(item_id__in=created_items)
            .order_by("item_id", "pk")
            if (figure := _figure_of(listing, figures)) is not None and _is_news(listing, figure)
        ]
        # An item new to the hub may start at its reorder point already.
        changed = list(created_items)
        items = {
            item.pk: item
            for item in StockItem.objects.filter(pk__in={listing.item_id for listing, _ in compared})
            .order_by("pk")
            .select_for_update()
        }
        strategy = strategy_of(connection_id) if compared else ConflictStrategy.TIMESTAMP
        agreeing = []
        for listing, figure in compared:
            item = items[listing.item_id]
            if max(figure.quantity, 0) == item.on_hand:
                agreeing.append(listing.pk)
            elif strategy == ConflictStrategy.MANUAL:
                _open_conflict(item, listing, figure)
            elif strategy == ConflictStrategy.PLATFORM_PRIORITY or (
                strategy == ConflictStrategy.TIMESTAMP and figure.seen_at > item.changed_at
            ):
                adopt(item, listing, figure)
                changed.append(item.pk)
            else:  # hub_priority, or the hub's figure is as new as the platform's or newer
                queue_pushes(StockListing.objects.filter(pk=listing.pk))
        if agreeing:
            StockConflict.objects.filter(listing_id__in=agreeing, status=ConflictStatus.OPEN).update(
                status=ConflictStatus.SETTLED, resolved_at=timezone.now()
            )
        if changed:
            check_low_stock(Tenant.objects.get(pk=tenant_id), changed)


def adopt(item: StockItem, listing: StockListing, figure: Figure) -> None:
    """Take a listing's platform figure as the hub's (the item is locked) and push it to the other
    listings. Stock is never negative: a platform's oversold figure counts as zero."""
    quantity = max(figure.quantity, 0)
    changed_at = max(item.changed_at, figure.seen_at)
    StockItem.objects.filter(pk=item.pk).update(on_hand=quantity, version=F("version") + 1, changed_at=changed_at)
    item.on_hand, item.version, item.changed_at = quantity, item.version + 1, changed_at
    StockListing.objects.filter(pk=listing.pk).update(adopted_at=figure.seen_at)
    queue_pushes(StockListing.objects.filter(item_id=item.pk).exclude(pk=listing.pk))


def _open_conflict(item: StockItem, listing: StockListing, figure: Figure) -> None:
    """One open conflict per listing, showing the latest figures of both sides."""
    values = {"hub_quantity": item.on_hand, "platform_quantity": figure.quantity, "platform_seen_at": figure.seen_at}
    if not StockConflict.objects.filter(listing=listing, status=ConflictStatus.OPEN).update(**values):
        StockConflict.objects.create(tenant_id=item.tenant_id, item=item, listing=listing, **values)


def _is_news(listing: StockListing, figure: Figure) -> bool:
    """Whether a platform figure is newer than what the hub last knew of it: a figure from before
    the hub's last push to the listing landed, or the one the hub last took from it, says nothing
    new (the stored level may simply not have been read again since)."""
    known = [moment for moment in (listing.pushed_at, listing.adopted_at) if moment is not None]
    return not known or figure.seen_at > max(known)


def _figures(variant_ids: list[int]) -> dict[int, list[tuple[str, int, datetime]]]:
    """The platform's stock levels of these variants: variant id → [(location id, available, time)];
    a level's time is the platform's, else when the hub read it."""
    levels: dict[int, list[tuple[str, int, datetime]]] = defaultdict(list)
    rows = InventoryLevel.objects.filter(variant_id__in=variant_ids).values_list(
        "variant_id", "location_id", "available", "platform_updated_at", "updated_at"
    )
    for variant_id, location_id, available, platform_updated_at, updated_at in rows:
        levels[variant_id].append((location_id, available, platform_updated_at or updated_at))
    return levels


def _figure_of(listing: StockListing, figures: dict[int, list[tuple[str, int, datetime]]]) -> Figure | None:
    """The platform's figure for a listing: the level at its location, or with no location the sum
    over the variant's levels; None when the platform reports none."""
    levels = figures.get(listing.variant_id, [])
    if listing.location_id:
        levels = [level for level in levels if level[0] == listing.location_id]
    if not levels:
        return None
    return Figure(sum(level[1] for level in levels), max(level[2] for level in levels))


def _link(tenant_id: int, connection_id: int, variants: list[dict], figures: dict) -> set[int]:
    """Give each variant with a SKU a listing on its SKU's stock item, creating the items of SKUs
    new to the hub from the first variant's figure (a variant without stock levels does not track
    stock, so it creates no item). A listing linked by hand is never moved; one linked by SKU
    follows its variant to a new SKU. Returns the ids of the items created."""
    existing = {
        listing.variant_external_id: listing
        for listing in StockListing.objects.filter(
            connection_id=connection_id, variant_external_id__in=[v["external_id"] for v in variants]
        )
    }
    skus = {v["sku"] for v in variants if v["sku"]}
    items = {item.sku: item for item in StockItem.objects.filter(tenant_id=tenant_id, sku__in=skus)}
    now = timezone.now()
    new_items: dict[str, StockItem] = {}
    creator: dict[str, int] = {}  # SKU → the variant whose figure a new item starts from
    for variant in variants:
        sku = variant["sku"]
        if not sku or sku in items or sku in new_items or not figures.get(variant["pk"]):
            continue
        levels = figures[variant["pk"]]
        creator[sku] = variant["pk"]
        new_items[sku] = StockItem(
            tenant_id=tenant_id,
            sku=sku,
            title=_title(variant),
            on_hand=max(sum(level[1] for level in levels), 0),
            changed_at=max(level[2] for level in levels),
            counted_at=now,
            created_at=now,
        )
    created: set[int] = set()
    if new_items:
        StockItem.objects.bulk_create(list(new_items.values()), ignore_conflicts=True)
        # Read back (an item another page created meanwhile is used as it is, and left alone too).
        for item in StockItem.objects.filter(tenant_id=tenant_id, sku__in=list(new_items)):
            items[item.sku] = item
            created.add(item.pk)
    platform = _platform(connection_id)
    to_create, to_move = [], []
    for variant in variants:
        sku, listing = variant["sku"], existing.get(variant["external_id"])
        if not sku or sku not in items:
            continue
        item = items[sku]
        if listing is None:
            levels = figures.get(variant["pk"], [])
            to_create.append(
                StockListing(
                    tenant_id=tenant_id,
                    item=item,
                    connection_id=connection_id,
                    variant_id=variant["pk"],
                    product_external_id=variant["product__external_id"],
                    variant_external_id=variant["external_id"],
                    # One location: pushes go there. Several: the platform's default, until a
                    # person names one.
                    location_id=levels[0][0] if len(levels) == 1 else "",
                    linked_by=LinkSource.AUTO,
                    adopted_at=max(level[2] for level in levels) if creator.get(sku) == variant["pk"] else None,
                    push_status=PushStatus.SKIPPED if platform == MANUAL_PLATFORM else PushStatus.NEVER,
                    created_at=now,
                )
            )
        elif listing.linked_by == LinkSource.AUTO and listing.item_id != item.pk:
            listing.item, listing.variant_id = item, variant["pk"]
            to_move.append(listing)
    StockListing.objects.bulk_create(to_create, ignore_conflicts=True)
    if to_move:
        StockListing.objects.bulk_update(to_move, ["item", "variant"])
    return created


def _title(variant: dict) -> str:
    title, name = variant["product__title"] or "", variant["title"] or ""
    return (f"{title} – {name}" if name and name != title else title)[:255]  # noqa: RUF001 (a dash)


def _platform(connection_id: int) -> str:
    from integrations.models import Connection

    return Connection.objects.filter(pk=connection_id).values_list("platform", flat=True).first() or ""


# --- Conflicts ------------------------------------------------------------------------------------


def resolve_conflict(conflict: StockConflict, accept: str, *, request=None, actor=None) -> bool:
    """Settle an open conflict: `hub` pushes the hub's figure to the listing, `platform` takes the
    platform's figure as the hub's and pushes it to the other listings. Returns False when the
    conflict was no longer open."""
    if accept not in ("hub", "platform"):
        raise ValueError("Accept the hub's figure or the platform's.")
    user = actor if getattr(actor, "is_authenticated", False) else getattr(request, "user", None)
    with transaction.atomic():
        status = ConflictStatus.ACCEPTED_HUB if accept == "hub" else ConflictStatus.ACCEPTED_PLATFORM
        closed = StockConflict.objects.filter(pk=conflict.pk, status=ConflictStatus.OPEN).update(
            status=status,
            resolved_at=timezone.now(),
            resolved_by=user if getattr(user, "is_authenticated", False) else None,
        )
        if not closed:
            return False
        item = StockItem.objects.select_for_update().get(pk=conflict.item_id)
        listing = StockListing.objects.get(pk=conflict.listing_id)
        if accept == "hub":
            queue_pushes(StockListing.objects.filter(pk=listing.pk))
        else:
            adopt(item, listing, Figure(conflict.platform_quantity, conflict.platform_seen_at))
            check_low_stock(item.tenant, [item.pk])
        audit.record(
            "stock.conflict_resolved",
            request=request,
            actor=actor,
            tenant=item.tenant,
            target=item.sku,
            accepted=accept,
            hub=conflict.hub_quantity,
            platform=conflict.platform_quantity,
            listing=listing.pk,
        )
    return True


# --- Low stock ------------------------------------------------------------------------------------


def check_low_stock(tenant: Tenant, item_ids: Collection[int]) -> list[int]:
    """Mark the items among these that fell to their reorder point since they were last above it,
    announce them (`stock_low`; the owners' email when the tenant wants it), and clear the mark of
    those above it again. Runs in the transaction that changed the figures; two transactions
    marking one item at once announce it once (the rows are locked). Returns the fallen ids."""
    if not item_ids:
        return []
    point = reorder_point(tenant)
    with transaction.atomic():
        scoped = StockItem.objects.for_tenant(tenant).filter(pk__in=list(item_ids))
        scoped.filter(low_since__isnull=False, on_hand__gt=point).update(low_since=None)
        fallen = list(
            scoped.filter(low_since__isnull=True, on_hand__lte=point)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        if not fallen:
            return []
        StockItem.objects.filter(pk__in=fallen).update(low_since=timezone.now())
        stock_low.send(sender=StockItem, tenant_id=tenant.pk, items=low_stock_items(tenant, fallen))
        if StockAlertSettings.objects.filter(tenant=tenant, email_owners=True).exists():
            transaction.on_commit(lambda: async_task(EMAIL_TASK, tenant.pk, fallen), robust=True)
    return fallen


def low_stock_items(tenant: Tenant, item_ids: Collection[int]) -> list[dict]:
    """What `stock_low` says of each item (see commerce.signals)."""
    items = list(
        StockItem.objects.for_tenant(tenant)
        .filter(pk__in=list(item_ids))
        .annotate(point=reorder_point(tenant))
        .order_by("pk")
        .values("pk", "sku", "title", "on_hand", "point")
    )
    first_variant: dict[int, tuple] = {}
    for item_id, variant_id, product_id, variant_title in (
        StockListing.objects.filter(item_id__in=[item["pk"] for item in items], variant__isnull=False)
        .order_by("-pk")
        .values_list("item_id", "variant_id", "variant__product_id", "variant__title")
    ):
        first_variant[item_id] = (variant_id, product_id, variant_title)
    return [
        {
            "stock_item_id": item["pk"],
            "sku": item["sku"],
            "title": item["title"],
            "available": item["on_hand"],
            "reorder_point": item["point"],
            "variant_id": first_variant.get(item["pk"], (None,))[0],
            "product_id": first_variant.get(item["pk"], (None, None))[1],
            "variant_title": first_variant.get(item["pk"], (None, None, ""))[2],
        }
        for item in items
    ]
