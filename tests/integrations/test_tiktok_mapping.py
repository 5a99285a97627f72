"""TikTok Shop payloads → commerce records, on the examples in tests/fixtures/tiktok/."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from commerce.models import FinancialStatus, FulfillmentStatus, OrderStatus
from integrations.connectors.tiktok_mapping import map_order, map_product

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tiktok"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def order(**changes) -> dict:
    payload = copy.deepcopy(load("search_orders.json")["data"]["orders"][0])
    payload.update(changes)
    return payload


def products() -> list[dict]:
    return load("search_products.json")["data"]["products"]


def test_the_example_order_maps_to_an_order_with_its_lines_and_buyer():
    record = map_order(order())
    assert (record.external_id, record.number, record.currency) == ("576461413038785752", "576461413038785752", "USD")
    assert record.placed_at == datetime(2023, 9, 10, 4, 0, 1, tzinfo=UTC)
    assert record.updated_at == datetime(2023, 9, 10, 4, 13, 28, tzinfo=UTC)
    assert (record.status, record.financial_status, record.fulfillment_status) == (
        OrderStatus.OPEN,
        FinancialStatus.PAID,
        FulfillmentStatus.UNFULFILLED,
    )
    assert record.email == "v2_3f8b1c7d0a2e@scs.tiktokw.us"
    assert record.customer.external_id == "buyer:7021436810468230477"
    assert (record.customer.first_name, record.customer.last_name, record.customer.country) == ("Jane", "Doe", "US")
    assert record.shipping_address["postal_code"] == "95110"
    assert record.raw["id"] == "576461413038785752"


def test_amounts_are_decimals_from_tiktoks_strings_and_add_up_to_the_total():
    record = map_order(order())
    amounts = (record.subtotal, record.discounts, record.shipping, record.tax, record.total)
    assert amounts == (Decimal("59.98"), Decimal("7.00"), Decimal("0"), Decimal("4.24"), Decimal("57.22"))
    assert all(isinstance(amount, Decimal) for amount in amounts)
    assert record.subtotal - record.discounts + record.shipping + record.tax == record.total


def test_each_line_item_is_a_unit_at_its_original_price_totalling_its_sale_price():
    first, second = map_order(order()).lines
    assert (first.external_id, second.external_id) == ("577086512123755123", "577086512123755124")
    assert (first.quantity, first.unit_price, first.total) == (1, Decimal("29.99"), Decimal("26.49"))
    assert (first.sku, first.variant_external_id) == ("TEE-RED-M", "1729592969712207012")
    assert first.title == "Short Sleeve Cotton Tee (Red, M)"


def test_a_line_item_with_a_quantity_counts_it():
    payload = order()
    payload["line_items"][0]["quantity"] = 3
    line = map_order(payload).lines[0]
    assert (line.quantity, line.total) == (3, Decimal("79.47"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("UNPAID", ("open", "pending", "unfulfilled")),
        ("ON_HOLD", ("open", "paid", "unfulfilled")),
        ("AWAITING_SHIPMENT", ("open", "paid", "unfulfilled")),
        ("PARTIALLY_SHIPPING", ("open", "paid", "partial")),
        ("AWAITING_COLLECTION", ("open", "paid", "fulfilled")),
        ("IN_TRANSIT", ("open", "paid", "fulfilled")),
        ("DELIVERED", ("completed", "paid", "fulfilled")),
        ("COMPLETED", ("completed", "paid", "fulfilled")),
        ("CANCELLED", ("cancelled", "voided", "unfulfilled")),
        ("SOMETHING_NEW", ("unknown", "unknown", "unknown")),
    ],
)
def test_tiktok_statuses_are_normalised(status, expected):
    record = map_order(order(status=status))
    assert (record.status, record.financial_status, record.fulfillment_status) == expected


def test_without_the_original_product_price_the_subtotal_is_what_was_paid_plus_the_discounts():
    payload = order()
    del payload["payment"]["original_total_product_price"]
    assert map_order(payload).subtotal == Decimal("59.98")


def test_an_order_without_a_buyer_has_no_customer():
    payload = order()
    del payload["user_id"], payload["buyer_email"]
    record = map_order(payload)
    assert record.customer is None and record.email == ""


def test_a_buyer_known_only_by_a_full_name_is_split_into_first_and_last():
    payload = order()
    payload["recipient_address"] = {"name": "Ana Maria Silva", "region_code": "BR"}
    customer = map_order(payload).customer
    assert (customer.first_name, customer.last_name, customer.country) == ("Ana", "Maria Silva", "BR")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda p: p.pop("create_time"), "create_time"),
        (lambda p: (p["payment"].pop("currency"), [i.pop("currency") for i in p["line_items"]]), "currency"),
        (lambda p: p["payment"].update(total_amount="12,50"), "not an amount"),
    ],
    ids=["no create time", "no currency", "a malformed amount"],
)
def test_an_order_that_cannot_be_mapped_raises(change, error):
    payload = order()
    change(payload)
    with pytest.raises(ValueError, match=error):
        map_order(payload)


def test_an_order_without_a_payment_currency_takes_its_items_currency():
    payload = order()
    del payload["payment"]["currency"]
    assert map_order(payload).currency == "USD"


def test_a_product_has_a_variant_per_sku_with_its_price_and_stock_per_warehouse():
    tee, socks = (map_product(p) for p in products())
    assert (tee.external_id, tee.title, tee.status) == ("1729592969712207008", "Short Sleeve Cotton Tee", "active")
    assert tee.updated_at == datetime(2023, 9, 10, 4, 13, 28, tzinfo=UTC)
    red_m, red_l = tee.variants
    assert (red_m.external_id, red_m.sku, red_m.price, red_m.currency) == (
        "1729592969712207012",
        "TEE-RED-M",
        Decimal("29.99"),
        "USD",
    )
    assert [(level.external_id, level.available) for level in red_m.inventory] == [
        ("1729592969712207012@7068517275539719942", 999)
    ]
    assert red_l.inventory[0].available == 0
    assert socks.status == "archived"
    assert [(level.location_id, level.available) for level in socks.variants[0].inventory] == [
        ("7068517275539719942", 12),
        ("7068517275539719950", 30),
    ]
    assert "skus" not in tee.raw


def test_stock_levels_carry_no_time_so_they_are_written_whenever_read():
    levels = [level for variant in map_product(products()[0]).variants for level in variant.inventory]
    assert levels and all(level.updated_at is None for level in levels)
    assert all(level.variant_external_id for level in levels)


def test_an_unknown_product_status_is_kept_in_lowercase():
    payload = {**products()[0], "status": "UNDER_REVIEW"}
    assert map_product(payload).status == "under_review"


def test_a_variant_is_named_by_its_sales_attributes_when_tiktok_gives_them():
    payload = copy.deepcopy(products()[0])
    payload["skus"][0]["sales_attributes"] = [
        {"name": "Color", "value_name": "Red"},
        {"name": "Size", "value_name": "M"},
    ]
    assert map_product(payload).variants[0].title == "Red / M"
