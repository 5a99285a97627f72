"""The finances stream synced from the local fake Amazon through the real connector, engine and
ingest: settlements and fees land once, fees on their orders; a later sync reads again from its
watermarks, less the overlap, and duplicates nothing; a settlement paid since is updated; refunds
still come with their orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from commerce.models import Fee, FeeType, Order, Refund, Settlement, SettlementStatus
from integrations.connectors import amazon_config
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.amazon_client import OPERATIONS, Operation
from integrations.http import HttpClient
from integrations.models import SyncStatus
from integrations.sync import run_sync
from tests.fakes.amazon_server import FakeAmazon

pytestmark = pytest.mark.django_db

ORDERS = 160
FEES = 150  # orders with a shipment event: 150 + refunds + service fees is more than a page of 100
REFUNDS = 4
SERVICE_FEES = 3  # a month apart: undated, as Amazon's are
SETTLEMENTS = 3
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
# Each shipment of the fake has five fees that are not zero; each refund gives one fee back and
# charges another.
STORED_FEES = 5 * FEES + 2 * REFUNDS + SERVICE_FEES
ROOMY = {name: Operation(name, op.path, 1000.0, 1000) for name, op in OPERATIONS.items()}
EVENTS = "/finances/v0/financialEvents"
GROUPS = "/finances/v0/financialEventGroups"


@pytest.fixture
def amazon(settings, monkeypatch):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakeAmazon(
        orders=ORDERS, refunds=REFUNDS, fees=FEES, service_fees=SERVICE_FEES, settlements=SETTLEMENTS, now=NOW
    ) as amazon:
        monkeypatch.setattr(amazon_config, "now", lambda: amazon.now)
        yield amazon


@pytest.fixture
def shop(tenant_a, make_connection, amazon):
    return make_connection(tenant_a, "amazon", credentials=amazon.credentials(), base_url=amazon.url)


def sync(connection, streams=("orders", "finances")):
    client = HttpClient(sleep=lambda seconds: None, allow_private=True, timeout=(2.0, 5.0))
    connector = AmazonConnector(connection, client=client, operations=ROOMY)
    run = run_sync(connection, list(streams), connector=connector)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    connection.refresh_from_db()
    return run


def test_a_sync_stores_every_settlement_and_fee_once_with_fees_on_their_orders(shop, amazon):
    run = sync(shop)
    tenant = shop.tenant
    assert Settlement.objects.for_tenant(tenant).count() == SETTLEMENTS
    assert Fee.objects.for_tenant(tenant).count() == STORED_FEES
    assert run.counts["finances"]["created"] == SETTLEMENTS + STORED_FEES
    assert run.counts["finances"]["failed"] == 0
    # Every fee of an order is on it: the orders came first in this run.
    with_order = Fee.objects.for_tenant(tenant).exclude(order_external_id="")
    assert with_order.count() == 5 * FEES + 2 * REFUNDS
    assert not with_order.filter(order__isnull=True).exists()
    first = next(iter(amazon.orders))
    fees = Fee.objects.for_tenant(tenant).filter(order=Order.objects.get(external_id=first))
    assert fees.filter(event_type="Shipment").aggregate(total=Sum("amount"))["total"] == Decimal("33.16")
    assert set(fees.values_list("type", flat=True)) == {FeeType.COMMISSION, FeeType.FULFILMENT}
    assert Fee.objects.for_tenant(tenant).filter(event_type="ServiceFee", posted_at__isnull=True).count() == 3
    # More events than one page: the second came with the first's NextToken.
    assert any(s.query.get("NextToken") for s in amazon.seen(EVENTS))
    assert shop.cursors["finances"] == {
        "settlements": "2025-02-17T12:00:00Z",  # the open one's start: it may still change
        "events": "2025-03-03T11:57:00Z",
    }
    statuses = dict(Settlement.objects.values_list("external_id", "status"))
    assert statuses == {"GROUP-0000": "open", "GROUP-0001": "paid", "GROUP-0002": "paid"}


def test_refunds_still_come_with_their_orders(shop, amazon):
    sync(shop)
    assert Refund.objects.for_tenant(shop.tenant).count() == REFUNDS


def test_a_later_sync_reads_from_its_watermarks_less_the_overlap_and_duplicates_nothing(shop, amazon):
    sync(shop)
    amazon.advance(timedelta(hours=1))
    before = len(amazon.requests)
    run = sync(shop, streams=("finances",))
    later = amazon.requests[before:]
    events = [r.query for r in later if r.path == EVENTS]
    groups = [r.query for r in later if r.path == GROUPS]
    assert events[0]["PostedAfter"] == "2025-03-01T11:57:00Z"  # two days before the watermark
    assert groups[0]["FinancialEventGroupStartedAfter"] == "2025-02-15T12:00:00Z"
    assert Fee.objects.count() == STORED_FEES
    assert Settlement.objects.count() == SETTLEMENTS
    assert run.counts["finances"]["created"] == 0
    # What the overlap read again is unchanged, but for undated service fees, always written.
    assert run.counts["finances"]["updated"] == 1 + 1  # the open settlement, the service fee of the last two days


def test_a_settlement_paid_since_the_last_sync_is_updated_and_the_watermark_moves_on(shop, amazon):
    sync(shop, streams=("finances",))
    amazon.advance(timedelta(days=2))
    amazon.pay("GROUP-0000", amazon.now - timedelta(hours=2))
    sync(shop, streams=("finances",))
    paid = Settlement.objects.get(external_id="GROUP-0000")
    assert paid.status == SettlementStatus.PAID
    assert paid.transferred_at == amazon.now - timedelta(hours=2)
    assert shop.cursors["finances"]["settlements"] == "2025-03-05T11:57:00Z"


def test_fees_read_before_their_orders_are_linked_when_the_orders_come(shop, amazon):
    sync(shop, streams=("finances",))
    assert Fee.objects.filter(order__isnull=False).count() == 0
    sync(shop, streams=("orders",))
    assert Fee.objects.exclude(order_external_id="").filter(order__isnull=True).count() == 0
