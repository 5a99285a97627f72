"""The client dashboard's pages: figures from the metrics, charts, connections, orders, CSV export, stock."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_q.models import Schedule

from commerce import charts
from commerce.metrics import dashboard, period_for
from commerce.models import (
    Customer,
    FulfillmentStatus,
    InventoryLevel,
    OrderLine,
    OrderStatus,
    Product,
    ProductVariant,
)
from integrations.models import ConnectionStatus, SyncRun, SyncStatus
from integrations.tasks import schedule_name

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    return client


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


@pytest.fixture
def other_shop(make_connection, tenant_b):
    return make_connection(tenant_b, "shopify", name="Beta Shopify")


def days_ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def page(client, url: str = "/dashboard/", **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def kpi(content: str, name: str) -> str:
    """The number in a KPI card's `.value` element."""
    match = re.search(rf'data-kpi="{re.escape(name)}".*?<span class="value">(.*?)</span>', content, re.S)
    assert match, f"no KPI card {name}"
    return match.group(1).strip()


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def add_variant(connection, sku: str, available: int, *, title: str = "Tent", reorder_point: int | None = None):
    n = ProductVariant.objects.count() + 1
    product = Product.objects.create(tenant=connection.tenant, connection=connection, external_id=f"p-{n}", title=title)
    variant = ProductVariant.objects.create(
        tenant=connection.tenant,
        connection=connection,
        external_id=f"v-{n}",
        product=product,
        sku=sku,
        currency="USD",
        reorder_point=reorder_point,
    )
    InventoryLevel.objects.create(
        tenant=connection.tenant, connection=connection, external_id=f"i-{n}", variant=variant, available=available
    )
    return variant


# --- KPI cards ------------------------------------------------------------------------------------


def test_the_revenue_card_shows_the_periods_revenue(owner, shop, make_order):
    make_order(shop, total=D("100.00"))
    make_order(shop, total=D("250.50"), placed_at=days_ago(3))
    make_order(shop, total=D("1049.50"), placed_at=days_ago(10))
    make_order(shop, total=D("999.00"), status=OrderStatus.CANCELLED)
    make_order(shop, total=D("500.00"), placed_at=days_ago(45))
    content = page(owner)
    assert kpi(content, "revenue-USD") == "1,400.00"
    assert kpi(content, "orders") == "3"
    assert kpi(content, "aov-USD") == "466.67"
    assert kpi(content, "net-revenue-USD") == "1,400.00"


def test_every_card_shows_the_figure_the_metrics_computed(owner, shop, tenant_a, make_order):
    alice = Customer.objects.create(tenant=tenant_a, connection=shop, external_id="c-1", email="alice@example.com")
    bob = Customer.objects.create(tenant=tenant_a, connection=shop, external_id="c-2", email="bob@example.com")
    make_order(shop, total=D("80.00"), customer=alice, placed_at=days_ago(50), fulfillment_status="fulfilled")
    make_order(shop, total=D("120.00"), customer=alice, fulfillment_status=FulfillmentStatus.PARTIAL)
    make_order(shop, total=D("30.00"), customer=bob)
    add_variant(shop, "LOW-1", 2)
    add_variant(shop, "OUT-1", 0)
    add_variant(shop, "OK-1", 40)
    data = dashboard(tenant_a, period_for(tenant_a, "30"))
    content = page(owner)
    usd = data["sales"]["USD"]
    assert kpi(content, "revenue-USD") == f"{usd['revenue']:,.2f}" == "150.00"
    assert kpi(content, "orders") == str(data["orders"]["count"]) == "2"
    assert kpi(content, "unshipped") == str(data["unshipped"]) == "2"
    assert kpi(content, "new-customers") == str(data["customers"]["new"]) == "1"
    assert kpi(content, "returning-customers") == str(data["customers"]["returning"]) == "1"
    assert kpi(content, "skus") == "3"
    assert kpi(content, "quantity") == "42"
    assert kpi(content, "low-stock") == "1"
    assert kpi(content, "out-of-stock") == "1"


def test_each_currency_has_its_own_cards_and_money_is_never_summed_across_them(owner, shop, make_order):
    make_order(shop, total=D("100.00"), currency="USD")
    make_order(shop, total=D("50.00"), currency="EUR")
    content = page(owner)
    assert kpi(content, "revenue-USD") == "100.00"
    assert kpi(content, "revenue-EUR") == "50.00"
    assert kpi(content, "orders") == "2"
    assert "150.00" not in content
    assert "Sales in USD" in content
    assert "Sales in EUR" in content


