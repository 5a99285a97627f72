"""Ingest of the finances stream: fees and settlements upserted by (connection, external id), fees
linked to their orders whichever is stored first, another tenant's or connection's order never
linked, and the admin's read-only lists. Runs on SQLite and, with DATABASE_URL, on PostgreSQL
(fees go through the tuple upsert, which has a PostgreSQL path of its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commerce.ingest import Source, UnknownStream, ingest, ingest_orders
from commerce.models import Fee, FeeType, Order, Settlement, SettlementStatus
from commerce.records import FeeRecord, OrderRecord, SettlementRecord

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal


def source_of(connection) -> Source:
    return Source(tenant_id=connection.tenant_id, connection_id=connection.pk, channel=connection.platform)


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "amazon")


def fee(external_id: str, order: str = "111-0000001-0000001", **kwargs) -> FeeRecord:
    defaults = {
        "amount": D("2.50"),
        "currency": "USD",
        "type": FeeType.COMMISSION,
        "platform_type": "Commission",
        "event_type": "Shipment",
        "order_external_id": order,
        "sku": "SKU-1",
        "posted_at": T0,
        "updated_at": T0,
        "raw": {"FeeType": "Commission", "note": 'quote " and é'},
    }
    return FeeRecord(external_id=external_id, **{**defaults, **kwargs})


def settlement(external_id: str = "GROUP-1", **kwargs) -> SettlementRecord:
    defaults = {
        "total": D("120.50"),
        "currency": "USD",
        "status": SettlementStatus.OPEN,
        "started_at": T0 - timedelta(days=14),
        "raw": {"FinancialEventGroupId": external_id},
    }
    return SettlementRecord(external_id=external_id, **{**defaults, **kwargs})


def order(external_id: str) -> OrderRecord:
    return OrderRecord(external_id=external_id, number=external_id, currency="USD", placed_at=T0, updated_at=T0)


def test_fees_land_with_every_column_and_their_order_linked(shop):
    ingest_orders(source_of(shop), [order("111-0000001-0000001")])
    stored_order = Order.objects.get(external_id="111-0000001-0000001")
    undated = fee("F2", order="", sku="", posted_at=None, updated_at=None)
    result = ingest("finances", source_of(shop), [fee("F1"), undated])
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    linked = Fee.objects.for_tenant(shop.tenant).get(external_id="F1")
    assert linked.order == stored_order
    assert (linked.amount, linked.currency, linked.type, linked.platform_type) == (
        D("2.50"),
        "USD",
        "commission",
        "Commission",
    )
    assert (linked.event_type, linked.sku, linked.order_external_id) == ("Shipment", "SKU-1", "111-0000001-0000001")
    assert linked.posted_at == linked.platform_updated_at == T0
    assert linked.raw == {"FeeType": "Commission", "note": 'quote " and é'}
    stored_undated = Fee.objects.get(external_id="F2")
    assert (stored_undated.order, stored_undated.posted_at) == (None, None)


def test_a_fee_stored_before_its_order_is_linked_when_the_order_comes(shop):
    ingest("finances", source_of(shop), [fee("F1", order="111-0000002-0000002")])
    assert Fee.objects.get(external_id="F1").order is None
    ingest_orders(source_of(shop), [order("111-0000002-0000002"), order("111-0000003-0000003")])
    assert Fee.objects.get(external_id="F1").order == Order.objects.get(external_id="111-0000002-0000002")


def test_an_order_of_another_connection_or_tenant_is_never_linked(shop, tenant_b, make_connection):
    other_tenant = make_connection(tenant_b, "amazon")
    other_connection = make_connection(shop.tenant, "amazon", name="second account")
    for connection in (other_tenant, other_connection):
        ingest_orders(source_of(connection), [order("111-0000004-0000004")])
    ingest("finances", source_of(shop), [fee("F1", order="111-0000004-0000004")])
    assert Fee.objects.get(external_id="F1").order is None
    # Nor does their order, written later, link this connection's fee.
    ingest("finances", source_of(shop), [fee("F2", order="111-0000005-0000005")])
    ingest_orders(source_of(other_connection), [order("111-0000005-0000005")])
    ingest_orders(source_of(other_tenant), [order("111-0000005-0000005")])
    assert not Fee.objects.filter(order__isnull=False).exists()


def test_reading_the_same_fees_again_writes_nothing_and_duplicates_nothing(shop):
    ingest("finances", source_of(shop), [fee("F1"), fee("F2", amount=D("-1.00"))])
    again = ingest("finances", source_of(shop), [fee("F1"), fee("F2", amount=D("-1.00"))])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Fee.objects.count() == 2
    assert Fee.objects.get(external_id="F2").amount == D("-1.00")


def test_an_undated_fee_read_again_is_rewritten_in_place(shop):
    undated = {"posted_at": None, "updated_at": None}
    ingest("finances", source_of(shop), [fee("F1", **undated)])
    again = ingest("finances", source_of(shop), [fee("F1", amount=D("3.00"), **undated)])
    assert (again.created, again.updated) == (0, 1)
    assert Fee.objects.get().amount == D("3.00")


def test_a_page_that_repeats_a_fee_stores_it_once(shop):
    result = ingest("finances", source_of(shop), [fee("F1"), fee("F1")])
    assert Fee.objects.count() == 1
    assert result.created == 1 and result.unchanged == 1


def test_a_settlement_read_again_is_updated_in_place(shop):
    ingest("finances", source_of(shop), [settlement()])
    paid = settlement(status=SettlementStatus.PAID, ended_at=T0, transferred_at=T0 + timedelta(days=1), total=D("130"))
    result = ingest("finances", source_of(shop), [paid])
    assert (result.created, result.updated) == (0, 1)
    (stored,) = Settlement.objects.for_tenant(shop.tenant)
    assert (stored.status, stored.total, stored.ended_at, stored.transferred_at) == (
        SettlementStatus.PAID,
        D("130.0000"),
        T0,
        T0 + timedelta(days=1),
    )


def test_one_page_may_mix_settlements_and_fees(shop):
    result = ingest("finances", source_of(shop), [settlement(), fee("F1"), settlement("GROUP-2")])
    assert result.created == 3
    assert (Settlement.objects.count(), Fee.objects.count()) == (2, 1)


def test_the_finances_stream_takes_fees_and_settlements_only(shop):
    with pytest.raises(TypeError):
        ingest("finances", source_of(shop), [order("111-0000001-0000001")])
    with pytest.raises(UnknownStream):
        ingest("fees", source_of(shop), [fee("F1")])


def test_the_same_external_id_on_two_connections_is_two_fees(shop, make_connection):
    other = make_connection(shop.tenant, "amazon", name="EU account")
    ingest("finances", source_of(shop), [fee("F1")])
    ingest("finances", source_of(other), [fee("F1")])
    assert Fee.objects.for_tenant(shop.tenant).count() == 2


# --- Admin --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "filters"), [("fee", "type__exact=commission"), ("settlement", "status__exact=open")]
)
def test_the_admin_lists_them_read_only_with_filters(client, superadmin, shop, model, filters):
    records = [settlement(), settlement("GROUP-2", status=SettlementStatus.PAID), fee("F1"), fee("F2", type="other")]
    ingest("finances", source_of(shop), records)
    client.force_login(superadmin)
    assert client.get(f"/admin/commerce/{model}/").context["cl"].result_count == 2
    response = client.get(f"/admin/commerce/{model}/?{filters}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert client.get(f"/admin/commerce/{model}/add/").status_code == 403
    row = (Fee if model == "fee" else Settlement).objects.first()
    assert client.get(f"/admin/commerce/{model}/{row.pk}/change/").status_code == 200
    assert client.post(f"/admin/commerce/{model}/{row.pk}/change/", {}).status_code == 403
