from __future__ import annotations

import importlib
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from commerce.ingest import (
    INGESTERS,
    Source,
    UnknownStream,
    bulk_upsert,
    ingest,
    ingest_customers,
    ingest_inventory,
    ingest_orders,
    ingest_products,
)
from commerce.models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund
from commerce.records import (
    CustomerRecord,
    IngestResult,
    InventoryRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    RefundRecord,
    VariantRecord,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def source_of(conn) -> Source:
    return Source(tenant_id=conn.tenant_id, connection_id=conn.pk, channel=conn.platform)


def line(external_id: str, **kwargs) -> OrderLineRecord:
    defaults = {"title": f"Item {external_id}", "quantity": 1, "unit_price": Decimal("5.00"), "total": Decimal("5.00")}
    return OrderLineRecord(external_id=external_id, **{**defaults, **kwargs})


def order(external_id: str = "1001", updated_at: datetime | None = T0, lines: int | list = 2, **kwargs) -> OrderRecord:
    if isinstance(lines, int):
        lines = [line(f"{external_id}-L{n}") for n in range(lines)]
    defaults = {"number": f"#{external_id}", "currency": "USD", "placed_at": at(-24), "total": Decimal("10.00")}
    return OrderRecord(external_id=external_id, updated_at=updated_at, lines=lines, **{**defaults, **kwargs})


def variant(external_id: str, levels: int = 1, updated_at: datetime | None = T0, **kwargs) -> VariantRecord:
    inventory = [
        InventoryRecord(
            external_id=f"{external_id}@loc{n}",
            variant_external_id=external_id,
            available=10 + n,
            location_id=f"loc{n}",
        )
        for n in range(levels)
    ]
    defaults = {"sku": f"SKU-{external_id}", "price": Decimal("19.99"), "currency": "USD"}
    return VariantRecord(external_id=external_id, updated_at=updated_at, inventory=inventory, **{**defaults, **kwargs})


def product(external_id: str = "P1", variants: int = 2, updated_at: datetime | None = T0, **kwargs) -> ProductRecord:
    return ProductRecord(
        external_id=external_id,
        title=kwargs.pop("title", f"Product {external_id}"),
        updated_at=updated_at,
        variants=[variant(f"{external_id}-V{n}") for n in range(variants)],
        **kwargs,
    )


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, platform="shopify")


@pytest.fixture
def source(shop) -> Source:
    return source_of(shop)