def test_the_change_against_the_previous_period_is_shown_on_the_card(owner, shop, make_order):
    make_order(shop, total=D("300.00"))
    make_order(shop, total=D("200.00"), placed_at=days_ago(40))
    content = page(owner)
    card = content[content.index('data-kpi="revenue-USD"') :][:600]
    assert "▲ 50.0%" in card
    assert "Up 50.0% on the previous period" in card


def test_a_rise_in_refunds_is_shown_as_bad_news(owner, shop, make_order):
    from commerce.models import Refund

    order = make_order(shop, total=D("100.00"))
    for amount, when in ((D("20.00"), days_ago(1)), (D("10.00"), days_ago(40))):
        Refund.objects.create(
            tenant=order.tenant,
            connection=shop,
            external_id=f"r-{amount}",
            order=order,
            amount=amount,
            currency="USD",
            refunded_at=when,
        )
    content = page(owner)
    assert kpi(content, "refunds-USD") == "20.00"
    assert kpi(content, "net-revenue-USD") == "80.00"
    card = content[content.index('data-kpi="refunds-USD"') :][:600]
    assert 'class="change up bad"' in card


def test_an_empty_dashboard_shows_zeros_in_the_base_currency(owner, tenant_a):
    content = page(owner)
    assert kpi(content, f"revenue-{tenant_a.base_currency}") == "0.00"
    assert kpi(content, "orders") == "0"
    assert "No sales in this period." in content


# --- Period ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["7", "30", "90"])
def test_each_preset_period_is_offered_and_marked_when_chosen(owner, key):
    content = page(owner, period=key)
    assert f'href="?period={key}" class="active"' in content


def test_a_custom_period_counts_only_its_own_days(owner, shop, make_order):
    make_order(shop, total=D("70.00"), placed_at=datetime(2026, 1, 10, 12, tzinfo=UTC))
    make_order(shop, total=D("30.00"), placed_at=datetime(2026, 2, 10, 12, tzinfo=UTC))
    content = page(owner, period="custom", start="2026-01-01", end="2026-01-31")
    assert kpi(content, "revenue-USD") == "70.00"
    assert re.search(r"1 Jan 2026 \S 31 Jan 2026 \(31 days\)", content)
    assert 'value="2026-01-01"' in content


def test_a_custom_period_that_ends_before_it_starts_shows_a_message_instead_of_failing(owner):
    content = page(owner, period="custom", start="2026-02-10", end="2026-02-01")
    assert 'id="period-error"' in content
    assert "The start date must be on or before the end date." in content
    assert "Showing the last 30 days instead." in content


def test_a_custom_period_with_a_date_that_is_not_a_date_shows_a_message(owner):
    content = page(owner, period="custom", start="31/01/2026", end="2026-02-30")
    assert "Enter the dates of a custom period as YYYY-MM-DD." in content


def test_a_custom_period_without_an_end_shows_a_message(owner):
    content = page(owner, period="custom", start="2026-01-01")
    assert "Choose both a start and an end date for a custom period." in content


def test_an_unknown_period_shows_the_last_30_days(owner):
    content = page(owner, period="365")
    assert "(30 days)" in content
    assert 'id="period-error"' not in content


# --- Charts ---------------------------------------------------------------------------------------


def test_the_three_charts_are_inline_svg_with_titles(owner, shop, make_order):
    order = make_order(shop, total=D("40.00"))
    OrderLine.objects.create(
        tenant=order.tenant, connection=shop, external_id="l-1", order=order, title="Tent", quantity=2, total=D("40")
    )
    content = page(owner)
    for chart_id in ("chart-sales", "chart-channels", "chart-top-products"):
        section = content[content.index(f'id="{chart_id}"') :]
        figure = section[: section.index("</figure>")]
        assert "<svg" in figure
        assert "<script" not in figure  # the charts are plain SVG (only the activity feed polls)
    assert "<title" in content
    assert "Revenue and orders per day (USD)" in content
    assert "Revenue by channel (USD)" in content


@pytest.mark.parametrize(
    ("largest", "steps", "whole", "expected"),
    [(830, 4, False, (1000, 4)), (3400, 4, False, (4000, 4)), (12.5, 4, False, (15, 3)), (8, 2, True, (10, 2)),
     (1, 2, True, (1, 1)), (3, 2, True, (4, 2))],
)  # fmt: skip
def test_chart_axes_end_on_a_round_number_with_whole_steps_for_counts(largest, steps, whole, expected):
    assert charts.axis(largest, steps, whole=whole) == expected


