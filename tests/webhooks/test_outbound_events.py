"""Events are emitted from where the data changes, once the change commits: commerce's
`records_written` (orders, customers, stock, milestones), connection tests and sync runs. A
rolled-back change sends nothing, a tenant without subscriptions costs one query, and a page of
records costs the same number of queries whatever its size."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderStatus,
    Product,
    ProductVariant,
)
from commerce.signals import records_written
from integrations.connectors.base import CheckResult
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from integrations.services import connection_tested
from webhooks.models import HookDelivery, HookEvent, HookSubscription, Milestone
from webhooks.outbound import events
from webhooks.outbound.signing import new_secret

pytestmark = pytest.mark.django_db
E = HookEvent


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a)


@pytest.fixture
def hook(tenant_a):
    def make(event: str, tenant=None, **kwargs) -> HookSubscription:
        return HookSubscription.objects.create(
            tenant=tenant or tenant_a,
            target_url="https://hooks.zapier.example/x",
            event=event,
            secret=new_secret(),
            **kwargs,
        )

    return make


@pytest.fixture
def written(shop, django_capture_on_commit_callbacks):
    """written(stream, created=[...], updated=[...]): send records_written as ingest does and run
    what it registered for the commit; returns the deliveries it made."""

    def send(stream: str, created=(), updated=(), connection=None) -> list[HookDelivery]:
        connection = connection or shop
        before = set(HookDelivery.objects.values_list("pk", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            records_written.send(
                sender=Order,
                tenant_id=connection.tenant_id,
                connection_id=connection.pk,
                stream=stream,
                created=[row.pk for row in created],
                updated=[row.pk for row in updated],
            )
        return list(HookDelivery.objects.exclude(pk__in=before).order_by("pk"))

    return send


def data_ids(deliveries: list[HookDelivery], event: str) -> list[int]:
    return [d.payload["data"]["id"] for d in deliveries if d.event == event]


# --- Orders ------------------------------------------------------------------------------------------


def test_new_orders_are_announced_to_each_subscription(hook, written, make_order, shop):
    first, second = hook(E.ORDER_CREATED), hook(E.ORDER_CREATED)
    hook(E.CUSTOMER_CREATED)
    orders = [make_order(shop), make_order(shop)]

    made = written("orders", created=orders)

    assert len(made) == 4
    assert {d.subscription_id for d in made} == {first.pk, second.pk}
    assert sorted(data_ids(made, E.ORDER_CREATED)) == sorted([o.pk for o in orders] * 2)
    assert made[0].payload["data"] == events.orders(Order.objects.filter(pk=made[0].payload["data"]["id"]))[0]


def test_a_rolled_back_change_sends_nothing(hook, make_order, shop, django_capture_on_commit_callbacks):
    hook(E.ORDER_CREATED)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        order = make_order(shop)
        records_written.send(
            sender=Order,
            tenant_id=shop.tenant_id,
            connection_id=shop.pk,
            stream="orders",
            created=[order.pk],
            updated=[],
        )
        raise RuntimeError("the page failed")

    assert callbacks == []
    assert not HookDelivery.objects.exists()


def test_nothing_is_sent_before_the_commit(hook, make_order, shop):
    hook(E.ORDER_CREATED)
    order = make_order(shop)

    records_written.send(
        sender=Order, tenant_id=shop.tenant_id, connection_id=shop.pk, stream="orders", created=[order.pk], updated=[]
    )

    assert not HookDelivery.objects.exists()  # the test's transaction never commits


def test_an_old_order_arriving_first_is_history_not_news(hook, written, make_order, shop, settings):
    hook(E.ORDER_CREATED)
    hook(E.ORDER_FULFILLED)
    old = make_order(
        shop,
        placed_at=timezone.now() - timedelta(days=settings.HOOKS_BACKFILL_DAYS + 1),
        fulfillment_status=FulfillmentStatus.FULFILLED,
    )
    new = make_order(shop)

    made = written("orders", created=[old, new])
    again = written("orders", updated=[old])  # the old one changes later: still fulfilled, no news

    assert data_ids(made, E.ORDER_CREATED) == [new.pk]
    assert data_ids(made, E.ORDER_FULFILLED) == [] and again == []


def test_updates_fulfilment_and_refunds_are_each_announced_once(hook, written, make_order, shop):
    for event in (E.ORDER_UPDATED, E.ORDER_FULFILLED, E.ORDER_REFUNDED):
        hook(event)
    order = make_order(shop)

    assert [d.event for d in written("orders", created=[order])] == []  # only order.created is news
    Order.objects.filter(pk=order.pk).update(fulfillment_status=FulfillmentStatus.FULFILLED)
    fulfilled = written("orders", updated=[order])
    touched = written("orders", updated=[order])
    Order.objects.filter(pk=order.pk).update(financial_status=FinancialStatus.PARTIALLY_REFUNDED)
    partly = written("orders", updated=[order])
    Order.objects.filter(pk=order.pk).update(financial_status=FinancialStatus.REFUNDED)
    fully = written("orders", updated=[order])

    assert sorted(d.event for d in fulfilled) == [E.ORDER_FULFILLED, E.ORDER_UPDATED]
    assert [d.event for d in touched] == [E.ORDER_UPDATED]
    assert sorted(d.event for d in partly) == [E.ORDER_REFUNDED, E.ORDER_UPDATED]
    assert sorted(d.event for d in fully) == [E.ORDER_REFUNDED, E.ORDER_UPDATED]
    assert fully[0].payload["data"]["financial_status"] in ("refunded", "partially_refunded")


def test_other_tenants_subscriptions_hear_nothing(hook, written, make_order, shop, tenant_b):
    hook(E.ORDER_CREATED, tenant=tenant_b)

    assert written("orders", created=[make_order(shop)]) == []


def test_a_switched_off_subscription_hears_nothing(hook, written, make_order, shop):
    hook(E.ORDER_CREATED, active=False)

    assert written("orders", created=[make_order(shop)]) == []


def test_a_tenant_without_subscriptions_costs_one_query(make_order, shop, make_connection, tenant_a, written):
    customers = [Customer.objects.create(tenant=tenant_a, connection=shop, external_id=f"c{n}") for n in range(5)]

    with CaptureQueriesContext(db) as queries:
        written("customers", created=customers)

    assert len(queries) == 1 + 2  # the subscription query, and the capture's own before/after reads


def test_a_page_costs_the_same_queries_whatever_its_size(hook, written, make_order, shop):
    for event in (E.ORDER_CREATED, E.ORDER_UPDATED, E.ORDER_FULFILLED, E.ORDER_REFUNDED):
        hook(event)

    def cost(size: int) -> int:
        orders = [make_order(shop, fulfillment_status=FulfillmentStatus.FULFILLED) for _ in range(size)]
        with CaptureQueriesContext(db) as queries:
            made = written("orders", created=orders)
        assert len(made) == size * 2  # created and fulfilled
        return len(queries)

    assert cost(2) == cost(20)


# --- Customers, stock --------------------------------------------------------------------------------


def test_new_customers_are_announced(hook, written, shop, tenant_a, settings):
    hook(E.CUSTOMER_CREATED)
    fresh = Customer.objects.create(tenant=tenant_a, connection=shop, external_id="c1", email="new@example.com")
    old = Customer.objects.create(
        tenant=tenant_a,
        connection=shop,
        external_id="c2",
        platform_created_at=timezone.now() - timedelta(days=settings.HOOKS_BACKFILL_DAYS + 1),
    )

    made = written("customers", created=[fresh, old], updated=[])

    assert data_ids(made, E.CUSTOMER_CREATED) == [fresh.pk]
    assert made[0].payload["data"]["email"] == "new@example.com" and made[0].payload["data"]["platform"] == "shopify"


@pytest.fixture
def variant(shop, tenant_a):
    product = Product.objects.create(tenant=tenant_a, connection=shop, external_id="p1", title="Mug")
    return ProductVariant.objects.create(
        tenant=tenant_a, connection=shop, external_id="v1", product=product, sku="MUG-1", currency="USD"
    )


def test_low_stock_is_announced_when_reached_and_again_after_a_restock(hook, written, variant, shop, tenant_a):
    hook(E.PRODUCT_LOW_STOCK)
    level = InventoryLevel.objects.create(
        tenant=tenant_a, connection=shop, external_id="l1", variant=variant, available=50
    )

    def stock(available: int) -> list[HookDelivery]:
        InventoryLevel.objects.filter(pk=level.pk).update(available=available)
        return written("inventory", updated=[level])

    assert written("inventory", created=[level]) == []
    low = stock(tenant_a.default_reorder_point)
    lower = stock(1)
    stock(40)
    again = stock(0)

    assert [d.payload["data"] for d in low] == [
        {
            "variant_id": variant.pk,
            "product_id": variant.product_id,
            "sku": "MUG-1",
            "title": "Mug",
            "variant_title": "",
            "available": tenant_a.default_reorder_point,
            "reorder_point": tenant_a.default_reorder_point,
        }
    ]
    assert lower == []
    assert [d.payload["data"]["available"] for d in again] == [0]


def test_a_variants_own_reorder_point_wins(hook, written, variant, shop, tenant_a):
    hook(E.PRODUCT_LOW_STOCK)
    ProductVariant.objects.filter(pk=variant.pk).update(reorder_point=20)
    InventoryLevel.objects.create(tenant=tenant_a, connection=shop, external_id="l1", variant=variant, available=15)

    made = written("products", updated=[variant.product])

    assert [d.payload["data"]["reorder_point"] for d in made] == [20]


# --- Milestones --------------------------------------------------------------------------------------


def test_a_milestone_is_announced_once_when_crossed(hook, written, make_order, shop, tenant_a):
    hook(E.ANALYTICS_MILESTONE)
    count = Milestone.objects.create(tenant=tenant_a, kind="order_count", threshold=3)
    revenue = Milestone.objects.create(tenant=tenant_a, kind="revenue", threshold=100, currency="USD")
    euros = Milestone.objects.create(tenant=tenant_a, kind="revenue", threshold=1, currency="EUR")
    orders = [make_order(shop, total=Decimal("40")) for _ in range(2)]
    make_order(shop, total=Decimal("500"), status=OrderStatus.CANCELLED)  # not counted

    assert written("orders", created=orders) == []
    third = make_order(shop, total=Decimal("40"))
    made = written("orders", created=[third])
    fourth = make_order(shop, total=Decimal("40"))
    later = written("orders", created=[fourth])

    assert sorted(d.payload["data"]["kind"] for d in made) == ["order_count", "revenue"]
    by_kind = {d.payload["data"]["kind"]: d.payload["data"] for d in made}
    assert by_kind["order_count"]["value"] == "3" and by_kind["revenue"]["value"] == "120.0000"
    assert later == []
    count.refresh_from_db()
    revenue.refresh_from_db()
    euros.refresh_from_db()
    assert count.reached_at and revenue.reached_at and euros.reached_at is None


def test_milestones_are_marked_even_without_a_subscription(written, make_order, shop, tenant_a):
    milestone = Milestone.objects.create(tenant=tenant_a, kind="order_count", threshold=1)

    written("orders", created=[make_order(shop)])

    milestone.refresh_from_db()
    assert milestone.reached_at is not None and milestone.reached_value == 1


# --- Connections and sync runs -----------------------------------------------------------------------


@pytest.fixture
def tested(django_capture_on_commit_callbacks):
    def send(connection: Connection, ok: bool, status: str | None = None) -> list[HookDelivery]:
        """As services.test_connection does: the status is saved, then the signal is sent."""
        status = status or (ConnectionStatus.CONNECTED if ok else ConnectionStatus.FAILING)
        Connection.objects.filter(pk=connection.pk).update(status=status)
        before = set(HookDelivery.objects.values_list("pk", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            connection_tested.send(sender=Connection, connection=connection, result=CheckResult(ok=ok))
        return list(HookDelivery.objects.exclude(pk__in=before))

    return send


def test_a_connection_is_announced_connected_then_failed_once_each(hook, tested, shop):
    hook(E.INTEGRATION_CONNECTED)
    hook(E.INTEGRATION_FAILED)

    connected = tested(shop, ok=True)
    again = tested(shop, ok=True)
    Connection.objects.filter(pk=shop.pk).update(last_error="401 Unauthorized")
    failed = tested(shop, ok=False)
    still = tested(shop, ok=False)
    back = tested(shop, ok=True)

    assert [d.event for d in connected] == [E.INTEGRATION_CONNECTED]
    assert connected[0].payload["data"]["platform"] == "shopify"
    assert again == [] and still == []
    assert [d.event for d in failed] == [E.INTEGRATION_FAILED]
    assert failed[0].payload["data"]["last_error"] == "401 Unauthorized"
    assert [d.event for d in back] == [E.INTEGRATION_CONNECTED]


def test_a_disabled_connection_that_passes_its_test_is_not_announced(hook, tested, shop):
    hook(E.INTEGRATION_CONNECTED)

    assert tested(shop, ok=True, status=ConnectionStatus.DISABLED) == []


def finish(run: SyncRun, status: str, captured) -> list[HookDelivery]:
    before = set(HookDelivery.objects.values_list("pk", flat=True))
    with captured(execute=True):
        run.status, run.finished_at = status, timezone.now()
        run.save(update_fields=["status", "finished_at"])
    return list(HookDelivery.objects.exclude(pk__in=before))


def test_a_successful_sync_is_announced(hook, shop, django_capture_on_commit_callbacks):
    hook(E.SYNC_COMPLETED)
    run = SyncRun.objects.create(
        tenant=shop.tenant,
        connection=shop,
        streams=["orders"],
        status=SyncStatus.RUNNING,
        counts={"orders": {"created": 2, "updated": 1, "unchanged": 0, "failed": 0}},
    )

    made = finish(run, SyncStatus.SUCCEEDED, django_capture_on_commit_callbacks)

    [delivery] = made
    assert delivery.event == E.SYNC_COMPLETED
    assert delivery.payload["data"]["totals"] == {"created": 2, "updated": 1, "unchanged": 0, "failed": 0}
    assert delivery.payload["data"]["integration"] == shop.pk


def test_a_sync_that_fails_on_the_connection_announces_it_failed(hook, shop, django_capture_on_commit_callbacks):
    hook(E.INTEGRATION_FAILED)
    hook(E.SYNC_COMPLETED)
    Connection.objects.filter(pk=shop.pk).update(status=ConnectionStatus.NEEDS_REAUTH, last_error="token revoked")
    run = SyncRun.objects.create(tenant=shop.tenant, connection=shop, status=SyncStatus.RUNNING)

    made = finish(run, SyncStatus.FAILED, django_capture_on_commit_callbacks)

    assert [d.event for d in made] == [E.INTEGRATION_FAILED]
    assert made[0].payload["data"]["status"] == "needs_reauth"


def test_a_sync_that_fails_on_our_side_is_not_the_connections_failure(hook, shop, django_capture_on_commit_callbacks):
    hook(E.INTEGRATION_FAILED)
    run = SyncRun.objects.create(tenant=shop.tenant, connection=shop, status=SyncStatus.RUNNING)

    assert finish(run, SyncStatus.FAILED, django_capture_on_commit_callbacks) == []


# --- From ingest itself ------------------------------------------------------------------------------


def test_ingesting_an_order_page_announces_new_and_changed_orders(hook, shop, django_capture_on_commit_callbacks):
    from commerce.ingest import Source, ingest
    from commerce.records import OrderRecord

    created, updated = hook(E.ORDER_CREATED), hook(E.ORDER_UPDATED)
    now = timezone.now()

    def page(total: str, at):
        record = OrderRecord(
            external_id="gid://shop/Order/1",
            number="#1",
            currency="USD",
            total=Decimal(total),
            placed_at=now - timedelta(hours=1),
            updated_at=at,
        )
        with django_capture_on_commit_callbacks(execute=True):
            ingest("orders", Source(shop.tenant_id, shop.pk, shop.platform), [record])

    page("10.00", now - timedelta(minutes=30))
    page("12.00", now - timedelta(minutes=20))
    page("9.00", now - timedelta(minutes=25))  # older than what is stored: no change, no event
    order = Order.objects.get(connection=shop)
    assert list(HookDelivery.objects.filter(subscription=created).values_list("payload__data__id", flat=True)) == [
        order.pk
    ]
    assert HookDelivery.objects.filter(subscription=updated).count() == 1
