"""What each event's payload holds. Every delivery and every sample is `envelope(event, data)`;
`data` comes from one function per kind of object, so a sample (`samples`) has exactly the shape
of the deliveries. Orders and customers are shaped as the API shows them (`commerce.serializers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from commerce.models import Customer, FinancialStatus, FulfillmentStatus, Order, OrderLine, ProductVariant
from commerce.serializers import CustomerSerializer, OrderSerializer
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from tenants.models import Tenant

from ..models import HookEvent, Milestone, MilestoneKind

E = HookEvent

# The read scope a key needs to subscribe to an event or to read its samples: the payload shows
# that data, so a hook must not be a way round the key's scopes.
EVENT_SCOPES: dict[str, str] = {
    E.ORDER_CREATED: "orders:read",
    E.ORDER_UPDATED: "orders:read",
    E.ORDER_FULFILLED: "orders:read",
    E.ORDER_REFUNDED: "orders:read",
    E.PRODUCT_LOW_STOCK: "products:read",
    E.CUSTOMER_CREATED: "customers:read",
    E.INTEGRATION_CONNECTED: "integrations:read",
    E.INTEGRATION_FAILED: "integrations:read",
    E.SYNC_COMPLETED: "integrations:read",
    E.CAMPAIGN_SENT: "campaigns:read",
    E.ANALYTICS_MILESTONE: "orders:read",
}

DESCRIPTIONS: dict[str, str] = {
    E.ORDER_CREATED: "An order reached the hub for the first time (not the backfill of a first sync).",
    E.ORDER_UPDATED: "A stored order changed.",
    E.ORDER_FULFILLED: "An order became fulfilled (once per order).",
    E.ORDER_REFUNDED: "An order became partially refunded or refunded (once per refund status).",
    E.PRODUCT_LOW_STOCK: "A variant's stock fell to its reorder point or below (again after a restock).",
    E.CUSTOMER_CREATED: "A customer reached the hub for the first time (not the backfill of a first sync).",
    E.INTEGRATION_CONNECTED: "A connection passed its test, or synced again after failing.",
    E.INTEGRATION_FAILED: "A connection failed its test or a sync (once until it recovers).",
    E.SYNC_COMPLETED: "A sync run finished successfully.",
    E.CAMPAIGN_SENT: "A campaign finished sending to its last recipient (with its figures so far).",
    E.ANALYTICS_MILESTONE: "A milestone set through /api/v1/milestones was reached (once).",
}

REFUNDED = (FinancialStatus.PARTIALLY_REFUNDED, FinancialStatus.REFUNDED)


def envelope(event: str, data: dict, *, webhook_id: str, timestamp: datetime | None = None) -> dict:
    """The body of every hook (before a subscription's template): Standard Webhooks' shape."""
    return {
        "id": webhook_id,
        "type": event,
        "timestamp": (timestamp or timezone.now()).isoformat(),
        "data": data,
    }


def _plain(data: Any) -> Any:
    """Serializer output as plain JSON values (decimals as strings, times in ISO 8601)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


# --- One function per kind of object ----------------------------------------------------------------


def orders(queryset: QuerySet[Order]) -> list[dict]:
    lines = Prefetch("lines", queryset=OrderLine.objects.defer("raw").order_by("pk"))
    return _plain(OrderSerializer(queryset.defer("raw").prefetch_related(lines), many=True).data)


def customers(queryset: QuerySet[Customer]) -> list[dict]:
    rows = queryset.defer("raw").annotate(platform=F("connection__platform"))
    return _plain(CustomerSerializer(rows, many=True).data)


def stock(tenant: Tenant | int, variant_ids: Iterable[int] | QuerySet | None = None) -> QuerySet[ProductVariant]:
    """Variants that track stock, with `available` summed over their locations and `point`, the
    reorder point in force (the variant's own, else the tenant's default) — as the dashboard counts."""
    tenant = tenant if isinstance(tenant, Tenant) else Tenant.objects.get(pk=tenant)
    variants = ProductVariant.objects.for_tenant(tenant)
    if variant_ids is not None:
        variants = variants.filter(pk__in=variant_ids)
    return (
        variants.annotate(
            levels=Count("inventory_levels"),
            available=Coalesce(Sum("inventory_levels__available"), 0),
            point=Coalesce("reorder_point", Value(tenant.default_reorder_point)),
        )
        .filter(levels__gt=0)
        .values("pk", "product_id", "sku", "title", "product__title", "available", "point")
    )


def low_stock(rows: Iterable[dict]) -> list[dict]:
    return [
        {
            "variant_id": row["pk"],
            "product_id": row["product_id"],
            "sku": row["sku"],
            "title": row["product__title"],
            "variant_title": row["title"],
            "available": row["available"],
            "reorder_point": row["point"],
        }
        for row in rows
    ]


def connection(conn: Connection) -> dict:
    return {
        "id": conn.pk,
        "uuid": str(conn.uuid),
        "name": conn.name,
        "platform": conn.platform,
        "status": conn.status,
        "enabled": conn.enabled,
        "last_tested_at": _iso(conn.last_tested_at),
        "last_error": conn.last_error,
    }


def sync_run(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "integration": run.connection_id,
        "platform": run.connection.platform,
        "trigger": run.trigger,
        "streams": list(run.streams or []),
        "full": run.full,
        "status": run.status,
        "error": run.error,
        "error_code": run.error_code,
        "queued_at": _iso(run.queued_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "totals": run.totals,
        "counts": run.counts,
    }


def campaign(item: Campaign) -> dict:
    from campaigns.sending import stats

    figures = stats(item)
    return {
        "id": item.pk,
        "uuid": str(item.uuid),
        "name": item.name,
        "channel": item.channel,
        "status": item.status,
        "segment": {"id": item.segment_id, "name": item.segment.name} if item.segment_id else None,
        "connection": {"id": item.connection_id, "platform": item.connection.platform},
        "started_at": _iso(item.started_at),
        "finished_at": _iso(item.finished_at),
        "stats": {k: figures[k] for k in ("recipients", "sent", "failed", "suppressed", "delivered", "opened")},
    }


def milestone(item: Milestone) -> dict:
    """Order counts as whole numbers, revenue as the API writes money (four places), in strings."""

    def figure(value: Decimal | None) -> str | None:
        if value is None:
            return None
        if item.kind == MilestoneKind.ORDER_COUNT:
            return str(int(value))
        return f"{Decimal(value).quantize(Decimal('0.0001')):f}"

    return {
        "id": item.pk,
        "kind": item.kind,
        "threshold": figure(item.threshold),
        "currency": item.currency,
        "reached_at": _iso(item.reached_at),
        "value": figure(item.reached_value),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- Samples (Zapier's perform-list) ----------------------------------------------------------------


def _orders(tenant: Tenant, limit: int, where: Q, order: str) -> list[dict]:
    return orders(Order.objects.for_tenant(tenant).filter(where).order_by(order, "-pk")[:limit])


def _connections(tenant: Tenant, limit: int, statuses: Iterable[str]) -> list[dict]:
    rows = Connection.objects.for_tenant(tenant).filter(status__in=list(statuses)).order_by("-updated_at", "-pk")
    return [connection(conn) for conn in rows[:limit]]


SAMPLES: dict[str, Callable[[Tenant, int], list[dict]]] = {
    E.ORDER_CREATED: lambda t, n: _orders(t, n, Q(), "-created_at"),
    E.ORDER_UPDATED: lambda t, n: _orders(t, n, Q(), "-updated_at"),
    E.ORDER_FULFILLED: lambda t, n: _orders(t, n, Q(fulfillment_status=FulfillmentStatus.FULFILLED), "-updated_at"),
    E.ORDER_REFUNDED: lambda t, n: _orders(t, n, Q(financial_status__in=REFUNDED), "-updated_at"),
    E.PRODUCT_LOW_STOCK: lambda t, n: low_stock(
        stock(t).filter(available__lte=F("point")).order_by("available", "sku", "pk")[:n]
    ),
    E.CUSTOMER_CREATED: lambda t, n: customers(Customer.objects.for_tenant(t).order_by("-created_at", "-pk")[:n]),
    E.INTEGRATION_CONNECTED: lambda t, n: _connections(t, n, [ConnectionStatus.CONNECTED]),
    E.INTEGRATION_FAILED: lambda t, n: _connections(t, n, [ConnectionStatus.FAILING, ConnectionStatus.NEEDS_REAUTH]),
    E.SYNC_COMPLETED: lambda t, n: [
        sync_run(run)
        for run in SyncRun.objects.for_tenant(t)
        .filter(status=SyncStatus.SUCCEEDED)
        .select_related("connection")
        .order_by("-finished_at", "-pk")[:n]
    ],
    E.CAMPAIGN_SENT: lambda t, n: [
        campaign(item)
        for item in Campaign.objects.for_tenant(t)
        .filter(status=CampaignStatus.SENT)
        .select_related("segment", "connection")
        .order_by("-finished_at", "-pk")[:n]
    ],
    E.ANALYTICS_MILESTONE: lambda t, n: [
        milestone(item)
        for item in Milestone.objects.for_tenant(t).filter(reached_at__isnull=False).order_by("-reached_at")[:n]
    ],
}


def samples(event: str, tenant: Tenant, limit: int = 3) -> list[dict]:
    """The tenant's latest real objects for `event`, as hook bodies (ids `msg_sample_<n>`)."""
    return [
        envelope(event, data, webhook_id=f"msg_sample_{n}") for n, data in enumerate(SAMPLES[event](tenant, limit), 1)
    ]
