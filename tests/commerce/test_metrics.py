"""The dashboard's figures against hand-computed expectations on one fixed shop.

Alpha sells in New York (America/New_York, base currency USD, default reorder point 5) through
Shopify and Amazon, in USD and EUR. "Today" is Saturday 2026-03-07, so the 7-day period is
Sun 1 to Sat 7 March and the previous one Sun 22 to Sat 28 February (EST, UTC-5, all along).

    #   channel  cur  total  placed (UTC)        local day  customer  status     fulfilment
    1   shopify  USD  100    Mar 1 05:00         Mar 1      alice     completed  fulfilled
    2   shopify  USD  50     Mar 3 15:00         Mar 3      bob       open       unfulfilled
    3   amazon   USD  30     Mar 3 18:00         Mar 3      carol     open       partial
    4   amazon   EUR  40     Mar 5 12:00         Mar 5      dave      completed  fulfilled
    5   shopify  USD  20     Mar 8 04:30         Mar 7      bob       open       unfulfilled
    6   shopify  USD  999    Mar 4 12:00         Mar 4      eve       cancelled  unfulfilled
    7   shopify  EUR  60     Mar 6 10:00         Mar 6      (guest)   completed  fulfilled
    8   shopify  USD  80     Mar 1 03:30         Feb 28     carol     completed  fulfilled
    9   amazon   USD  40     Feb 25 12:00        Feb 25     alice     completed  fulfilled
    10  shopify  EUR  50     Feb 24 12:00        Feb 24     (guest)   completed  fulfilled
    11  shopify  USD  500    Feb 23 12:00        Feb 23     dave      cancelled  unfulfilled
    12  shopify  USD  25     Feb 10 12:00        Feb 10     alice     open       unfulfilled
    13  shopify  USD  70     Mar 8 05:00         Mar 8      bob       completed  fulfilled

Refunds: 10 USD on #1 at Mar 2 12:00Z and 5 USD on #8 at Mar 4 12:00Z (this period); 15 EUR on
#10 at Feb 26 12:00Z and 8 USD on #1 at Mar 1 04:00Z, which is 23:00 on Feb 28 (previous period).

Beta, another tenant, has an order, a refund, a customer and stock in the same days; none of it
may show in Alpha's figures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F

from commerce import metrics
from commerce.ingest import Source, ingest_orders
from commerce.metrics import Period, dashboard, period_for
from commerce.models import (
    Customer,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
)
from commerce.records import CustomerRecord, OrderLineRecord, OrderRecord
from integrations.models import Connection, SyncRun
from integrations.sync import sync_committed
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 7)
D = Decimal


def utc(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Shop:
    alpha: Tenant
    beta: Tenant
    shopify: Connection
    amazon: Connection
    orders: dict[int, Order]

    def week(self) -> Period:
        return period_for(self.alpha, "7", today=TODAY)


_ids = iter(range(1, 1_000_000))


def _next(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def customer(connection: Connection, name: str) -> Customer:
    return Customer.objects.create(
        tenant=connection.tenant, connection=connection, external_id=_next("c"), email=f"{name}@example.com"
    )


def line(order: Order, sku: str, title: str, quantity: int, total: str) -> OrderLine:
    return OrderLine.objects.create(
        tenant=order.tenant,
        connection=order.connection,
        external_id=_next("l"),
        order=order,
        sku=sku,
        title=title,
        quantity=quantity,
        total=D(total),
    )


def refund(order: Order, amount: str, currency: str, at: datetime) -> Refund:
    return Refund.objects.create(
        tenant=order.tenant,
        connection=order.connection,
        external_id=_next("r"),
        order=order,
        amount=D(amount),
        currency=currency,
        refunded_at=at,
    )


def variant(connection: Connection, sku: str, levels: list[int], reorder_point: int | None = None) -> ProductVariant:
    product = Product.objects.create(
        tenant=connection.tenant, connection=connection, external_id=_next("p"), title=sku.split("-")[0].title()
    )
    made = ProductVariant.objects.create(
        tenant=connection.tenant,
        connection=connection,
        product=product,
        external_id=_next("v"),
        sku=sku,
        title="Default",
        currency="USD",
        reorder_point=reorder_point,
    )
    for n, available in enumerate(levels):
        InventoryLevel.objects.create(
            tenant=connection.tenant,
            connection=connection,
            variant=made,
            external_id=_next("i"),
            location_id=f"loc-{n}",
            available=available,
        )
    return made


@pytest.fixture
def shop(make_tenant, make_connection, make_order) -> Shop:
    alpha = make_tenant("Alpha", time_zone="America/New_York", base_currency="USD", default_reorder_point=5)
    beta = make_tenant("Beta", time_zone="America/New_York", base_currency="USD")
    shopify = make_connection(alpha, "shopify")
    amazon = make_connection(alpha, "amazon")
    beta_shop = make_connection(beta, "shopify")
    people = {name: customer(shopify, name) for name in ["alice", "bob", "carol", "dave", "eve"]}

    open_, done, cancelled = OrderStatus.OPEN, OrderStatus.COMPLETED, OrderStatus.CANCELLED
    unf, partial, ful = FulfillmentStatus.UNFULFILLED, FulfillmentStatus.PARTIAL, FulfillmentStatus.FULFILLED
    table = {
        1: (shopify, "USD", "100", utc(3, 1, 5), "alice", done, ful),
        2: (shopify, "USD", "50", utc(3, 3, 15), "bob", open_, unf),
        3: (amazon, "USD", "30", utc(3, 3, 18), "carol", open_, partial),
        4: (amazon, "EUR", "40", utc(3, 5), "dave", done, ful),
        5: (shopify, "USD", "20", utc(3, 8, 4, 30), "bob", open_, unf),
        6: (shopify, "USD", "999", utc(3, 4), "eve", cancelled, unf),
        7: (shopify, "EUR", "60", utc(3, 6, 10), None, done, ful),
        8: (shopify, "USD", "80", utc(3, 1, 3, 30), "carol", done, ful),
        9: (amazon, "USD", "40", utc(2, 25), "alice", done, ful),
        10: (shopify, "EUR", "50", utc(2, 24), None, done, ful),
        11: (shopify, "USD", "500", utc(2, 23), "dave", cancelled, unf),
        12: (shopify, "USD", "25", utc(2, 10), "alice", open_, unf),
        13: (shopify, "USD", "70", utc(3, 8, 5), "bob", done, ful),
    }
    orders = {
        n: make_order(
            connection,
            currency=currency,
            total=D(total),
            placed_at=placed_at,
            customer=people[who] if who else None,
            status=status,
            fulfillment_status=fulfilment,
        )
        for n, (connection, currency, total, placed_at, who, status, fulfilment) in table.items()
    }

    line(orders[1], "TENT-1", "Tent", 2, "80")
    line(orders[1], "MAT-1", "Mat", 1, "20")
    line(orders[2], "LAMP-1", "Lamp", 1, "45")
    line(orders[3], "MAT-1", "Mat", 1, "30")
    line(orders[5], "CUP-1", "Cup", 4, "20")
    line(orders[6], "STOVE-1", "Stove", 1, "999")
    line(orders[4], "TENT-1", "Tent", 1, "40")
    line(orders[7], "MAT-1", "Mat", 2, "60")
    line(orders[8], "TENT-1", "Tent", 1, "80")

    refund(orders[1], "10", "USD", utc(3, 2))
    refund(orders[8], "5", "USD", utc(3, 4))
    refund(orders[10], "15", "EUR", utc(2, 26))
    refund(orders[1], "8", "USD", utc(3, 1, 4))

    variant(shopify, "TENT-1", [3, 1])  # 4, at or below the default 5: low
    variant(shopify, "MAT-1", [8], reorder_point=10)  # 8, at or below its own 10: low
    variant(shopify, "LAMP-1", [4], reorder_point=2)  # 4, above its own 2: fine
    variant(shopify, "STOVE-1", [0, -2])  # -2: out
    variant(shopify, "BAG-1", [0])  # 0: out
    variant(shopify, "CUP-1", [50])  # fine
    variant(shopify, "GIFT-1", [])  # no stock tracked

    beta_order = make_order(
        beta_shop, currency="USD", total=D("1000"), placed_at=utc(3, 3), customer=customer(beta_shop, "zed")
    )
    line(beta_order, "STOVE-1", "Stove", 1, "1000")
    refund(beta_order, "100", "USD", utc(3, 3))
    variant(beta_shop, "KAYAK-1", [0])

    return Shop(alpha=alpha, beta=beta, shopify=shopify, amazon=amazon, orders=orders)


# --- Periods --------------------------------------------------------------------------------------


def test_a_preset_period_is_the_last_n_days_ending_today(shop):
    assert period_for(shop.alpha, "7", today=TODAY) == Period(date(2026, 3, 1), date(2026, 3, 7), "7")
    assert period_for(shop.alpha, "30", today=TODAY) == Period(date(2026, 2, 6), date(2026, 3, 7), "30")
    period = period_for(shop.alpha, "90", today=TODAY)
    assert (period.start, period.end, period.days) == (date(2025, 12, 8), date(2026, 3, 7), 90)


def test_today_is_the_tenants_day(shop, monkeypatch):
    # 02:00 UTC on March 8 is still March 7 in New York.
    monkeypatch.setattr("django.utils.timezone.now", lambda: utc(3, 8, 2))
    assert period_for(shop.alpha, "7").end == date(2026, 3, 7)


def test_the_previous_period_has_the_same_length_immediately_before():
    previous = Period(date(2026, 3, 1), date(2026, 3, 7), "7").previous()
    assert previous == Period(date(2026, 2, 22), date(2026, 2, 28), "7")
    assert previous.days == 7


def test_a_custom_period_runs_from_start_to_end(shop):
    period = period_for(shop.alpha, "custom", start=date(2025, 1, 1), end=date(2026, 12, 31))
    assert (period.days, period.key) == (730, "custom")


@pytest.mark.parametrize(
    ("key", "start", "end", "message"),
    [
        ("custom", date(2026, 3, 7), date(2026, 3, 1), "on or before"),
        ("custom", date(2024, 1, 1), date(2026, 1, 1), "at most 731 days"),
        ("custom", None, date(2026, 3, 1), "both a start date and an end date"),
        ("365", None, None, "Unknown period"),
    ],
)
def test_an_invalid_period_is_refused_with_a_clear_message(shop, key, start, end, message):
    with pytest.raises(ValueError, match=message):
        period_for(shop.alpha, key, start=start, end=end)


# --- Figures --------------------------------------------------------------------------------------


def test_the_period_is_described_with_its_previous_period(shop):
    assert dashboard(shop.alpha, shop.week())["period"] == {
        "start": date(2026, 3, 1),
        "end": date(2026, 3, 7),
        "key": "7",
        "days": 7,
        "previous_start": date(2026, 2, 22),
        "previous_end": date(2026, 2, 28),
    }


def test_sales_are_per_currency_with_refunds_and_the_change_against_the_previous_period(shop):
    data = dashboard(shop.alpha, shop.week())
    assert data["currencies"] == ["USD", "EUR"]
    assert data["sales"]["USD"] == {
        "revenue": D("200"),
        "orders": 4,
        "aov": D("50.00"),
        "refunds": D("15"),
        "net_revenue": D("185"),
        "previous": {"revenue": D("120"), "orders": 2, "aov": D("60.00"), "refunds": D("8"), "net_revenue": D("112")},
        "change": {"revenue": 66.7, "orders": 100.0, "aov": -16.7, "refunds": 87.5, "net_revenue": 65.2},
    }
    assert data["sales"]["EUR"] == {
        "revenue": D("100"),
        "orders": 2,
        "aov": D("50.00"),
        "refunds": D("0"),
        "net_revenue": D("100"),
        "previous": {"revenue": D("50"), "orders": 1, "aov": D("50.00"), "refunds": D("15"), "net_revenue": D("35")},
        "change": {"revenue": 100.0, "orders": 100.0, "aov": 0.0, "refunds": -100.0, "net_revenue": 185.7},
    }


def test_order_counts_add_up_across_currencies(shop):
    assert dashboard(shop.alpha, shop.week())["orders"] == {"count": 6, "previous": 3, "change": 100.0}


def test_change_is_none_when_the_previous_period_had_nothing(shop):
    data = dashboard(shop.alpha, period_for(shop.alpha, "custom", start=date(2026, 2, 10), end=date(2026, 2, 10)))
    assert data["orders"] == {"count": 1, "previous": 0, "change": None}
    assert data["sales"]["USD"]["change"] == {
        "revenue": None,
        "orders": None,
        "aov": None,
        "refunds": None,
        "net_revenue": None,
    }
    assert data["sales"]["USD"]["previous"]["aov"] is None


def test_an_order_at_local_midnight_opens_the_day(shop):
    # #13 at 05:00Z is 00:00 on Mar 8 in New York; #5 at 04:30Z is 23:30 on Mar 7.
    data = dashboard(shop.alpha, period_for(shop.alpha, "custom", start=date(2026, 3, 8), end=date(2026, 3, 8)))
    assert data["orders"] == {"count": 1, "previous": 1, "change": 0.0}
    assert data["sales"]["USD"]["revenue"] == D("70")
    assert data["sales"]["USD"]["previous"]["revenue"] == D("20")


def test_unshipped_counts_open_unfulfilled_and_partial_orders_of_any_date(shop):
    # #2, #3 (partial), #5 and #12 (February); cancelled #6 and #11 are not waiting for anyone.
    assert dashboard(shop.alpha, shop.week())["unshipped"] == 4


def test_customers_are_new_on_their_first_counted_order_and_returning_after(shop):
    # Alice ordered in February, Carol on Feb 28 local (Mar 1 UTC): returning. Bob's first order is
    # in the period, and Dave's only earlier order was cancelled: new. Eve's was cancelled.
    assert dashboard(shop.alpha, shop.week())["customers"] == {"new": 2, "returning": 2}


def test_inventory_uses_each_variants_reorder_point_else_the_tenants(shop):
    assert dashboard(shop.alpha, shop.week())["inventory"] == {
        "skus": 7,
        "quantity": 64,
        "low_stock": 2,
        "out_of_stock": 2,
    }


def test_the_low_stock_list_shows_the_lowest_first(shop):
    rows = dashboard(shop.alpha, shop.week())["low_stock"]
    assert [(row["sku"], row["available"], row["reorder_point"]) for row in rows] == [
        ("STOVE-1", -2, 5),
        ("BAG-1", 0, 5),
        ("TENT-1", 4, 5),
        ("MAT-1", 8, 10),
    ]
    assert rows[0]["title"] == "Stove"
    assert rows[0]["variant_title"] == "Default"
    assert rows[0]["variant_id"] == ProductVariant.objects.get(tenant=shop.alpha, sku="STOVE-1").pk


def test_the_daily_series_has_every_local_day_for_every_currency(shop):
    series = dashboard(shop.alpha, shop.week())["series"]
    assert series["bucket"] == "day"
    points = {(p["currency"], p["date"].day): (p["revenue"], p["orders"]) for p in series["points"]}
    assert len(series["points"]) == 14
    usd = [points["USD", day] for day in range(1, 8)]
    assert usd == [(100, 1), (0, 0), (80, 2), (0, 0), (0, 0), (0, 0), (20, 1)]
    eur = [points["EUR", day] for day in range(1, 8)]
    assert eur == [(0, 0), (0, 0), (0, 0), (0, 0), (40, 1), (60, 1), (0, 0)]


def test_weekly_buckets_start_on_monday_and_count_only_the_periods_orders(shop):
    series = dashboard(shop.alpha, shop.week(), bucket="week")["series"]
    assert series["bucket"] == "week"
    # Sunday March 1 is in the week of Monday Feb 23, which also holds #8 of the previous period.
    assert [(p["date"], p["currency"], p["revenue"], p["orders"]) for p in series["points"]] == [
        (date(2026, 2, 23), "USD", D("100"), 1),
        (date(2026, 3, 2), "USD", D("100"), 3),
        (date(2026, 2, 23), "EUR", D("0"), 0),
        (date(2026, 3, 2), "EUR", D("100"), 2),
    ]


def test_long_periods_are_weekly_by_default(shop):
    series = dashboard(shop.alpha, period_for(shop.alpha, "90", today=TODAY))["series"]
    assert series["bucket"] == "week"
    # Dec 8 2025 is a Monday; 13 weeks reach Mar 7 2026, for each of two currencies.
    assert len(series["points"]) == 26
    assert series["points"][0]["date"] == date(2025, 12, 8)


def test_an_unknown_bucket_is_refused(shop):
    with pytest.raises(ValueError, match="Unknown bucket"):
        dashboard(shop.alpha, shop.week(), bucket="month")


def test_channels_share_their_currencys_revenue(shop):
    assert dashboard(shop.alpha, shop.week())["channels"] == [
        {"channel": "shopify", "label": "Shopify", "currency": "USD", "revenue": D("170"), "orders": 3, "share": 85.0},
        {"channel": "amazon", "label": "Amazon", "currency": "USD", "revenue": D("30"), "orders": 1, "share": 15.0},
        {"channel": "shopify", "label": "Shopify", "currency": "EUR", "revenue": D("60"), "orders": 1, "share": 60.0},
        {"channel": "amazon", "label": "Amazon", "currency": "EUR", "revenue": D("40"), "orders": 1, "share": 40.0},
    ]


def test_the_preferred_channel_sells_most_in_the_base_currency(shop):
    assert dashboard(shop.alpha, shop.week())["preferred_channel"] == {
        "channel": "shopify",
        "label": "Shopify",
        "currency": "USD",
    }


def test_the_preferred_channel_falls_back_to_the_first_currency_with_sales(shop):
    shop.alpha.base_currency = "GBP"
    shop.alpha.save()
    data = dashboard(shop.alpha, shop.week())
    assert data["currencies"] == ["GBP", "USD", "EUR"]
    assert data["sales"]["GBP"]["revenue"] == 0
    assert data["preferred_channel"] == {"channel": "shopify", "label": "Shopify", "currency": "USD"}


def test_top_products_rank_line_revenue_of_counted_orders_per_currency(shop):
    rows = dashboard(shop.alpha, shop.week())["top_products"]
    assert [(r["currency"], r["sku"], r["title"], r["quantity"], r["revenue"]) for r in rows] == [
        ("USD", "TENT-1", "Tent", 2, D("80")),
        ("USD", "MAT-1", "Mat", 2, D("50")),
        ("USD", "LAMP-1", "Lamp", 1, D("45")),
        ("USD", "CUP-1", "Cup", 4, D("20")),
        ("EUR", "MAT-1", "Mat", 2, D("60")),
        ("EUR", "TENT-1", "Tent", 1, D("40")),
    ]


def test_top_products_keep_ten_per_currency(shop):
    for n in range(12):
        line(shop.orders[2], f"SKU-{n:02}", f"Thing {n}", 1, str(100 + n))
    rows = dashboard(shop.alpha, shop.week())["top_products"]
    usd = [r["sku"] for r in rows if r["currency"] == "USD"]
    assert usd == [f"SKU-{n:02}" for n in range(11, 1, -1)]
    assert [r["currency"] for r in rows].count("EUR") == 2


def test_the_figures_follow_orders_changed_one_at_a_time(shop):
    # Alice's February orders cancelled: her first counted order is #1, in the period, so she is new.
    # #1 cancelled as well and moved to Eve: its lines drop out of top products, Eve still has no
    # counted order, and Alice none in the period.
    for n in (9, 12):
        shop.orders[n].status = OrderStatus.CANCELLED
        shop.orders[n].save()
    assert dashboard(shop.alpha, shop.week())["customers"] == {"new": 3, "returning": 1}

    first = Order.objects.get(pk=shop.orders[1].pk)
    first.status, first.customer = OrderStatus.CANCELLED, Customer.objects.get(email="eve@example.com")
    first.save()
    metrics.invalidate(shop.alpha.pk)

    data = dashboard(shop.alpha, shop.week())
    assert data["customers"] == {"new": 2, "returning": 1}
    assert [(r["currency"], r["sku"], r["revenue"]) for r in data["top_products"] if r["currency"] == "USD"] == [
        ("USD", "LAMP-1", D("45")),
        ("USD", "MAT-1", D("30")),
        ("USD", "CUP-1", D("20")),
    ]


def test_customers_and_top_products_match_their_definitions_whatever_the_orders_went_through(
    make_tenant, make_connection
):
    """The two figures read columns derived at write time (Customer.first_order_at, the lines' copies
    of their order). After pages of new orders, late arrivals, cancellations, reinstatements, moves
    between customers and changed lines, they equal the definitions computed from the orders."""
    rng = random.Random(20260307)
    tenant = make_tenant("Gamma", time_zone="America/New_York", base_currency="USD")
    connection = make_connection(tenant, "shopify")
    source = Source(tenant.pk, connection.pk, "shopify")
    people = [CustomerRecord(f"c{n}") for n in range(12)]
    version: dict[str, int] = {}
    for _page in range(15):
        page = []
        for _ in range(12):
            external_id = f"o{rng.randrange(70)}"
            version[external_id] = version.get(external_id, 0) + 1
            page.append(
                OrderRecord(
                    external_id=external_id,
                    number=external_id,
                    currency=rng.choice(["USD", "USD", "EUR"]),
                    placed_at=utc(1, 1) + timedelta(hours=rng.randrange(24 * 70)),
                    updated_at=utc(4, 1) + timedelta(minutes=version[external_id] - rng.choice([0, 0, 0, 2])),
                    status=rng.choice([OrderStatus.OPEN, OrderStatus.COMPLETED, OrderStatus.CANCELLED]),
                    customer=rng.choice([None, *people]),
                    lines=[
                        OrderLineRecord(
                            f"{external_id}-L{rng.randrange(3)}",
                            title=f"Thing {k}",
                            sku=f"SKU-{k}",
                            quantity=rng.randrange(1, 4),
                            unit_price=D("1"),
                            total=D(rng.randrange(1, 60)),
                        )
                        for k in rng.sample(range(14), rng.randrange(0, 3))
                    ],
                )
            )
        ingest_orders(source, page)

    orders = list(Order.objects.for_tenant(tenant))
    lines = list(OrderLine.objects.for_tenant(tenant).select_related("order"))
    zone = metrics.tenant_zone(tenant)
    for first, last in [(date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 3, 15))]:
        start, end = metrics._bounds(Period(first, last, "custom"), zone)
        counted = [o for o in orders if o.status != OrderStatus.CANCELLED and o.customer_id]
        ordered = {o.customer_id for o in counted if start <= o.placed_at < end}
        earlier = {o.customer_id for o in counted if o.placed_at < start}
        assert metrics.customers(tenant, start, end) == {
            "new": len(ordered - earlier),
            "returning": len(ordered & earlier),
        }

        totals: dict[tuple, list] = {}
        for item in lines:
            if item.order.status != OrderStatus.CANCELLED and start <= item.order.placed_at < end:
                figures = totals.setdefault((item.order.currency, item.sku, item.title), [0, D("0")])
                figures[0] += item.quantity
                figures[1] += item.total
        expected = []
        for currency in sorted({currency for currency, _, _ in totals}):
            ranked = sorted(
                ((sku, title, *figures) for (c, sku, title), figures in totals.items() if c == currency),
                key=lambda row: (-row[3], row[0], row[1]),
            )
            expected += [(currency, *row) for row in ranked[: metrics.TOP_PRODUCTS]]
        rows = metrics.top_products(tenant, start, end)
        assert [(r["currency"], r["sku"], r["title"], r["quantity"], r["revenue"]) for r in rows] == expected
        assert len(ordered) > 3 and len(rows) > 3  # the history is not trivially empty


def test_another_tenants_data_is_never_counted(shop):
    beta = dashboard(shop.beta, period_for(shop.beta, "7", today=TODAY))
    assert beta["orders"]["count"] == 1
    assert beta["sales"]["USD"]["revenue"] == D("1000")
    assert beta["sales"]["USD"]["refunds"] == D("100")
    assert beta["customers"] == {"new": 1, "returning": 0}
    assert beta["inventory"] == {"skus": 1, "quantity": 0, "low_stock": 0, "out_of_stock": 1}
    assert [r["sku"] for r in beta["top_products"]] == ["STOVE-1"]
    assert beta["unshipped"] == 1


def test_an_empty_shop_shows_zeros_in_its_base_currency(make_tenant):
    tenant = make_tenant("Empty", base_currency="EUR")
    data = dashboard(tenant, period_for(tenant, "7", today=TODAY))
    assert data["currencies"] == ["EUR"]
    assert data["sales"]["EUR"]["revenue"] == 0
    assert data["sales"]["EUR"]["change"]["revenue"] is None
    assert data["orders"] == {"count": 0, "previous": 0, "change": None}
    assert [p["revenue"] for p in data["series"]["points"]] == [0] * 7
    assert data["channels"] == []
    assert data["preferred_channel"] is None
    assert data["inventory"] == {"skus": 0, "quantity": 0, "low_stock": 0, "out_of_stock": 0}


def test_the_figures_take_a_bounded_number_of_queries(shop, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        dashboard(shop.alpha, shop.week())


# --- Cache ----------------------------------------------------------------------------------------


def test_a_second_call_is_served_from_the_cache(shop, django_assert_num_queries):
    first = dashboard(shop.alpha, shop.week())
    with django_assert_num_queries(0):
        second = dashboard(shop.alpha, shop.week())
    assert second == first


def test_each_period_and_bucket_is_cached_on_its_own(shop):
    daily = dashboard(shop.alpha, shop.week())
    weekly = dashboard(shop.alpha, shop.week(), bucket="week")
    month = dashboard(shop.alpha, period_for(shop.alpha, "30", today=TODAY))
    assert daily["series"]["bucket"] == "day"
    assert weekly["series"]["bucket"] == "week"
    assert month["period"]["days"] == 30


def test_a_committed_sync_for_the_tenant_drops_its_cached_figures(shop, make_order):
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6
    make_order(shop.shopify, placed_at=utc(3, 6))
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6

    sync_committed.send(sender=SyncRun, tenant_id=shop.alpha.pk, connection_id=shop.shopify.pk, stream="orders")

    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 7


def test_a_sync_of_another_tenant_leaves_the_cache_alone(shop, make_order, django_assert_num_queries):
    dashboard(shop.alpha, shop.week())
    beta_connection = Connection.objects.get(tenant=shop.beta)
    sync_committed.send(sender=SyncRun, tenant_id=shop.beta.pk, connection_id=beta_connection.pk, stream="orders")
    with django_assert_num_queries(0):
        dashboard(shop.alpha, shop.week())


def test_invalidate_before_anything_is_cached_is_harmless(shop):
    metrics.invalidate(shop.alpha.pk)
    metrics.invalidate(shop.alpha.pk)
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6


def test_an_invalidation_inside_a_transaction_is_repeated_after_the_commit(
    shop, make_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        metrics.invalidate(shop.alpha.pk)
        # A read before the commit caches what it sees under the new version.
        assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6
        make_order(shop.shopify, placed_at=utc(3, 6))
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 7


def test_invalidation_reaches_a_process_with_its_own_cache_through_the_tenant_row(shop, make_order):
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6
    make_order(shop.shopify, placed_at=utc(3, 6))
    # Another process (the task worker, with its own local-memory cache) commits a sync page:
    # only the tenant row tells this process.
    Tenant.objects.filter(pk=shop.alpha.pk).update(data_version=F("data_version") + 1)
    assert dashboard(shop.alpha, shop.week())["orders"]["count"] == 6  # this request's tenant is older
    fresh = Tenant.objects.get(pk=shop.alpha.pk)
    assert dashboard(fresh, shop.week())["orders"]["count"] == 7


def test_invalidate_moves_the_tenant_rows_version_on_once_committed(shop, django_capture_on_commit_callbacks):
    before = Tenant.objects.get(pk=shop.alpha.pk).data_version
    with django_capture_on_commit_callbacks(execute=True):
        metrics.invalidate(shop.alpha.pk)
        assert Tenant.objects.get(pk=shop.alpha.pk).data_version == before
    assert Tenant.objects.get(pk=shop.alpha.pk).data_version == before + 1
