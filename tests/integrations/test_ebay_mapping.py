"""eBay payloads → commerce records, on the fixtures shaped by eBay's descriptions (tests/fixtures/ebay/)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from commerce.models import FinancialStatus, FulfillmentStatus, OrderStatus
from integrations.connectors.ebay_mapping import (
    HUB,
    map_inventory,
    map_order,
    map_product,
    product_payloads,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ebay"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def orders() -> list[dict]:
    return load("get_orders.json")["orders"]


def items() -> list[dict]:
    return load("get_inventory_items.json")["inventoryItems"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Orders ----------------------------------------------------------------------------------------


def test_a_shipped_paid_order_maps_with_its_totals_buyer_and_address():
    order = map_order(orders()[0])
    assert (order.external_id, order.number, order.currency) == ("12-34567-89012", "12-34567-89012", "USD")
    assert (order.placed_at, order.updated_at) == (utc(2025, 1, 10, 9, 15, 2), utc(2025, 1, 12, 16, 40, 11))
    assert (order.status, order.financial_status, order.fulfillment_status) == (
        OrderStatus.COMPLETED,
        FinancialStatus.PAID,
        FulfillmentStatus.FULFILLED,
    )
    # Subtotal before discounts, item discounts, shipping net of its discount, tax, eBay's total.
    assert (order.subtotal, order.discounts, order.shipping, order.tax, order.total) == (
        Decimal("59.97"),
        Decimal("5.00"),
        Decimal("5.00"),
        Decimal("4.40"),
        Decimal("64.37"),
    )
    assert order.subtotal - order.discounts + order.shipping + order.tax == order.total
    assert order.email == "b3a1c4e5f6@members.ebay.com"
    assert order.customer.external_id == "buyer:j***n"
    assert (order.customer.first_name, order.customer.last_name, order.customer.country) == ("John", "Smith", "US")
    assert order.shipping_address["city"] == "San Jose" and order.shipping_address["name"] == "John Smith"
    assert order.refunds == []
    assert order.raw["orderId"] == "12-34567-89012"


def test_lines_carry_the_sku_as_variant_a_unit_price_and_the_discounted_total():
    first, second = map_order(orders()[0]).lines
    assert (first.external_id, first.sku, first.variant_external_id) == ("10001234567890", "MUG-BLUE", "MUG-BLUE")
    assert (first.quantity, first.unit_price, first.total) == (2, Decimal("19.99"), Decimal("34.98"))
    assert (second.title, second.quantity, second.unit_price, second.total) == (
        "Cork coaster set of 4",
        1,
        Decimal("19.99"),
        Decimal("19.99"),
    )


def test_a_partially_refunded_order_carries_only_the_issued_refund_once():
    order = map_order(orders()[1])
    assert (order.status, order.financial_status, order.fulfillment_status) == (
        OrderStatus.OPEN,
        FinancialStatus.PARTIALLY_REFUNDED,
        FulfillmentStatus.PARTIAL,
    )
    # The same refund is on the order and on its line; the pending one moved no money yet.
    (refund,) = order.refunds
    assert (refund.external_id, refund.amount, refund.currency) == ("3TS48431H70929018", Decimal("5.00"), "USD")
    assert refund.refunded_at == utc(2025, 1, 13, 8, 4, 51)
    # Amounts are eBay's values in the seller's currency, not the buyer's converted ones.
    assert (order.currency, order.total, order.tax) == ("USD", Decimal("45.00"), Decimal("0"))


def test_a_line_of_a_listing_without_a_sku_has_no_variant_and_a_unit_price_kept_to_four_places():
    line = map_order(orders()[1]).lines[1]
    assert (line.sku, line.variant_external_id, line.title) == ("", "", "Vintage silver spoon")
    assert (line.quantity, line.unit_price, line.total) == (3, Decimal("5.0000"), Decimal("15.00"))
    payload = copy.deepcopy(orders()[1])
    payload["lineItems"][1]["lineItemCost"]["value"] = "10.00"
    assert map_order(payload).lines[1].unit_price == Decimal("3.3333")


def test_refunds_only_on_the_lines_are_taken_from_the_lines():
    payload = copy.deepcopy(orders()[1])
    payload["paymentSummary"]["refunds"] = []
    (refund,) = map_order(payload).refunds
    assert (refund.external_id, refund.amount) == ("3TS48431H70929018", Decimal("5.00"))


def test_a_refund_without_any_id_is_known_by_its_order_and_date():
    payload = copy.deepcopy(orders()[1])
    del payload["paymentSummary"]["refunds"][0]["refundReferenceId"]
    assert map_order(payload).refunds[0].external_id == "23-45678-90123/refund/20250113T080451"


def test_a_cancelled_order_is_cancelled_and_refunded():
    order = map_order(load("get_order_cancelled.json"))
    assert (order.status, order.financial_status, order.fulfillment_status) == (
        OrderStatus.CANCELLED,
        FinancialStatus.REFUNDED,
        FulfillmentStatus.UNFULFILLED,
    )
    assert [(r.amount, r.external_id) for r in order.refunds] == [(Decimal("24.99"), "7KB91230AB1234567")]
    assert order.customer.external_id == "buyer:k***e" and order.email == ""
    assert order.shipping_address == {}


@pytest.mark.parametrize(
    ("payment", "fulfillment", "expected"),
    [
        ("PENDING", "NOT_STARTED", (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED)),
        ("FAILED", "NOT_STARTED", (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED)),
        ("PAID", "SOMETHING_NEW", (OrderStatus.UNKNOWN, FinancialStatus.PAID, FulfillmentStatus.UNKNOWN)),
        ("NEW_STATUS", "FULFILLED", (OrderStatus.COMPLETED, FinancialStatus.UNKNOWN, FulfillmentStatus.FULFILLED)),
    ],
)
def test_statuses_are_normalised(payment, fulfillment, expected):
    payload = {**orders()[0], "orderPaymentStatus": payment, "orderFulfillmentStatus": fulfillment}
    order = map_order(payload)
    assert (order.status, order.financial_status, order.fulfillment_status) == expected


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda o: o.pop("orderId"), KeyError),
        (lambda o: o.update(creationDate="yesterday"), ValueError),
        (lambda o: o.pop("lastModifiedDate"), ValueError),
        (lambda o: o["pricingSummary"]["total"].pop("currency"), ValueError),
        (lambda o: o["pricingSummary"]["tax"].update(value="4,40"), ValueError),
        (lambda o: o["lineItems"][0].pop("lineItemId"), KeyError),
    ],
)
def test_a_malformed_order_raises(change, error):
    payload = copy.deepcopy(orders()[0])
    change(payload)
    with pytest.raises(error):
        map_order(payload)


# --- Inventory items -------------------------------------------------------------------------------------


def test_an_inventory_item_is_a_stock_level_of_its_sku_to_ship_to_home():
    levels = [map_inventory(item) for item in items()]
    assert [(lv.external_id, lv.variant_external_id, lv.available) for lv in levels] == [
        ("MUG-BLUE", "MUG-BLUE", 42),
        ("TSHIRT-RED-M", "TSHIRT-RED-M", 5),
        ("TSHIRT-RED-L", "TSHIRT-RED-L", 0),
    ]
    assert {(lv.location_id, lv.location_name) for lv in levels} == {("ebay", "eBay (ship to home)")}


def test_an_item_without_availability_has_none_in_stock():
    assert map_inventory({"sku": "NEW-SKU", "product": {"title": "New"}}).available == 0


def test_a_page_of_items_maps_to_a_product_per_lone_sku_and_per_item_group():
    products = [map_product(payload) for payload in product_payloads(items())]
    assert [(p.external_id, p.title, p.vendor) for p in products] == [
        ("MUG-BLUE", "Blue ceramic mug", "Hub Pottery"),
        ("group:TSHIRT-RED", "Cotton T-shirt, red", "Hub Apparel"),
    ]
    assert [v.sku for v in products[0].variants] == ["MUG-BLUE"]
    assert [v.external_id for v in products[1].variants] == ["TSHIRT-RED-M", "TSHIRT-RED-L"]
    assert all(HUB not in v.raw for v in products[1].variants)
    assert products[1].raw == {"inventoryItemGroupKey": "TSHIRT-RED"}


def test_a_grouped_payload_maps_again_on_its_own():
    grouped = product_payloads(items())[1]
    stored = json.loads(json.dumps(grouped))  # as quarantined: plain JSON
    assert [v.sku for v in map_product(stored).variants] == ["TSHIRT-RED-M", "TSHIRT-RED-L"]


def test_an_item_without_a_sku_cannot_be_mapped():
    (payload,) = product_payloads([{"product": {"title": "no sku"}}])
    with pytest.raises(KeyError):
        map_product(payload)
    with pytest.raises(KeyError):
        map_inventory(payload)