def test_the_sales_chart_draws_quiet_days_as_zero(owner, shop, make_order):
    make_order(shop, total=D("50.00"), placed_at=days_ago(2))
    content = page(owner, period="7")
    chart = content[content.index('id="chart-sales"') : content.index("</figure>", content.index("chart-sales"))]
    assert chart.count('<g class="point">') == 7
    assert chart.count(": 0.00 USD, 0 orders</title>") == 6


def test_revenue_by_channel_has_a_bar_per_channel_with_its_share(owner, shop, make_connection, tenant_a, make_order):
    amazon = make_connection(tenant_a, "amazon")
    make_order(shop, total=D("300.00"))
    make_order(amazon, total=D("100.00"))
    content = page(owner)
    chart = content[content.index('id="chart-channels"') : content.index("</figure>", content.index("chart-channels"))]
    assert "Shopify" in chart
    assert "Amazon" in chart
    assert "300.00 (75%)" in chart
    assert "100.00 (25%)" in chart


def test_the_preferred_channel_is_named_in_words(owner, shop, make_connection, tenant_a, make_order):
    make_order(make_connection(tenant_a, "woocommerce"), total=D("10.00"))
    make_order(shop, total=D("90.00"))
    content = page(owner)
    assert re.search(r"Your best channel: <strong>Shopify</strong>", content)


def test_a_product_title_with_markup_is_escaped_in_the_charts(owner, shop, make_order):
    order = make_order(shop, total=D("12.00"))
    OrderLine.objects.create(
        tenant=order.tenant,
        connection=shop,
        external_id="l-x",
        order=order,
        sku='X"1',
        title="<script>alert(1)</script> & co",
        quantity=1,
        total=D("12.00"),
    )
    content = page(owner)
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in content
    assert 'X"1' not in content


# --- Connections panel ----------------------------------------------------------------------------


def test_the_connections_panel_shows_status_last_sync_next_sync_and_last_error(owner, make_connection, tenant_a):
    tenant_a.time_zone = "Europe/Berlin"
    tenant_a.save()
    failing = make_connection(
        tenant_a,
        "woocommerce",
        name="Outlet",
        status=ConnectionStatus.FAILING,
        last_error="The store answered 401: the consumer key was revoked.",
    )
    SyncRun.objects.create(
        tenant=tenant_a,
        connection=failing,
        status=SyncStatus.FAILED,
        started_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        finished_at=datetime(2026, 3, 1, 9, 5, tzinfo=UTC),
    )
    Schedule.objects.create(
        name=schedule_name(failing),
        func="integrations.tasks.scheduled_sync",
        schedule_type=Schedule.MINUTES,
        minutes=60,
        next_run=datetime(2026, 3, 1, 10, 5, tzinfo=UTC),
    )
    content = page(owner)
    panel = content[content.index('id="connections"') : content.index('id="low-stock"')]
    assert "Outlet" in panel
    assert "WooCommerce" in panel
    assert '<span class="badge failing">Failing</span>' in panel
    assert "1 Mar 2026, 10:05" in panel  # last sync, Berlin time
    assert "Failed" in panel
    assert "1 Mar 2026, 11:05" in panel  # next sync, Berlin time
    assert "The store answered 401: the consumer key was revoked." in panel
    assert "Connect a platform" not in content


def test_a_connection_that_never_synced_and_syncs_manually_says_so(owner, make_connection, tenant_a):
    make_connection(tenant_a, "shopify", sync_frequency="manual")
    panel = page(owner)
    panel = panel[panel.index('id="connections"') :]
    assert "Untested" in panel
    assert "Never" in panel
    assert "Manual only" in panel


def test_without_a_connection_the_panel_tells_the_client_how_to_connect_a_platform(owner, other_shop):
    content = page(owner)
    assert 'id="connect-platform"' in content
    assert "Connect a platform" in content
    assert "Ask your account manager" in content
    assert 'href="/dashboard/integrations/"' in content  # where they connect it themselves
    assert "Beta Shopify" not in content


# --- Orders ---------------------------------------------------------------------------------------


