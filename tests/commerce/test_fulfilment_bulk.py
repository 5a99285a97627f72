"""Bulk fulfilment from a CSV file or a list: each parcel is checked on its own, the rest succeed,
and every refused row is listed with its reason; pushes the platform refuses fail on their own."""

from __future__ import annotations

import io

import pytest
from django.db.models import Count

from commerce.fulfilment_bulk import BulkError, BulkRow, bulk_fulfil, rows_from_csv
from commerce.models import FulfillmentStatus, Fulfilment, FulfilmentSource, Order
from commerce.models import FulfilmentPushStatus as Status
from commerce.pushes import PushResult

from .test_fulfilment import FakePlatform, add_line, install, run_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform():
    fake = FakePlatform()
    restore = install(fake)
    yield fake
    restore()


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


def csv_file(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def test_500_orders_with_bad_rows_and_platform_refusals(
    shop, platform, make_order, tenant_a, django_capture_on_commit_callbacks
):
    orders = []
    for n in range(500):
        order = make_order(shop, number=str(5000 + n), external_id=f"gid://shopify/Order/{n}")
        add_line(order, f"SKU-{n}", 1)
        orders.append(order)
    Order.objects.filter(pk=orders[494].pk).update(fulfillment_status=FulfillmentStatus.FULFILLED)
    rows = ["Order #,Tracking number,Carrier,SKU,Qty"]
    rows += [f"#{5000 + n},TRK{n},UPS,," for n in range(490)]
    rows += [
        "5490,TRK490,Pony Express,,",  # row 492: a carrier nobody knows
        "5491,TRK491,UPS,NOPE,1",  # row 493: a SKU the order does not have
        "5492,TRK492,UPS,SKU-492,5",  # row 494: more than was ordered
        "5493,TRK493,UPS,SKU-493,two",  # row 495: not a number
        "5494,TRK494,UPS,,",  # row 496: already fulfilled
        ",TRK495,UPS,,",  # row 497: no order number
    ]
    rows += [f"{5000 + n},TRK{n},usps,SKU-{n},1" for n in range(496, 500)]
    rows += ["99999,TRK-X,UPS,,"]  # row 502: no such order
    for n in range(100, 105):
        platform.refuse[f"gid://shopify/Order/{n}"] = PushResult(ok=False, message="Order is on hold in Shopify")

    with django_capture_on_commit_callbacks(execute=True):
        result = bulk_fulfil(tenant_a, rows_from_csv(csv_file(*rows)), source=FulfilmentSource.CSV)

    assert result.rows == 501
    assert len(result.created) == 494
    assert [(f.row, f.order, f.reason) for f in result.failures] == [
        (492, "5490", "Unknown carrier “Pony Express”. Accepted: UPS, USPS, Royal Mail, DHL Express."),
        (493, "5491", "The SKU “NOPE” is not on order #5491."),
        (494, "5492", "Only 1 of “Tent (SKU-492)” left to fulfil on order #5492, not 5."),
        (495, "5493", "Quantity: “two” is not a whole number."),
        (496, "5494", "Order #5494 is already fulfilled."),
        (497, "", "The order number is missing."),
        (502, "99999", "There is no order #99999."),
    ]
    assert run_queued()  # the pushes, a few fulfilments per task
    statuses = dict(Fulfilment.objects.values_list("status").annotate(n=Count("pk")))
    assert statuses == {Status.PUSHED: 489, Status.FAILED: 5}
    refused = Fulfilment.objects.filter(status=Status.FAILED)
    assert {f.order.number for f in refused} == {str(5000 + n) for n in range(100, 105)}
    assert {f.last_error for f in refused} == {"Order is on hold in Shopify"}
    assert set(Fulfilment.objects.values_list("source", flat=True)) == {FulfilmentSource.CSV}
    fulfilled = Order.objects.filter(fulfillment_status=FulfillmentStatus.FULFILLED)
    assert fulfilled.count() == 489 + 1  # and the one that was fulfilled before
    assert not fulfilled.filter(number__in=[str(5000 + n) for n in range(100, 105)]).exists()
    assert len(platform.landed) == 489


def test_rows_of_one_parcel_are_one_fulfilment_with_their_lines(shop, platform, make_order, tenant_a):
    order = make_order(shop, number="1001")
    tent, mat = add_line(order, "TENT-1", 2), add_line(order, "MAT-1", 1)
    rows = rows_from_csv(
        csv_file(
            "order,tracking,carrier,sku,quantity",
            "1001,1Z1,UPS,TENT-1,1",
            "1001,1Z1,ups,MAT-1,",
            "1001,1Z2,UPS,TENT-1,1",
        )
    )

    result = bulk_fulfil(tenant_a, rows)

    assert result.failures == []
    assert sorted(f.lines for f in result.created) == [[[tent.pk, 1]], [[tent.pk, 1], [mat.pk, 1]]]


def test_a_parcel_with_one_bad_row_is_refused_whole(shop, platform, make_order, tenant_a):
    order = make_order(shop, number="1001")
    add_line(order, "TENT-1", 2)
    other = make_order(shop, number="1002")
    add_line(other, "TENT-1", 1)
    rows = rows_from_csv(
        csv_file(
            "order,tracking,carrier,sku,quantity", "1001,1Z1,UPS,TENT-1,1", "1001,1Z1,UPS,GONE,1", "1002,1Z2,UPS,,"
        )
    )

    result = bulk_fulfil(tenant_a, rows)

    assert [f.order.number for f in result.created] == ["1002"]
    assert [(f.row, f.reason) for f in result.failures] == [
        (2, "The SKU “GONE” is not on order #1001."),
        (3, "The SKU “GONE” is not on order #1001."),
    ]
    assert not Fulfilment.objects.filter(order=order).exists()


def test_a_number_two_channels_share_needs_the_channel(shop, platform, make_order, make_connection, tenant_a):
    woo = make_connection(tenant_a, "woocommerce", name="Woo")
    make_order(shop, number="1001")
    theirs = make_order(woo, number="1001")
    ambiguous = bulk_fulfil(tenant_a, [BulkRow(row=1, order_number="1001", tracking_number="1Z1", carrier="UPS")])
    assert ambiguous.failures[0].reason == (
        "Several orders have the number 1001 (Shopify, WooCommerce): add a channel column to choose."
    )
    chosen = bulk_fulfil(
        tenant_a, [BulkRow(row=1, order_number="1001", channel="WooCommerce", tracking_number="1Z1", carrier="UPS")]
    )
    assert [f.order_id for f in chosen.created] == [theirs.pk]


def test_another_tenants_orders_are_not_found(shop, platform, make_order, make_connection, tenant_a, tenant_b):
    make_order(make_connection(tenant_b, "shopify"), number="7777")
    result = bulk_fulfil(
        tenant_a,
        [
            BulkRow(row=1, order_number="7777", tracking_number="1Z1", carrier="UPS"),
            BulkRow(row=2, order_id=Order.objects.get(number="7777").pk, tracking_number="1Z1", carrier="UPS"),
        ],
    )
    assert [f.reason for f in result.failures] == [
        "There is no order #7777.",
        f"There is no order with the id {Order.objects.get(number='7777').pk}.",
    ]
    assert not Fulfilment.objects.exists()


def test_a_file_without_the_needed_columns_is_refused_whole():
    with pytest.raises(BulkError, match="needs a column for: tracking number, carrier"):
        rows_from_csv(csv_file("order,notes", "1001,fragile"))


def test_a_file_over_the_row_limit_is_refused(settings):
    settings.FULFILMENT_BULK_MAX_ROWS = 2
    with pytest.raises(BulkError, match="at most 2 rows"):
        rows_from_csv(csv_file("order,tracking,carrier", "1,a,UPS", "2,b,UPS", "3,c,UPS"))


def test_a_semicolon_file_with_a_bom_is_read():
    rows = rows_from_csv(io.BytesIO("\ufeffOrder number;Tracking number;Carrier\n#1001;1Z1;Royal Mail\n".encode()))
    assert rows == [BulkRow(row=2, order_number="#1001", tracking_number="1Z1", carrier="Royal Mail")]
