"""Auto-fulfilment rules: orders arriving through ingest that match a rule are fulfilled by it once
the page commits (never history, never twice), and the dry run lists what a rule would fulfil."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from commerce.fulfilment_rules import RuleError, apply_rules, check_rule, preview
from commerce.ingest import Source, ingest_orders
from commerce.models import (
    FinancialStatus,
    FulfillmentStatus,
    Fulfilment,
    FulfilmentRule,
    FulfilmentSource,
    Order,
    OrderStatus,
)
from commerce.models import FulfilmentPushStatus as Status
from commerce.records import OrderLineRecord, OrderRecord

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


@pytest.fixture
def ebooks(tenant_a):
    return FulfilmentRule.objects.create(tenant=tenant_a, name="E-books", sku_prefix="EBOOK-", carrier="usps")


def arrive(shop, *orders: OrderRecord, capture) -> list[Order]:
    """Ingest a page of orders as a sync would, and run what it queued once it committed."""
    source = Source(tenant_id=shop.tenant_id, connection_id=shop.pk, channel=shop.platform)
    with capture(execute=True):
        ingest_orders(source, list(orders))
    with capture(execute=True):
        run_queued()  # the rules
    run_queued()  # the pushes
    return list(Order.objects.filter(external_id__in=[o.external_id for o in orders]).order_by("pk"))


def record(n: int, *skus: str, placed_at=None, **kwargs) -> OrderRecord:
    return OrderRecord(
        external_id=f"gid://shopify/Order/{n}",
        number=str(n),
        currency="USD",
        placed_at=placed_at or timezone.now(),
        financial_status=kwargs.pop("financial_status", FinancialStatus.PAID),
        lines=[
            OrderLineRecord(f"line-{n}-{i}", f"Item {sku}", 1, Decimal("5"), Decimal("5"), sku=sku)
            for i, sku in enumerate(skus)
        ],
        **kwargs,
    )


def test_a_new_order_matching_a_rule_is_fulfilled_with_the_matching_lines(
    shop, platform, ebooks, django_capture_on_commit_callbacks
):
    (order,) = arrive(shop, record(1, "EBOOK-1", "TENT-1"), capture=django_capture_on_commit_callbacks)

    made = Fulfilment.objects.get(order=order)
    ebook = order.lines.get(sku="EBOOK-1")
    assert (made.source, made.rule, made.carrier, made.tracking_number) == (FulfilmentSource.RULE, ebooks, "usps", "")
    assert made.lines == [[ebook.pk, 1]]
    assert made.status == Status.PUSHED
    assert platform.calls[0].lines == ((ebook.external_id, 1),)
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.PARTIAL  # the tent is left for a person
    ebooks.refresh_from_db()
    assert ebooks.orders_fulfilled == 1 and ebooks.last_error == ""


def test_orders_that_do_not_match_are_left_alone(shop, platform, ebooks, django_capture_on_commit_callbacks):
    arrive(
        shop,
        record(1, "TENT-1"),
        record(2, "EBOOK-1", financial_status=FinancialStatus.PENDING),  # not paid
        record(3, "EBOOK-2", status=OrderStatus.CANCELLED),
        record(4, "EBOOK-3", fulfillment_status=FulfillmentStatus.FULFILLED),
        capture=django_capture_on_commit_callbacks,
    )
    assert not Fulfilment.objects.exists()
    assert platform.calls == []


def test_a_rule_never_fulfils_orders_placed_before_it_was_switched_on(
    shop, platform, ebooks, django_capture_on_commit_callbacks
):
    before = ebooks.enabled_at - timedelta(minutes=1)
    arrive(shop, record(1, "EBOOK-1", placed_at=before), capture=django_capture_on_commit_callbacks)
    assert not Fulfilment.objects.exists()


def test_switching_a_rule_off_and_on_moves_its_start(ebooks):
    started = ebooks.enabled_at
    ebooks.enabled = False
    ebooks.save()
    assert ebooks.enabled_at is None
    ebooks.enabled = True
    ebooks.save()
    assert ebooks.enabled_at > started


def test_a_rule_fulfils_an_order_once_however_often_its_task_runs(shop, platform, ebooks):
    order = Order.objects.create(
        tenant=shop.tenant,
        connection=shop,
        external_id="o-1",
        number="1",
        channel="shopify",
        currency="USD",
        placed_at=timezone.now(),
        financial_status=FinancialStatus.PAID,
    )
    add_line(order, "EBOOK-1", 2)
    assert apply_rules(shop.tenant_id, [order.pk]) == "1 fulfilled by rules, 0 refused"
    assert apply_rules(shop.tenant_id, [order.pk]) == "0 fulfilled by rules, 0 refused"
    assert Fulfilment.objects.filter(order=order).count() == 1


def test_a_rule_for_one_connection_skips_the_others(
    shop, platform, ebooks, make_connection, tenant_a, django_capture_on_commit_callbacks
):
    ebooks.connection = make_connection(tenant_a, "woocommerce", name="Woo")
    ebooks.save()
    arrive(shop, record(1, "EBOOK-1"), capture=django_capture_on_commit_callbacks)
    assert not Fulfilment.objects.exists()


def test_rules_run_in_order_and_a_line_taken_is_gone_for_the_next(
    shop, platform, ebooks, tenant_a, django_capture_on_commit_callbacks
):
    everything = FulfilmentRule.objects.create(
        tenant=tenant_a, name="Rest from this shop", connection=shop, carrier="ups", tracking_number="LOCAL"
    )
    (order,) = arrive(shop, record(1, "EBOOK-1", "TENT-1"), capture=django_capture_on_commit_callbacks)

    by_rule = {f.rule_id: f for f in Fulfilment.objects.filter(order=order)}
    assert by_rule[ebooks.pk].lines == [[order.lines.get(sku="EBOOK-1").pk, 1]]
    assert by_rule[everything.pk].lines == []  # everything left: the tent
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED


def test_why_a_rule_could_not_fulfil_is_kept_on_the_rule(shop, platform, ebooks, django_capture_on_commit_callbacks):
    platform.accepted = ["ups"]  # the platform does not take USPS
    arrive(shop, record(1, "EBOOK-1"), capture=django_capture_on_commit_callbacks)
    ebooks.refresh_from_db()
    assert ebooks.last_error == "Order #1: Unknown carrier “usps”. Accepted: UPS."
    assert ebooks.last_error_at is not None and ebooks.orders_fulfilled == 0
    assert not Fulfilment.objects.exists()


def test_a_tenant_without_enabled_rules_queues_no_task(shop, platform, ebooks, django_capture_on_commit_callbacks):
    FulfilmentRule.objects.filter(pk=ebooks.pk).update(enabled=False)
    source = Source(tenant_id=shop.tenant_id, connection_id=shop.pk, channel="shopify")
    with django_capture_on_commit_callbacks(execute=True):
        ingest_orders(source, [record(1, "EBOOK-1")])
    assert not OrmQ.objects.exists()


def test_the_dry_run_lists_recent_matching_orders_without_fulfilling_them(
    shop, platform, ebooks, make_order, make_connection, tenant_b
):
    now = timezone.now()
    old_enough = make_order(shop, number="10", placed_at=now - timedelta(days=3), financial_status="paid")
    add_line(old_enough, "EBOOK-9", 2, "Novel")
    add_line(old_enough, "TENT-1", 1)
    everything = make_order(shop, number="11", placed_at=now - timedelta(days=1), financial_status="paid")
    add_line(everything, "EBOOK-7", 1, "Poems")
    for number, sku, kwargs in [
        ("12", "TENT-2", {}),
        ("13", "EBOOK-1", {"placed_at": now - timedelta(days=40)}),
        ("14", "EBOOK-1", {"status": OrderStatus.CANCELLED}),
        ("15", "EBOOK-1", {"financial_status": FinancialStatus.PENDING}),
    ]:
        add_line(
            make_order(shop, number=number, financial_status=kwargs.pop("financial_status", "paid"), **kwargs), sku, 1
        )
    add_line(make_order(make_connection(tenant_b, "shopify"), number="16", financial_status="paid"), "EBOOK-1", 1)

    matches = preview(ebooks)

    assert [(m.order.number, m.lines) for m in matches] == [
        ("11", [(everything.lines.get().pk, "Poems (EBOOK-7)", 1)]),
        ("10", [(old_enough.lines.get(sku="EBOOK-9").pk, "Novel (EBOOK-9)", 2)]),
    ]
    assert not Fulfilment.objects.exists() and platform.calls == []


def test_a_rule_matching_everything_is_refused(tenant_a):
    with pytest.raises(RuleError, match="a rule matching every order is refused"):
        check_rule(tenant_a, carrier="UPS", skus=[], sku_prefix="")


def test_a_rule_takes_any_spelling_of_a_carrier_and_checks_its_connection(
    tenant_a, tenant_b, shop, platform, make_connection
):
    assert check_rule(tenant_a, carrier="United Parcel Service", skus=["A"], sku_prefix="") == "ups"
    with pytest.raises(RuleError, match="own connections"):
        check_rule(tenant_a, carrier="UPS", skus=[], sku_prefix="", connection=make_connection(tenant_b))
    platform.accepted = ["usps"]
    with pytest.raises(RuleError, match="Accepted: USPS"):
        check_rule(tenant_a, carrier="UPS", skus=[], sku_prefix="", connection=shop)