@pytest.fixture
def orders(shop, make_connection, tenant_a, make_order):
    amazon = make_connection(tenant_a, "amazon")
    return {
        "s1": make_order(shop, number="S-1", email="ann@example.com"),
        "s2": make_order(
            shop,
            number="S-2",
            email="bo@example.com",
            status=OrderStatus.COMPLETED,
            fulfillment_status=FulfillmentStatus.FULFILLED,
        ),
        "a1": make_order(amazon, number="A-1", email="ann@example.com", status=OrderStatus.CANCELLED),
        "a2": make_order(amazon, number="A-2", email="cy@example.com", fulfillment_status=FulfillmentStatus.PARTIAL),
    }


def listed(content: str) -> set[str]:
    table = content[content.index('id="orders-table"') : content.index("</table>", content.index('id="orders-table"'))]
    return set(re.findall(r">#([\w-]+)</a>", table))


def test_the_order_list_filters_by_channel(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", channel="amazon")) == {"A-1", "A-2"}


def test_the_order_list_filters_by_order_status(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", status="completed")) == {"S-2"}


def test_the_order_list_filters_by_fulfilment_status(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", fulfillment="partial")) == {"A-2"}


def test_not_shipped_yet_lists_the_orders_the_unshipped_card_counts(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", fulfillment="unshipped")) == {"S-1", "A-2"}
    assert kpi(page(owner), "unshipped") == "2"


def test_the_order_list_searches_order_numbers_and_emails(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", q="ann@")) == {"S-1", "A-1"}
    assert listed(page(owner, "/dashboard/orders/", q="#s-2")) == {"S-2"}


def test_filters_combine(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", q="ann@", channel="shopify")) == {"S-1"}


def test_an_unknown_status_is_ignored_rather_than_failing(owner, orders):
    assert listed(page(owner, "/dashboard/orders/", status="nonsense")) == {"S-1", "S-2", "A-1", "A-2"}


def test_the_filter_form_keeps_the_chosen_values(owner, orders):
    content = page(owner, "/dashboard/orders/", q="ann", channel="amazon", status="cancelled")
    form = content[content.index('id="order-filters"') : content.index("</form>", content.index("order-filters"))]
    assert 'name="q" value="ann"' in form
    assert '<option value="amazon" selected>Amazon</option>' in form
    assert '<option value="cancelled" selected>Cancelled</option>' in form


def test_the_order_list_shows_50_orders_a_page_and_its_links_keep_the_filters(owner, shop, make_order):
    for n in range(60):
        make_order(shop, number=f"P-{n:03}", placed_at=days_ago(1 + n / 100))
    content = page(owner, "/dashboard/orders/", channel="shopify", q="P-")
    assert len(listed(content)) == 50
    assert "Page 1 of 2" in content
    assert 'href="?channel=shopify&amp;q=P-&amp;page=2"' in content
    second = page(owner, "/dashboard/orders/", channel="shopify", q="P-", page="2")
    assert len(listed(second)) == 10
    assert "P-059" in second
    assert 'href="?channel=shopify&amp;q=P-&amp;page=1"' in second


def test_the_export_link_carries_the_filters_but_not_the_page(owner, orders):
    content = page(owner, "/dashboard/orders/", channel="amazon", q="ann", page="1")
    assert 'href="/dashboard/orders.csv?channel=amazon&amp;q=ann"' in content


def test_the_order_page_shows_lines_and_totals(owner, shop, make_order):
    order = make_order(
        shop,
        number="D-1",
        subtotal=D("20"),
        shipping=D("5"),
        tax=D("2"),
        total=D("27"),
        shipping_address={"first_name": "Ann", "last_name": "Lee", "city": "Oslo", "country": "NO"},
    )
    OrderLine.objects.create(
        tenant=order.tenant,
        connection=shop,
        external_id="l-d",
        order=order,
        sku="TENT-2",
        title="Tent",
        quantity=2,
        unit_price=D("10"),
        total=D("20"),
    )
    content = page(owner, f"/dashboard/orders/{order.pk}/")
    assert "Order #D-1" in content
    assert "TENT-2" in content
    assert "27.00 USD" in content
    assert "Ann Lee<br>Oslo<br>NO" in content


# --- CSV export -----------------------------------------------------------------------------------


def test_the_csv_export_streams_every_column_in_the_tenants_time_zone(owner, shop, tenant_a, make_order):
    tenant_a.time_zone = "America/New_York"
    tenant_a.save()
    make_order(
        shop,
        number="1001",
        email="ann@example.com",
        placed_at=datetime(2026, 3, 1, 3, 30, tzinfo=UTC),
        financial_status="paid",
        subtotal=D("20.0000"),
        discounts=D("2.5000"),
        shipping=D("4.0000"),
        tax=D("1.2345"),
        total=D("22.7345"),
    )
    response = owner.get("/dashboard/orders.csv")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(f'attachment; filename="orders-{tenant_a.slug}-')
    assert rows(response) == [
        ["number", "channel", "placed_at", "status", "financial_status", "fulfillment_status", "currency",
         "subtotal", "discounts", "shipping", "tax", "total", "email"],
        ["1001", "shopify", "2026-02-28T22:30:00-05:00", "open", "paid", "unfulfilled", "USD",
         "20.00", "2.50", "4.00", "1.2345", "22.7345", "ann@example.com"],
    ]  # fmt: skip


def test_the_csv_export_applies_the_order_lists_filters(owner, orders):
    response = owner.get("/dashboard/orders.csv", {"channel": "amazon", "q": "ann"})
    assert [row[0] for row in rows(response)[1:]] == ["A-1"]
    response = owner.get("/dashboard/orders.csv", {"fulfillment": "unshipped"})
    assert {row[0] for row in rows(response)[1:]} == {"S-1", "A-2"}


@pytest.mark.parametrize("number", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_the_csv_export_defuses_cells_a_spreadsheet_would_run_as_a_formula(owner, shop, make_order, number):
    make_order(shop, number=number, email="=cmd@example.com")
    row = rows(owner.get("/dashboard/orders.csv"))[1]
    assert row[0] == "'" + number
    assert row[-1] == "'=cmd@example.com"


def test_the_csv_export_never_contains_another_tenants_orders(owner, orders, other_shop, make_order):
    make_order(other_shop, number="B-9002", email="ann@example.com")
    exported = owner.get("/dashboard/orders.csv", {"q": "ann"})
    body = b"".join(exported.streaming_content).decode()
    assert "B-9002" not in body
    assert "S-1" in body


# --- Stock ----------------------------------------------------------------------------------------


def test_the_stock_page_lists_low_and_empty_variants_emptiest_first(owner, shop):
    add_variant(shop, "LOW-1", 3, title="Lantern")
    add_variant(shop, "OUT-1", 0, title="Stove")
    add_variant(shop, "OK-1", 50, title="Mug")
    add_variant(shop, "OWN-POINT", 8, title="Tarp", reorder_point=10)
    content = page(owner, "/dashboard/stock/")
    table = content[content.index('id="stock-table"') :]
    assert table.index("OUT-1") < table.index("LOW-1") < table.index("OWN-POINT")
    assert "OK-1" not in table
    assert "Out of stock" in table
    assert kpi(content, "low-stock") == "2"
    assert kpi(content, "out-of-stock") == "1"


def test_the_overview_lists_low_stock_and_links_to_the_stock_page(owner, shop):
    add_variant(shop, "LOW-1", 1, title="Lantern")
    content = page(owner)
    section = content[content.index('id="low-stock"') :]
    assert "LOW-1" in section
    assert 'href="/dashboard/stock/">All 1 →' in section


# --- Tenant isolation -----------------------------------------------------------------------------


def test_another_tenants_order_page_is_404(owner, other_shop, make_order):
    order = make_order(other_shop, number="B-9002")
    response = owner.get(f"/dashboard/orders/{order.pk}/")
    assert response.status_code == 404
    assert "B-9002" not in response.content.decode()


def test_no_page_shows_another_tenants_data(owner, shop, other_shop, make_order):
    make_order(shop, number="A-1", total=D("10.00"))
    other = make_order(other_shop, number="B-9002", total=D("777.00"), email="b@example.com")
    OrderLine.objects.create(
        tenant=other.tenant, connection=other_shop, external_id="l-b", order=other, title="Beta secret", total=D("777")
    )
    add_variant(other_shop, "BETA-SKU", 0, title="Beta item")
    for url in ("/dashboard/", "/dashboard/orders/", "/dashboard/stock/", "/dashboard/?period=90"):
        content = page(owner, url)
        for secret in ("B-9002", "777.00", "Beta secret", "BETA-SKU", "Beta Shopify", "b@example.com"):
            assert secret not in content, (url, secret)
    assert kpi(page(owner), "revenue-USD") == "10.00"


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/orders/", "/dashboard/orders.csv", "/dashboard/stock/"])
def test_every_dashboard_page_sends_anonymous_visitors_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", ["/dashboard/orders/", "/dashboard/orders.csv", "/dashboard/stock/"])
def test_staff_without_a_client_are_sent_to_the_admin_from_every_page(client, superadmin, url):
    client.force_login(superadmin)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