@pytest.fixture
def unbatched_inserts(db, monkeypatch) -> None:
    """Django 5.2 assumes SQLite's pre-3.32 limit of 999 variables per statement and splits a bulk
    insert into batches by it; the SQLite in use allows far more, as PostgreSQL does."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        monkeypatch.setattr(connection.features, "max_query_params", limit)


# --- Orders ---------------------------------------------------------------------------------------


def test_new_orders_are_created_with_the_sources_tenant_connection_and_channel(shop, source):
    result = ingest_orders(source, [order("1001", raw={"id": 1001}), order("1002")])

    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    stored = Order.objects.get(external_id="1001")
    assert (stored.tenant_id, stored.connection_id, stored.channel) == (shop.tenant_id, shop.pk, "shopify")
    assert stored.platform_updated_at == T0
    assert stored.raw == {"id": 1001}
    assert set(stored.lines.values_list("external_id", "tenant_id")) == {
        ("1001-L0", shop.tenant_id),
        ("1001-L1", shop.tenant_id),
    }


def test_ingesting_the_same_orders_again_changes_nothing_and_creates_no_duplicates(source):
    ingest_orders(source, [order("1001"), order("1002")])
    first_write = Order.objects.get(external_id="1001").updated_at

    result = ingest_orders(source, [order("1001"), order("1002")])

    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert Order.objects.count() == 2
    assert OrderLine.objects.count() == 4
    assert Order.objects.get(external_id="1001").updated_at == first_write


def test_a_newer_order_update_overwrites_the_stored_order(source):
    ingest_orders(source, [order("1001", status="open")])

    result = ingest_orders(source, [order("1001", updated_at=at(1), status="completed", total=Decimal("12.50"))])

    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    stored = Order.objects.get(external_id="1001")
    assert (stored.status, stored.total, stored.platform_updated_at) == ("completed", Decimal("12.50"), at(1))


def test_an_older_order_update_is_skipped_and_keeps_the_newer_data(source):
    ingest_orders(source, [order("1001", updated_at=at(2), status="completed")])

    result = ingest_orders(source, [order("1001", updated_at=at(1), status="open")])

    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    stored = Order.objects.get(external_id="1001")
    assert (stored.status, stored.platform_updated_at) == ("completed", at(2))


def test_an_older_order_update_leaves_its_lines_and_refunds_untouched(source):
    ingest_orders(source, [order("1001", updated_at=at(2), lines=[line("L1", quantity=3)])])

    ingest_orders(
        source,
        [
            order(
                "1001",
                updated_at=at(1),
                lines=[line("L1", quantity=1), line("L2")],
                refunds=[RefundRecord("R1", Decimal("5.00"), "USD", at(1))],
            )
        ],
    )

    assert list(OrderLine.objects.values_list("external_id", "quantity")) == [("L1", 3)]
    assert not Refund.objects.exists()


def test_an_order_without_updated_at_is_always_written(source):
    ingest_orders(source, [order("1001", updated_at=at(2), status="open")])

    result = ingest_orders(source, [order("1001", updated_at=None, status="cancelled")])

    assert result.updated == 1
    stored = Order.objects.get(external_id="1001")
    # The stored version is kept, so an update older than it still loses afterwards.
    assert (stored.status, stored.platform_updated_at) == ("cancelled", at(2))


def test_the_newest_of_an_order_repeated_in_one_page_wins(source):
    result = ingest_orders(
        source, [order("1001", updated_at=at(2), status="completed"), order("1001", updated_at=at(1))]
    )

    assert (result.created, result.unchanged) == (1, 1)
    assert Order.objects.get().status == "completed"


def test_rewriting_an_order_keeps_created_at_and_moves_updated_at(source):
    ingest_orders(source, [order("1001")])
    created = Order.objects.get()

    ingest_orders(source, [order("1001", updated_at=at(1))])

    updated = Order.objects.get()
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at


def test_orders_link_their_embedded_customer(source):
    customer = CustomerRecord("C1", email="ava@example.com", first_name="Ava", updated_at=T0)

    ingest_orders(source, [order("1001", customer=customer), order("1002", customer=customer), order("1003")])

    stored = Customer.objects.get()
    assert (stored.external_id, stored.email, stored.first_name) == ("C1", "ava@example.com", "Ava")
    assert set(Order.objects.values_list("external_id", "customer_id")) == {
        ("1001", stored.pk),
        ("1002", stored.pk),
        ("1003", None),
    }


def test_an_older_embedded_customer_does_not_overwrite_a_newer_one_but_is_still_linked(source):
    ingest_customers(source, [CustomerRecord("C1", first_name="Newer", updated_at=at(5))])

    ingest_orders(source, [order("1001", customer=CustomerRecord("C1", first_name="Older", updated_at=at(1)))])

    customer = Customer.objects.get()
    assert customer.first_name == "Newer"
    assert Order.objects.get().customer_id == customer.pk


def test_an_embedded_customer_never_overwrites_the_stored_customers_details(source):
    full = CustomerRecord("C1", email="ava@example.com", first_name="Ava", phone="+15550001", updated_at=at(1))
    ingest_customers(source, [full])

    partial = CustomerRecord("C1", email="ava@example.com", updated_at=at(9))
    ingest_orders(source, [order("1001", customer=partial)])

    customer = Customer.objects.get()
    assert (customer.first_name, customer.phone) == ("Ava", "+15550001")
    assert Order.objects.get().customer_id == customer.pk


def test_order_lines_link_the_variant_of_the_same_connection(tenant_a, make_connection, source):
    other = make_connection(tenant_a, platform="woocommerce")
    ingest_products(source, [product("P1", variants=1)])
    ingest_products(source_of(other), [product("P1", variants=2)])

    ingest_orders(
        source,
        [order("1001", lines=[line("L1", variant_external_id="P1-V0"), line("L2", variant_external_id="P1-V1")])],
    )

    lines = dict(OrderLine.objects.values_list("external_id", "variant_id"))
    assert lines == {
        "L1": ProductVariant.objects.get(connection_id=source.connection_id, external_id="P1-V0").pk,
        "L2": None,
    }


def test_a_line_removed_from_an_order_is_deleted(source):
    ingest_orders(source, [order("1001", lines=[line("L1"), line("L2")]), order("1002", lines=[line("L3")])])

    ingest_orders(source, [order("1001", updated_at=at(1), lines=[line("L2", quantity=4)])])

    assert set(OrderLine.objects.values_list("external_id", "quantity")) == {("L2", 4), ("L3", 1)}


def test_refunds_are_stored_against_their_order(source):
    refund = RefundRecord("R1", Decimal("4.50"), "USD", at(3), reason="Damaged", raw={"id": "R1"})

    ingest_orders(source, [order("1001", refunds=[refund])])
    ingest_orders(source, [order("1001", updated_at=at(4), refunds=[refund])])

    stored = Refund.objects.get()
    assert stored.order == Order.objects.get(external_id="1001")
    assert (stored.amount, stored.reason, stored.refunded_at, stored.raw) == (
        Decimal("4.50"),
        "Damaged",
        at(3),
        {"id": "R1"},
    )


def test_money_is_stored_exactly(source):
    lines = [
        line("L1", unit_price=Decimal("0.1"), total=Decimal("0.1")),
        line("L2", unit_price=Decimal("0.2"), total=Decimal("0.2")),
    ]

    ingest_orders(source, [order("1001", lines=lines, subtotal=Decimal("0.1") + Decimal("0.2"), total=Decimal("0.3"))])

    stored = Order.objects.get()
    assert stored.subtotal == stored.total == Decimal("0.3")
    assert OrderLine.objects.aggregate(total=Sum("total"))["total"] == Decimal("0.3")


def test_a_page_that_fails_midway_stores_nothing(source):
    broken_refund = RefundRecord("R1", Decimal("1.00"), "USD", refunded_at=None)

    with pytest.raises(IntegrityError):
        ingest_orders(source, [order("1001"), order("1002", refunds=[broken_refund])])

    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()


def test_ingesting_orders_takes_the_same_number_of_queries_for_20_and_200_orders(
    tenant_a, make_connection, unbatched_inserts
):
    def queries_for(count: int) -> int:
        src = source_of(make_connection(tenant_a, name=f"store for {count}"))
        ingest_products(src, [product("P1", variants=3)])
        page = [
            order(
                f"{n}",
                lines=[line(f"{n}-L{i}", variant_external_id=f"P1-V{i}") for i in range(3)],
                customer=CustomerRecord(f"C{n % 7}", updated_at=T0),
                refunds=[RefundRecord(f"{n}-R", Decimal("1.00"), "USD", T0)],
            )
            for n in range(count)
        ]
        with CaptureQueriesContext(connection) as first:
            ingest_orders(src, page)
        for record in page:
            record.updated_at = at(1)
            record.lines.pop()
        with CaptureQueriesContext(connection) as update:
            ingest_orders(src, page)
        assert OrderLine.objects.filter(connection_id=src.connection_id).count() == 2 * count
        return len(first), len(update)

    # Within a savepoint: lock and read the stored orders, insert missing customers, read their ids,
    # upsert the orders returning their ids, read the variants' ids, upsert the lines, (on an update)
    # delete lines that are gone, upsert the refunds, (with new orders) link the fees stored before
    # them, and refresh the customers' first_order_at.
    assert queries_for(20) == queries_for(200) == (11, 11)


def test_ingesting_other_streams_takes_the_same_number_of_queries_for_few_and_many_records(
    tenant_a, make_connection, unbatched_inserts
):
    def queries_for(count: int) -> tuple[int, int, int]:
        src = source_of(make_connection(tenant_a, name=f"store for {count}"))
        with CaptureQueriesContext(connection) as products:
            ingest_products(src, [product(f"P{n}", variants=3) for n in range(count)])
        levels = [InventoryRecord(f"P{n}-V0@loc0", f"P{n}-V0", 1, updated_at=at(1)) for n in range(count)]
        with CaptureQueriesContext(connection) as inventory:
            ingest_inventory(src, [*levels, InventoryRecord("x@loc0", "unknown", 1)])
        with CaptureQueriesContext(connection) as customers:
            ingest_customers(src, [CustomerRecord(f"C{n}") for n in range(count)])
        return len(products), len(inventory), len(customers)

    # Within a savepoint, products: lock and read the stored products, upsert them returning their
    # ids, the same for their variants and their variants' levels; inventory: read the variants'
    # ids, lock and read the stored levels, upsert the levels; customers: lock and read, upsert.
    # Announcing each page (records_written) costs no query: the upserts return the ids.
    assert queries_for(10) == queries_for(100) == (8, 5, 4)


# --- Announcing pages (records_written) -----------------------------------------------------------


@pytest.fixture
def announced():
    """The records_written signals sent, as (sender, stream, created, updated) with model names."""
    from commerce.signals import records_written

    sent = []

    def receive(sender, stream, created, updated, tenant_id, connection_id, **kwargs):
        sent.append((sender.__name__, stream, sorted(created), sorted(updated), tenant_id, connection_id))

    records_written.connect(receive, dispatch_uid="test-announced")
    yield sent
    records_written.disconnect(dispatch_uid="test-announced")


def test_a_customers_page_announces_the_customers_it_created_and_changed(source, announced):
    ingest_customers(source, [CustomerRecord("C1", updated_at=T0), CustomerRecord("C2", updated_at=T0)])
    ingest_customers(source, [CustomerRecord("C1", updated_at=at(1)), CustomerRecord("C2", updated_at=at(-1))])
    ingest_customers(source, [CustomerRecord("C3", updated_at=T0)])
    ids = {c.external_id: c.pk for c in Customer.objects.all()}

    assert announced == [
        ("Customer", "customers", [ids["C1"], ids["C2"]], [], source.tenant_id, source.connection_id),
        ("Customer", "customers", [], [ids["C1"]], source.tenant_id, source.connection_id),  # C2 was older
        ("Customer", "customers", [ids["C3"]], [], source.tenant_id, source.connection_id),
    ]


def test_a_products_page_announces_its_products(source, announced):
    ingest_products(source, [product("P1"), product("P2")])
    ingest_products(source, [product("P1", updated_at=at(1)), product("P2")])  # P2 unchanged
    ids = {p.external_id: p.pk for p in Product.objects.all()}

    assert [entry[:4] for entry in announced] == [
        ("Product", "products", [ids["P1"], ids["P2"]], []),
        ("Product", "products", [], [ids["P1"]]),
    ]


def test_an_inventory_page_announces_its_levels(source, announced):
    ingest_products(source, [product("P1", variants=1)])
    announced.clear()
    ingest_inventory(
        source,
        [
            InventoryRecord("P1-V0@loc0", "P1-V0", 3, updated_at=at(1)),
            InventoryRecord("P1-V0@loc9", "P1-V0", 4, location_id="loc9", updated_at=at(1)),
            InventoryRecord("x@loc0", "unknown", 1),
        ],
    )
    ids = {level.external_id: level.pk for level in InventoryLevel.objects.all()}

    assert [entry[:4] for entry in announced] == [
        ("InventoryLevel", "inventory", [ids["P1-V0@loc9"]], [ids["P1-V0@loc0"]]),
    ]


def test_a_page_rolled_back_announces_nothing_that_lands(source, announced, django_capture_on_commit_callbacks):
    from commerce.models import StockItem

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(IntegrityError):
        ingest_orders(source, [order("1001"), order("1002", refunds=[RefundRecord("R1", Decimal("1"), "USD", None)])])
    assert callbacks == [] and not StockItem.objects.exists()


# --- Customers, products and inventory ------------------------------------------------------------


def test_customers_are_created_then_updated_in_place(source):
    created = ingest_customers(source, [CustomerRecord("C1", email="a@example.com", tags=["vip"], updated_at=T0)])
    updated = ingest_customers(source, [CustomerRecord("C1", email="b@example.com", updated_at=at(1))])

    assert (created.created, updated.updated) == (1, 1)
    stored = Customer.objects.get()
    assert (stored.email, stored.tags) == ("b@example.com", [])


def test_products_are_stored_with_their_variants_and_inventory_levels(source):
    result = ingest_products(source, [product("P1", variants=2, vendor="Acme")])

    assert result.created == 1
    stored = Product.objects.get()
    assert (stored.title, stored.vendor) == ("Product P1", "Acme")
    assert set(stored.variants.values_list("external_id", "price")) == {
        ("P1-V0", Decimal("19.99")),
        ("P1-V1", Decimal("19.99")),
    }
    assert set(InventoryLevel.objects.values_list("external_id", "variant__external_id", "available")) == {
        ("P1-V0@loc0", "P1-V0", 10),
        ("P1-V1@loc0", "P1-V1", 10),
    }


def test_an_older_product_update_leaves_its_variants_and_levels_untouched(source):
    ingest_products(source, [product("P1", variants=1, updated_at=at(2))])
    older = product("P1", variants=1, updated_at=at(1), title="Old title")
    older.variants[0].price = Decimal("1.00")
    older.variants[0].inventory[0].available = 0

    result = ingest_products(source, [older])

    assert result.unchanged == 1
    assert Product.objects.get().title == "Product P1"
    assert ProductVariant.objects.get().price == Decimal("19.99")
    assert InventoryLevel.objects.get().available == 10


def test_a_product_sync_keeps_the_hubs_own_reorder_point(source):
    ingest_products(source, [product("P1", variants=1)])
    ProductVariant.objects.update(reorder_point=7)

    ingest_products(source, [product("P1", variants=1, updated_at=at(1))])

    assert ProductVariant.objects.get().reorder_point == 7


def test_inventory_for_an_unknown_variant_is_a_failure_and_the_rest_is_stored(source):
    ingest_products(source, [product("P1", variants=1)])

    result = ingest_inventory(
        source,
        [
            InventoryRecord("P1-V0@loc0", "P1-V0", available=3, updated_at=at(1)),
            InventoryRecord("P1-V0@loc9", "P1-V0", available=8, location_name="Annex"),
            InventoryRecord("ghost@loc0", "ghost", available=5, raw={"inventory_item_id": "ghost"}),
        ],
    )

    assert (result.created, result.updated) == (1, 1)
    [failure] = result.failures
    assert (failure.external_id, failure.payload) == ("ghost@loc0", {"inventory_item_id": "ghost"})
    assert "unknown variant" in failure.error
    assert set(InventoryLevel.objects.values_list("external_id", "available")) == {("P1-V0@loc0", 3), ("P1-V0@loc9", 8)}


def test_older_inventory_does_not_overwrite_newer_stock(source):
    ingest_products(source, [product("P1", variants=1)])
    ingest_inventory(source, [InventoryRecord("P1-V0@loc0", "P1-V0", available=2, updated_at=at(5))])

    result = ingest_inventory(source, [InventoryRecord("P1-V0@loc0", "P1-V0", available=40, updated_at=at(4))])

    assert result.unchanged == 1
    assert InventoryLevel.objects.get().available == 2


# --- Dispatch -------------------------------------------------------------------------------------


def test_ingest_dispatches_by_stream_name(source):
    assert set(INGESTERS) == {"orders", "products", "customers", "inventory", "finances"}

    result = ingest("customers", source, [CustomerRecord("C1")])

    assert isinstance(result, IngestResult)
    assert result.created == 1
    assert Customer.objects.filter(external_id="C1").exists()


def test_an_unknown_stream_is_a_named_error(source):
    with pytest.raises(UnknownStream, match="reviews"):
        ingest("reviews", source, [])


# --- Isolation ------------------------------------------------------------------------------------


def test_connections_with_equal_external_ids_keep_separate_rows(tenant_a, make_connection, source):
    other = source_of(make_connection(tenant_a, platform="woocommerce"))
    ingest_orders(source, [order("1001", updated_at=at(5), status="completed")])

    result = ingest_orders(other, [order("1001", updated_at=at(1), status="open", lines=[line("1001-L0", quantity=9)])])

    assert result.created == 1
    mine = Order.objects.get(connection_id=source.connection_id)
    theirs = Order.objects.get(connection_id=other.connection_id)
    assert (mine.status, mine.channel, theirs.status, theirs.channel) == ("completed", "shopify", "open", "woocommerce")
    assert OrderLine.objects.get(connection_id=source.connection_id, external_id="1001-L0").quantity == 1
    assert OrderLine.objects.filter(connection_id=source.connection_id).count() == 2


def test_two_tenants_with_equal_external_ids_stay_separate(tenant_a, tenant_b, make_connection):
    a = source_of(make_connection(tenant_a))
    b = source_of(make_connection(tenant_b))

    for src in (a, b):
        ingest_products(src, [product("P1", variants=1)])
        ingest_orders(
            src, [order("1001", customer=CustomerRecord("C1"), lines=[line("L1", variant_external_id="P1-V0")])]
        )

    for tenant, src in ((tenant_a, a), (tenant_b, b)):
        for model in (Customer, Product, ProductVariant, InventoryLevel, Order, OrderLine):
            assert set(model.objects.for_tenant(tenant).values_list("connection_id", flat=True)) == {src.connection_id}
        line_row = OrderLine.objects.for_tenant(tenant).get()
        assert line_row.variant.tenant_id == line_row.order.customer.tenant_id == tenant.pk


def test_raw_payloads_with_quotes_backslashes_and_braces_round_trip(source):
    tricky = {"note": 'say "hi" \\ {a,b} NULL', "nested": {"q": '"\\"'}, "list": ["", " ", ","]}
    record = order("1001")
    record.raw = tricky
    for item in record.lines:
        item.raw = tricky
    ingest_orders(source, [record, order("1002")])
    stored = Order.objects.get(external_id="1001")
    assert stored.raw == tricky
    assert all(line.raw == tricky for line in stored.lines.all())


# --- Derived columns: first orders and the lines' copies of their order ---------------------------


def first_order_of(external_id: str):
    return Customer.objects.get(external_id=external_id).first_order_at


def test_a_customers_first_order_is_set_when_their_orders_arrive(source):
    alice, bob = CustomerRecord("alice"), CustomerRecord("bob")

    ingest_orders(
        source,
        [
            order("1001", customer=alice, placed_at=at(-5)),
            order("1002", customer=alice, placed_at=at(-9)),
            order("1003", customer=bob, placed_at=at(-1)),
            order("1004", placed_at=at(-20)),  # a guest's
        ],
    )

    assert (first_order_of("alice"), first_order_of("bob")) == (at(-9), at(-1))


def test_an_earlier_order_arriving_later_moves_the_first_order_back(source):
    alice = CustomerRecord("alice")
    ingest_orders(source, [order("1001", customer=alice, placed_at=at(-5))])

    ingest_orders(source, [order("1002", customer=alice, placed_at=at(-30))])
    ingest_orders(source, [order("1003", customer=alice, placed_at=at(-10))])

    assert first_order_of("alice") == at(-30)


def test_a_customer_stored_before_their_orders_gets_a_first_order(source):
    ingest_customers(source, [CustomerRecord("alice", first_name="Alice", updated_at=T0)])
    assert first_order_of("alice") is None

    ingest_orders(source, [order("1001", customer=CustomerRecord("alice"), placed_at=at(-5))])

    assert first_order_of("alice") == at(-5)
    # The customers stream owns the details and never touches the derived column.
    ingest_customers(source, [CustomerRecord("alice", first_name="Alicia", updated_at=at(1))])
    assert first_order_of("alice") == at(-5)


def test_cancelling_the_first_order_moves_the_first_order_to_the_next_counted_one(source):
    alice = CustomerRecord("alice")
    ingest_orders(
        source,
        [
            order("1001", customer=alice, placed_at=at(-30)),
            order("1002", customer=alice, placed_at=at(-10), status="cancelled"),
            order("1003", customer=alice, placed_at=at(-5)),
        ],
    )
    assert first_order_of("alice") == at(-30)

    ingest_orders(source, [order("1001", updated_at=at(1), customer=alice, placed_at=at(-30), status="cancelled")])
    assert first_order_of("alice") == at(-5)

    ingest_orders(source, [order("1003", updated_at=at(1), customer=alice, placed_at=at(-5), status="cancelled")])
    assert first_order_of("alice") is None


def test_an_order_moved_to_another_customer_refreshes_both(source):
    alice, bob = CustomerRecord("alice"), CustomerRecord("bob")
    ingest_orders(
        source,
        [
            order("1001", customer=alice, placed_at=at(-30)),
            order("1002", customer=alice, placed_at=at(-10)),
            order("1003", customer=bob, placed_at=at(-20)),
        ],
    )

    ingest_orders(source, [order("1001", updated_at=at(1), customer=bob, placed_at=at(-30))])

    assert (first_order_of("alice"), first_order_of("bob")) == (at(-10), at(-30))

    # To a guest checkout: the customer it left is refreshed all the same.
    ingest_orders(source, [order("1001", updated_at=at(2), customer=None, placed_at=at(-30))])

    assert (first_order_of("alice"), first_order_of("bob")) == (at(-10), at(-20))


def test_a_stale_order_update_leaves_the_first_order_alone(source):
    alice = CustomerRecord("alice")
    ingest_orders(source, [order("1001", updated_at=at(2), customer=alice, placed_at=at(-30))])

    ingest_orders(source, [order("1001", updated_at=at(1), customer=alice, placed_at=at(-30), status="cancelled")])

    assert first_order_of("alice") == at(-30)


def test_order_lines_carry_their_orders_placed_at_currency_and_counted(source):
    ingest_orders(
        source,
        [
            order("1001", lines=[line("L1"), line("L2")], placed_at=at(-5), currency="EUR"),
            order("1002", lines=[line("L3")], placed_at=at(-7), status="cancelled"),
        ],
    )

    assert set(OrderLine.objects.values_list("external_id", "placed_at", "currency", "counted")) == {
        ("L1", at(-5), "EUR", True),
        ("L2", at(-5), "EUR", True),
        ("L3", at(-7), "USD", False),
    }


def test_order_lines_follow_their_orders_changes_even_when_the_lines_are_unchanged(source):
    ingest_orders(source, [order("1001", lines=[line("L1"), line("L2")], placed_at=at(-5))])

    ingest_orders(
        source,
        [order("1001", updated_at=at(1), lines=[line("L1"), line("L2")], placed_at=at(-6), status="cancelled")],
    )
    assert set(OrderLine.objects.values_list("external_id", "placed_at", "currency", "counted")) == {
        ("L1", at(-6), "USD", False),
        ("L2", at(-6), "USD", False),
    }

    ingest_orders(source, [order("1001", updated_at=at(2), lines=[line("L1")], placed_at=at(-6), currency="GBP")])
    assert list(OrderLine.objects.values_list("external_id", "placed_at", "currency", "counted")) == [
        ("L1", at(-6), "GBP", True)
    ]


def test_a_stale_order_update_leaves_its_lines_copies_alone(source):
    ingest_orders(source, [order("1001", updated_at=at(2), lines=[line("L1")], placed_at=at(-5))])

    ingest_orders(
        source,
        [order("1001", updated_at=at(1), lines=[line("L1")], placed_at=at(-9), currency="EUR", status="cancelled")],
    )

    assert list(OrderLine.objects.values_list("placed_at", "currency", "counted")) == [(at(-5), "USD", True)]


def test_orders_and_lines_saved_one_by_one_keep_the_derived_columns(shop, source):
    """Admin, shell and test fixtures save single rows; the models keep what ingest keeps."""
    alice = Customer.objects.create(tenant_id=shop.tenant_id, connection=shop, external_id="alice")
    bob = Customer.objects.create(tenant_id=shop.tenant_id, connection=shop, external_id="bob")
    first = Order.objects.create(
        tenant_id=shop.tenant_id, connection=shop, external_id="1001", number="1", channel="shopify",
        currency="USD", placed_at=at(-30), customer=alice,
    )  # fmt: skip
    Order.objects.create(
        tenant_id=shop.tenant_id, connection=shop, external_id="1002", number="2", channel="shopify",
        currency="USD", placed_at=at(-10), customer=alice,
    )  # fmt: skip
    item = OrderLine.objects.create(
        tenant_id=shop.tenant_id, connection=shop, external_id="L1", order=first, title="Tent", total=Decimal("9")
    )
    assert (item.placed_at, item.currency, item.counted) == (at(-30), "USD", True)
    assert (first_order_of("alice"), first_order_of("bob")) == (at(-30), None)

    first = Order.objects.get(pk=first.pk)
    first.customer, first.currency, first.status = bob, "EUR", "cancelled"
    first.save()

    assert list(OrderLine.objects.values_list("placed_at", "currency", "counted")) == [(at(-30), "EUR", False)]
    assert (first_order_of("alice"), first_order_of("bob")) == (at(-10), None)


def test_bulk_upsert_keeps_the_derived_columns(shop, source):
    """The demo seeder writes rows it builds itself through bulk_upsert."""
    alice = Customer.objects.create(tenant_id=shop.tenant_id, connection=shop, external_id="alice")
    common = {"tenant_id": shop.tenant_id, "connection_id": shop.pk, "channel": "shopify", "currency": "USD"}
    fields = ["customer", "status", "currency", "placed_at"]
    ids = bulk_upsert(
        Order,
        [
            Order(**common, external_id="1001", number="1", placed_at=at(-30), customer=alice),
            Order(**common, external_id="1002", number="2", placed_at=at(-10), customer=alice),
        ],
        fields,
    )
    bulk_upsert(
        OrderLine,
        [
            OrderLine(
                tenant_id=shop.tenant_id, connection_id=shop.pk, external_id="L1", order_id=ids["1001"], title="T"
            ),
        ],
        ["order", "title"],
    )
    assert list(OrderLine.objects.values_list("placed_at", "currency", "counted")) == [(at(-30), "USD", True)]
    assert first_order_of("alice") == at(-30)

    bulk_upsert(
        Order,
        [Order(**{**common, "currency": "EUR"}, external_id="1001", number="1", placed_at=at(-31), status="cancelled")],
        fields,
    )

    assert list(OrderLine.objects.values_list("placed_at", "currency", "counted")) == [(at(-31), "EUR", False)]
    assert first_order_of("alice") == at(-10)


def test_the_backfill_migration_fills_rows_stored_before_it(shop, source, monkeypatch):
    alice, bob = CustomerRecord("alice"), CustomerRecord("bob")
    ingest_orders(
        source,
        [
            order("1001", customer=alice, placed_at=at(-30), status="cancelled", lines=[line("L1")]),
            order("1002", customer=alice, placed_at=at(-10), currency="EUR", lines=[line("L2"), line("L3")]),
            order("1003", customer=bob, placed_at=at(-5), status="cancelled", lines=[line("L4")]),
        ],
    )
    expected_lines = set(OrderLine.objects.values_list("external_id", "placed_at", "currency", "counted"))
    assert expected_lines == {
        ("L1", at(-30), "USD", False),
        ("L2", at(-10), "EUR", True),
        ("L3", at(-10), "EUR", True),
        ("L4", at(-5), "USD", False),
    }
    # As the rows were before the migration: no first orders, and lines whose copies say nothing
    # true (the migration adds them empty; the required columns cannot be emptied here).
    Customer.objects.update(first_order_at=None)
    OrderLine.objects.update(placed_at=at(100), currency="XXX", counted=True)

    migration = importlib.import_module("commerce.migrations.0005_backfill_derived_dashboard_columns")
    monkeypatch.setattr(migration, "BATCH", 2)  # several batches of lines and of customers

    migration.backfill(django_apps, SimpleNamespace(connection=connection))

    assert set(OrderLine.objects.values_list("external_id", "placed_at", "currency", "counted")) == expected_lines
    assert (first_order_of("alice"), first_order_of("bob")) == (at(-10), None)


def test_new_customers_from_a_sync_reach_the_customer_created_hook(
    source, tenant_a, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from webhooks.models import HookDelivery, HookEvent, HookSubscription
    from webhooks.outbound.signing import new_secret

    HookSubscription.objects.create(
        tenant=tenant_a, target_url="https://hooks.example/x", event=HookEvent.CUSTOMER_CREATED, secret=new_secret()
    )
    with django_capture_on_commit_callbacks(execute=True):
        ingest_customers(source, [CustomerRecord("C1", email="new@example.com", created_at=timezone.now())])

    [delivery] = HookDelivery.objects.all()
    assert delivery.payload["data"]["email"] == "new@example.com"
