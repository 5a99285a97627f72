"""How ingest writes orders, lines and refunds: one upsert statement per table built from tuples
(JSON rows on PostgreSQL, a VALUES list on SQLite), and stored rows found by their unique key.
What lands in the database must be what Django's own bulk_create would have written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction

from commerce import ingest as ingest_module
from commerce.ingest import Source, _select, ingest_orders
from commerce.models import Customer, Order, OrderLine, Refund
from commerce.records import CustomerRecord, OrderLineRecord, OrderRecord, RefundRecord

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def source_of(conn) -> Source:
    return Source(tenant_id=conn.tenant_id, connection_id=conn.pk, channel=conn.platform)


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, platform="woocommerce")


@pytest.fixture
def source(shop) -> Source:
    return source_of(shop)


def order(external_id: str = "1001", *, lines: int | list = 2, raw: dict | None = None, **kwargs) -> OrderRecord:
    if isinstance(lines, int):
        lines = [
            OrderLineRecord(f"{external_id}-L{n}", f"Item {n}", 1, Decimal("5.00"), Decimal("5.00"))
            for n in range(lines)
        ]
    defaults = {
        "number": f"#{external_id}",
        "currency": "EUR",
        "placed_at": T0 - timedelta(days=1),
        "updated_at": T0,
        "total": Decimal("10.00"),
        "raw": raw if raw is not None else {"id": external_id},
        "lines": lines,
    }
    return OrderRecord(external_id=external_id, **{**defaults, **kwargs})


def test_every_column_reads_back_as_the_record_gave_it(shop, source):
    raw = {"note": 'quote " backslash \\ brace } unicode é ✓ 😀', "nested": [1, 2.5, None, True, {"a": []}]}
    record = order(
        "1001",
        raw=raw,
        status="cancelled",
        financial_status="voided",
        fulfillment_status="unfulfilled",
        subtotal=Decimal("12.3456"),
        discounts=Decimal("1.5"),
        shipping=Decimal("0"),
        tax=Decimal("2.01"),
        total=Decimal("12.8556"),
        email="Zoë@example.com",
        customer=CustomerRecord("C1", email="Zoë@example.com", updated_at=T0),
        billing_address={"city": "Zürich", "line": "Straße 1"},
        shipping_address={},
        lines=[
            OrderLineRecord(
                "L1",
                "Tee \u2013 \u201cnavy\u201d",
                3,
                Decimal("3.3333"),
                Decimal("9.99"),
                sku="TEE-NAVY",
                raw={"id": "L1", "meta": {"size": "M"}},
            )
        ],
        refunds=[RefundRecord("R1", Decimal("2.50"), "EUR", T0 + timedelta(minutes=5), reason="damaged", raw={"r": 1})],
    )

    ingest_orders(source, [record])

    stored = Order.objects.get(connection=shop, external_id="1001")
    assert (stored.tenant_id, stored.channel, stored.number, stored.email) == (
        shop.tenant_id,
        "woocommerce",
        "#1001",
        "Zoë@example.com",
    )
    assert (stored.status, stored.financial_status, stored.fulfillment_status) == ("cancelled", "voided", "unfulfilled")
    assert (stored.subtotal, stored.discounts, stored.shipping, stored.tax, stored.total) == (
        Decimal("12.3456"),
        Decimal("1.5"),
        Decimal("0"),
        Decimal("2.01"),
        Decimal("12.8556"),
    )
    assert (stored.placed_at, stored.platform_updated_at) == (T0 - timedelta(days=1), T0)
    assert stored.raw == raw
    assert (stored.billing_address, stored.shipping_address) == ({"city": "Zürich", "line": "Straße 1"}, {})
    assert stored.customer == Customer.objects.get(connection=shop, external_id="C1")
    assert stored.created_at == stored.updated_at

    line = OrderLine.objects.get(connection=shop, external_id="L1")
    assert (line.order_id, line.tenant_id, line.variant_id) == (stored.pk, shop.tenant_id, None)
    assert (line.title, line.sku, line.quantity, line.unit_price, line.total) == (
        "Tee \u2013 \u201cnavy\u201d",
        "TEE-NAVY",
        3,
        Decimal("3.3333"),
        Decimal("9.99"),
    )
    assert (line.placed_at, line.currency, line.counted, line.platform_updated_at) == (
        T0 - timedelta(days=1),
        "EUR",
        False,
        T0,
    )
    assert line.raw == {"id": "L1", "meta": {"size": "M"}}

    refund = Refund.objects.get(connection=shop, external_id="R1")
    assert (refund.order_id, refund.amount, refund.currency, refund.reason, refund.refunded_at) == (
        stored.pk,
        Decimal("2.50"),
        "EUR",
        "damaged",
        T0 + timedelta(minutes=5),
    )


def test_an_amount_with_more_places_than_its_column_is_stored_as_django_stores_it(shop, source):
    ingest_orders(source, [order("1001", total=Decimal("10.12345"))])
    Order.objects.bulk_create(
        [Order(tenant=shop.tenant, connection=shop, external_id="orm", placed_at=T0, total=Decimal("10.12345"))]
    )

    assert Order.objects.get(external_id="1001").total == Order.objects.get(external_id="orm").total


def test_an_amount_that_is_not_a_finite_decimal_is_refused_as_django_refuses_it(shop, source):
    with pytest.raises(ValidationError):
        ingest_orders(source, [order("1001", total=Decimal("NaN"))])

    assert not Order.objects.exists()


def test_a_payload_only_the_standard_json_library_writes_is_stored_as_django_would(shop, source):
    raw = {"id": 2**70, 7: "an integer key"}

    ingest_orders(source, [order("1001", raw=raw)])

    assert Order.objects.get(connection=shop).raw == json.loads(json.dumps(raw))


def test_a_payload_django_cannot_write_fails_the_page_as_it_would_have(shop, source):
    with pytest.raises(TypeError):
        ingest_orders(source, [order("1001"), order("1002", raw={"seen": T0})])

    assert not Order.objects.exists()


@pytest.mark.postgres
def test_a_text_too_long_for_its_column_is_refused_not_cut(shop, source):
    with pytest.raises(DataError):
        ingest_orders(source, [order("1001", number="#" * 65)])

    assert not Order.objects.exists()


def test_rows_beyond_one_statements_parameters_go_in_several_and_all_get_their_ids(shop, source, monkeypatch):
    # SQLite caps the parameters of a statement; with room for two orders a statement, 25 orders
    # take 13 statements, and every line still lands on its own order.
    ingest_module._upsert_statement.cache_clear()
    monkeypatch.setattr(connection.features, "max_query_params", 2 * len(ingest_module.ORDER_COLUMNS))
    try:
        ingest_orders(source, [order(str(n), lines=2) for n in range(25)])
    finally:
        ingest_module._upsert_statement.cache_clear()

    assert Order.objects.filter(connection=shop).count() == 25
    for line in OrderLine.objects.filter(connection=shop).select_related("order"):
        assert line.external_id.startswith(f"{line.order.external_id}-L")


def test_stored_rows_are_found_only_within_the_sources_tenant_and_connection(tenant_a, tenant_b, make_connection):
    first, second = make_connection(tenant_a, name="first"), make_connection(tenant_a, name="second")
    ingest_orders(source_of(first), [order("1001"), order("1002")])
    ingest_orders(source_of(second), [order("1001")])

    found = _select(Order, source_of(first), ["1002", "1001", "404"], ["id"])

    assert found == [(e, Order.objects.get(connection=first, external_id=e).pk) for e in ("1001", "1002")]
    wrong_tenant = Source(tenant_id=tenant_b.pk, connection_id=first.pk, channel="shopify")
    assert _select(Order, wrong_tenant, ["1001"], ["id"]) == []


def test_stored_rows_can_be_locked_for_the_transaction(shop, source):
    ingest_orders(source, [order("1001")])

    with transaction.atomic():
        found = _select(Order, source, ["1001"], ["platform_updated_at", "customer_id"], lock=True)

    assert found == [("1001", T0, None)]


def explained(lookup) -> str:
    """The plan of the one query `lookup()` sends."""
    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        lookup()
    (sql, params) = captured[0]
    with connection.cursor() as cursor:
        cursor.execute(("EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ") + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.postgres
def test_postgresql_does_not_look_stored_rows_up_by_the_tenants_index(make_tenant, make_connection):
    # Statistics taken before this tenant's first sync make it look small while the sync stores
    # thousands of rows. Asked for tenant, connection and external ids, PostgreSQL intersected
    # the tenant's and the connection's indexes and read every row stored so far, on every page.
    for n in range(30):
        other = source_of(make_connection(make_tenant(), name=f"other {n}"))
        ingest_orders(other, [order(str(k), lines=0) for k in range(100)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE commerce_order")
    new = source_of(make_connection(make_tenant(), name="new"))
    ingest_orders(new, [order(str(n), lines=0) for n in range(3000)])

    plan = explained(lambda: _select(Order, new, [str(n) for n in range(1000, 1100)], ["id"], lock=True))

    assert "commerce_order_tenant_id" not in plan
    assert "Filter: (stored.tenant_id = " in plan


def test_sqlite_finds_stored_rows_by_the_unique_index(shop, source):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's query plan")

    plan = explained(lambda: _select(Order, source, [str(n) for n in range(100)], ["id"], lock=True))

    assert "(connection_id=? AND external_id=?)" in plan


def test_an_order_a_concurrent_writer_stored_newer_is_left_alone_with_its_lines_and_refunds(shop, source, monkeypatch):
    """Two writers of one new order (two webhook workers, or a webhook and a sync page) both find
    it missing, so neither has a row to lock. The newer version commits first; the older one's
    upsert then meets the row and must leave it, its lines and its refunds alone (it used to
    overwrite the order's columns, keeping the newer refund beside them)."""
    newer = order(
        updated_at=T0 + timedelta(milliseconds=92),
        financial_status="partially_refunded",
        refunds=[RefundRecord("R-1", Decimal("5.00"), "EUR", T0 + timedelta(milliseconds=92))],
    )
    older = order(updated_at=T0, financial_status="paid", lines=3)
    ingest_orders(source, [newer])
    # The older writer's comparison ran before the newer one committed: it saw nothing stored.
    real_select = ingest_module._select
    monkeypatch.setattr(
        ingest_module, "_select", lambda model, *a, **k: [] if model is Order else real_select(model, *a, **k)
    )

    result = ingest_orders(source, [older])

    stored = Order.objects.get(connection=shop, external_id="1001")
    assert (stored.financial_status, stored.platform_updated_at) == ("partially_refunded", newer.updated_at)
    assert OrderLine.objects.filter(order=stored).count() == 2
    assert list(Refund.objects.filter(order=stored).values_list("external_id", flat=True)) == ["R-1"]
    assert result.created == result.updated == 0
