"""Fulfilment figures, exact: orders fulfilled per local day, median hours to ship per channel,
late orders against the client's SLA, failed pushes; one tenant's rows only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from commerce.fulfilment_metrics import analytics
from commerce.models import FulfillmentStatus, Fulfilment, FulfilmentSettings, OrderStatus
from commerce.models import FulfilmentPushStatus as Status

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def tenant(make_tenant):
    tenant = make_tenant("Gamma", time_zone="America/New_York")
    FulfilmentSettings.objects.create(tenant=tenant, sla_hours=24)
    return tenant


@pytest.fixture
def shipped(make_connection, make_order):
    def ship(connection, placed_at, *pushed_at, status=Status.PUSHED, created_at=None, error=""):
        order = make_order(connection, placed_at=placed_at, fulfillment_status=FulfillmentStatus.FULFILLED)
        for moment in pushed_at or [None]:
            Fulfilment.objects.create(
                tenant=order.tenant,
                order=order,
                connection=connection,
                carrier="ups",
                status=status,
                pushed_at=moment,
                last_error=error,
                created_at=created_at or placed_at,
                updated_at=created_at or placed_at,
            )
        return order

    return ship


def test_the_figures_of_a_period_in_the_tenants_time_zone(tenant, tenant_b, make_connection, make_order, shipped):
    shop, amazon = make_connection(tenant, "shopify"), make_connection(tenant, "amazon")
    shipped(shop, at(8, 12), at(8, 14), at(9, 20))  # 2 h; its second shipment does not count again
    shipped(shop, at(7, 0), at(8, 6))  # 30 h: late
    shipped(amazon, at(9, 10), at(9, 14))  # 4 h
    shipped(amazon, at(9, 0), at(10, 3, 30))  # 27.5 h: late, and on the 9th in New York (23:30)
    shipped(amazon, at(1, 0), at(2, 0))  # before the period
    shipped(amazon, at(3, 0), at(4, 4, 30))  # the 3rd in New York: before the period
    shipped(make_connection(tenant_b, "shopify"), at(9, 0), at(9, 1))  # another tenant's
    late = make_order(shop, number="L2", placed_at=at(8, 3))
    later = make_order(shop, number="L1", placed_at=at(5, 15), fulfillment_status=FulfillmentStatus.PARTIAL)
    make_order(shop, placed_at=at(10, 10))  # within the SLA
    make_order(shop, placed_at=at(1, 0), status=OrderStatus.CANCELLED)
    refused = shipped(shop, at(9, 1), status=Status.FAILED, created_at=at(9, 2), error="Tracking number is invalid")
    older = shipped(shop, at(20, 1, month=2), status=Status.FAILED, created_at=at(20, 2, month=2), error="Order gone")
    shipped(shop, at(10, 1), status=Status.RETRYING, created_at=at(10, 2))

    figures = analytics(tenant, 7, now=NOW)

    assert figures["period"] == {"start": date(2026, 3, 4), "end": date(2026, 3, 10), "days": 7}
    assert figures["sla_hours"] == 24
    assert [(row["date"].day, row["orders"]) for row in figures["fulfilled_per_day"]] == [
        (4, 0),
        (5, 0),
        (6, 0),
        (7, 0),
        (8, 2),
        (9, 2),
        (10, 0),
    ]
    assert figures["fulfilled"] == 4
    assert figures["time_to_ship"] == [
        {"channel": "amazon", "label": "Amazon", "orders": 2, "median_hours": 15.75},
        {"channel": "shopify", "label": "Shopify", "orders": 2, "median_hours": 16.0},
    ]
    assert figures["median_hours"] == 15.75
    assert figures["late"]["waiting"] == 2
    assert figures["late"]["shipped_late"] == 2
    assert [(row["id"], row["number"], row["age_hours"]) for row in figures["late"]["oldest"]] == [
        (later.pk, "L1", 120.0),
        (late.pk, "L2", 60.0),
    ]
    assert figures["failed_pushes"]["failed"] == 1
    assert figures["failed_pushes"]["retrying"] == 1
    assert [(row["order"], row["last_error"]) for row in figures["failed_pushes"]["recent"]] == [
        (refused.pk, "Tracking number is invalid"),
        (older.pk, "Order gone"),  # failed before the period: listed, not counted
    ]


def test_a_client_without_shipments_has_zeros_and_no_median(tenant):
    figures = analytics(tenant, 30, now=NOW)
    assert figures["fulfilled"] == 0 and len(figures["fulfilled_per_day"]) == 30
    assert figures["median_hours"] is None and figures["time_to_ship"] == []
    assert figures["sla_hours"] == 24


def test_the_period_is_one_day_to_a_year(tenant):
    with pytest.raises(ValueError, match="1 to 366 days"):
        analytics(tenant, 0, now=NOW)
