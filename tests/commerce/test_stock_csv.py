"""Stock from a CSV of sku,quantity: every row is checked first, and a valid file sets every figure
at once and pushes each to its listings; a file with a wrong row sets nothing."""

from __future__ import annotations

import io

import pytest

from commerce.models import StockItem
from commerce.stock_csv import import_stock

from .stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    commit_fixture,
    item,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    shop_fixture,
    sync_product,
    woo_fixture,
)

pytestmark = pytest.mark.django_db


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


@pytest.fixture
def tote(commit, shop, mug) -> StockItem:
    sync_product(commit, shop, sku="TOTE-1", available=20, key="2")
    return StockItem.objects.get(sku="TOTE-1")


def test_a_valid_file_sets_every_sku_in_it_and_pushes_each(commit, mug, tote, shop, woo, pusher, tenant_a):
    with commit():
        result = import_stock(tenant_a, csv_file("\ufeffSKU,Quantity\nMUG-1,4\n\nTOTE-1, 0\n"), via="csv")
    run_pushes()

    assert result.ok and result.rows == 2
    assert (item().on_hand, item("TOTE-1").on_hand) == (4, 0)
    assert sorted(pusher.to(shop)) == [0, 4] and pusher.to(woo) == [4]


def test_a_file_without_a_header_is_read_the_same(mug, tenant_a):
    assert import_stock(tenant_a, csv_file("MUG-1,3\n"), via="csv").ok
    assert item().on_hand == 3


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("sku,quantity\nMUG-1,three\n", "Row 2: the quantity of MUG-1 is “three”, not a whole number."),
        ("sku,quantity\nMUG-1,-1\n", "Row 2: the quantity of MUG-1 is negative."),
        ("sku,quantity\nMUG-1,1\nMUG-1,2\n", "Row 3: MUG-1 is in the file twice."),
        ("sku,quantity\n,1\n", "Row 2: each row needs a SKU and a quantity."),
        ("sku,quantity\nMUG-1,1\nNOPE-9,1\n", "No stock item has the SKU NOPE-9: sync or link it first."),
        ("sku,quantity\n", "The file has no rows."),
        (b"MUG-1,\xff\xfe1\n", "not a readable UTF-8 CSV"),
    ],
)
def test_a_wrong_row_sets_nothing_and_says_which(mug, tote, tenant_a, text, error):
    raw = text if isinstance(text, bytes) else text.encode()
    result = import_stock(tenant_a, io.BytesIO(raw), via="csv")
    assert not result.ok
    assert any(error in message for message in result.errors), result.errors
    assert (item().on_hand, item("TOTE-1").on_hand) == (10, 20)


def test_a_file_longer_than_the_limit_is_refused(mug, tenant_a, settings):
    settings.STOCK_CSV_MAX_ROWS = 1
    result = import_stock(tenant_a, csv_file("MUG-1,1\nTOTE-1,1\n"), via="csv")
    assert result.errors == ["The file has more than 1 rows: split it."]


def test_another_tenants_skus_are_unknown(mug, tenant_b):
    result = import_stock(tenant_b, csv_file("MUG-1,1\n"), via="csv")
    assert result.errors == ["No stock item has the SKU MUG-1: sync or link it first."]
    assert item().on_hand == 10
