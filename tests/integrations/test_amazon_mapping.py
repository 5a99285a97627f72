"""Amazon payloads → commerce records, on the documented examples (tests/fixtures/amazon/)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from commerce.models import FinancialStatus, FulfillmentStatus, OrderStatus
from integrations.connectors.amazon_mapping import (
    HUB,
    map_inventory,
    map_order,
    map_product,
    map_refund,
    product_payloads,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_documented_search_orders_example_maps_to_an_order_with_its_lines():
    order = map_order(load("search_orders.json")["orders"][0])
    assert (order.external_id, order.number, order.currency) == ("123-4567890-1234567", "123-4567890-1234567", "USD")
    assert (order.placed_at, order.updated_at) == (utc(2024, 12, 25, 10, 30), utc(2024, 12, 25, 14, 45))
    assert (order.status, order.financial_status, order.fulfillment_status) == (
        OrderStatus.COMPLETED,
        FinancialStatus.PAID,
        FulfillmentStatus.FULFILLED,
    )
    assert (order.subtotal, order.tax, order.shipping, order.total) == (
        Decimal("149.97"),
        Decimal("0.02"),
        Decimal("0"),
        Decimal("154.99"),
    )
    assert order.email == "buyer-email@marketplace.amazon.com"
    assert order.customer.external_id == "buyer:buyer-email@marketplace.amazon.com"
    assert (order.customer.first_name, order.customer.last_name, order.customer.country) == ("John", "Smith", "US")
    assert order.shipping_address["city"] == "Seattle"
    first, second = order.lines
    assert (first.external_id, first.sku, first.variant_external_id) == (
        "12345678901234",
        "ECHO-DOT-4-CHARCOAL",
        "ECHO-DOT-4-CHARCOAL",
    )
    assert (first.quantity, first.unit_price, first.total) == (2, Decimal("49.99"), Decimal("99.98"))
    assert (second.quantity, second.total) == (1, Decimal("49.99"))
    assert order.refunds == []
    assert HUB not in order.raw


def test_the_documented_get_order_example_maps_shipping_and_tax():
    order = map_order(load("get_order.json")["order"])
    assert (order.currency, order.subtotal, order.shipping, order.tax, order.total) == (
        "GBP",
        Decimal("89.97"),
        Decimal("10.00"),
        Decimal("4.00"),
        Decimal("103.97"),
    )
    assert order.shipping_address["countryCode"] == "GB"


def test_an_order_priced_only_by_its_grand_total_takes_its_subtotal_from_the_items():
    order = map_order(load("search_orders_jp.json")["orders"][0])
    assert (order.currency, order.total) == ("JPY", Decimal("19940"))
    assert order.subtotal == sum(line.unit_price * line.quantity for line in order.lines)


def test_an_unpriced_pending_order_takes_its_currency_from_its_items():
    payload = copy.deepcopy(load("get_order_br.json")["order"])
    del payload["proceeds"]
    order = map_order(payload)
    assert (order.currency, order.total, order.status) == ("BRL", Decimal("299.90"), OrderStatus.OPEN)
    assert order.fulfillment_status == FulfillmentStatus.UNFULFILLED


@pytest.mark.parametrize(
    ("amazon", "expected"),
    [
        ("PENDING", (OrderStatus.OPEN, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED)),
        ("UNSHIPPED", (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED)),
        ("PARTIALLY_SHIPPED", (OrderStatus.OPEN, FinancialStatus.PAID, FulfillmentStatus.PARTIAL)),
        ("SHIPPED", (OrderStatus.COMPLETED, FinancialStatus.PAID, FulfillmentStatus.FULFILLED)),
        ("CANCELLED", (OrderStatus.CANCELLED, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED)),
        ("SOMETHING_NEW", (OrderStatus.UNKNOWN, FinancialStatus.UNKNOWN, FulfillmentStatus.UNKNOWN)),
    ],
)
def test_fulfilment_statuses_map_to_the_hubs_vocabulary(amazon, expected):
    payload = copy.deepcopy(load("search_orders.json")["orders"][0])
    payload["fulfillment"]["fulfillmentStatus"] = amazon
    order = map_order(payload)
    assert (order.status, order.financial_status, order.fulfillment_status) == expected


def test_an_order_without_a_currency_or_a_known_marketplace_is_refused():
    payload = copy.deepcopy(load("search_orders.json")["orders"][0])
    del payload["proceeds"]
    payload["salesChannel"]["marketplaceId"] = "NOT-A-MARKETPLACE"
    for item in payload["orderItems"]:
        del item["product"]["price"]
    with pytest.raises(ValueError, match="currency"):
        map_order(payload)


def test_a_refund_is_what_the_buyer_got_back_without_amazons_fees():
    event = load("refund_events.json")["payload"]["FinancialEvents"]["RefundEventList"][0]
    refund = map_refund("123-4567890-1234567", event)
    # 49.99 principal + 0.01 tax given back, less the 5.00 promotion taken back; fees left out.
    assert (refund.amount, refund.currency) == (Decimal("45.00"), "USD")
    assert refund.refunded_at == utc(2025, 1, 10, 18, 22, 41)
    assert refund.external_id == "123-4567890-1234567/refund/20250110T182241"


def test_an_order_sent_with_its_refunds_is_newer_than_the_order_and_the_refunds():
    events = load("refund_events.json")["payload"]["FinancialEvents"]["RefundEventList"]
    payload = {**load("search_orders.json")["orders"][0], HUB: {"refunds": events}}
    order = map_order(payload)
    assert [r.amount for r in order.refunds] == [Decimal("45.00")]
    assert order.updated_at > utc(2025, 1, 10, 18, 22, 41)
    assert HUB not in order.raw


def test_a_refund_event_of_fees_alone_is_no_refund():
    event = {
        "AmazonOrderId": "1",
        "PostedDate": "2025-01-10T18:22:41Z",
        "ShipmentItemAdjustmentList": [
            {
                "ItemFeeAdjustmentList": [
                    {"FeeType": "Commission", "FeeAmount": {"CurrencyCode": "USD", "CurrencyAmount": 2}}
                ]
            }
        ],
    }
    assert map_refund("1", event) is None


def test_an_inventory_summary_is_the_fulfillable_units_of_a_sku_in_a_marketplace():
    summary = load("inventory_summaries.json")["payload"]["inventorySummaries"][0]
    level = map_inventory({**summary, HUB: {"marketplace": "ATVPDKIKX0DER"}})
    assert (level.external_id, level.variant_external_id) == (
        "ECHO-DOT-4-CHARCOAL@ATVPDKIKX0DER",
        "ECHO-DOT-4-CHARCOAL",
    )
    assert (level.available, level.location_id, level.location_name) == (42, "ATVPDKIKX0DER", "FBA Amazon.com")
    assert level.updated_at == utc(2025, 1, 6, 8, 12, 44)


def test_an_inventory_summary_without_details_counts_its_total_quantity():
    summary = copy.deepcopy(load("inventory_summaries.json")["payload"]["inventorySummaries"][0])
    del summary["inventoryDetails"]
    assert map_inventory({**summary, HUB: {"marketplace": "ATVPDKIKX0DER"}}).available == 58


def test_a_product_per_asin_with_its_seller_sku_as_variant():
    summary = load("inventory_summaries.json")["payload"]["inventorySummaries"][0]
    product = map_product({**summary, HUB: {"marketplace": "ATVPDKIKX0DER"}})
    assert (product.external_id, product.title, product.status) == (
        "B08N5WRWNW",
        "Echo Dot (4th Gen) | Smart speaker with Alexa | Charcoal",
        "active",
    )
    (variant,) = product.variants
    assert (variant.external_id, variant.sku, variant.currency) == ("ECHO-DOT-4-CHARCOAL", "ECHO-DOT-4-CHARCOAL", "USD")


def test_skus_of_one_asin_on_a_page_become_variants_of_one_product():
    summaries = load("inventory_summaries.json")["payload"]["inventorySummaries"]
    used = {**copy.deepcopy(summaries[0]), "sellerSku": "ECHO-DOT-4-CHARCOAL-USED", "condition": "UsedGood"}
    payloads = product_payloads([summaries[0], used, summaries[1], "garbage"], "ATVPDKIKX0DER")
    assert payloads[0] == "garbage"
    echo, fire = (map_product(p) for p in payloads[1:])
    assert [v.external_id for v in echo.variants] == ["ECHO-DOT-4-CHARCOAL", "ECHO-DOT-4-CHARCOAL-USED"]
    assert [v.external_id for v in fire.variants] == ["FIRE-TV-4K-2021"]
    # Undated, so a later page's product with another SKU is never skipped as older.
    assert echo.updated_at is None and echo.variants[0].updated_at == utc(2025, 1, 6, 8, 12, 44)
