"""A SKU falling to its reorder point is announced once per fall: the product.low_stock hook (with
the SKU's stock item), the owners' email when the client asked for it, and the dashboard; a
variant linked to a SKU is announced by the SKU's figure only, never a second time by its own."""

from __future__ import annotations

import pytest
from django.core import mail
from django_q.models import OrmQ

from commerce import stock
from commerce.models import ConflictStrategy, StockAlertSettings, StockChannelSettings, StockItem
from tenants.models import Role
from webhooks.models import HookDelivery, HookEvent, HookSubscription
from webhooks.outbound.signing import new_secret

from .stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    ago,
    commit_fixture,
    item,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    sell,
    shop_fixture,
    sync_level,
    sync_product,
    woo_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_stock_hook(tenant_a):
    return HookSubscription.objects.create(
        tenant=tenant_a,
        target_url="https://hooks.zapier.example/x",
        event=HookEvent.PRODUCT_LOW_STOCK,
        secret=new_secret(),
    )


def announced() -> list[dict]:
    return [d.payload["data"] for d in HookDelivery.objects.filter(event=HookEvent.PRODUCT_LOW_STOCK).order_by("pk")]


def set_to(commit, quantity: int) -> None:
    with commit():
        stock.set_stock(item(), quantity, via="test")


def test_a_fall_to_the_reorder_point_is_announced_once_and_again_after_a_restock(commit, mug, low_stock_hook, tenant_a):
    point = tenant_a.default_reorder_point
    set_to(commit, point + 1)
    assert announced() == []
    set_to(commit, point)
    set_to(commit, 1)
    assert len(announced()) == 1
    set_to(commit, point + 10)
    set_to(commit, 0)

    first, second = announced()
    variant = mug.listings.order_by("pk").first().variant
    assert first == {
        "variant_id": variant.pk,
        "product_id": variant.product_id,
        "sku": SKU,
        "title": "Mug – Blue",  # noqa: RUF001 (a dash)
        "variant_title": "Blue",
        "available": point,
        "reorder_point": point,
        "stock_item_id": mug.pk,
    }
    assert second["available"] == 0


def test_a_sku_of_its_own_reorder_point_is_announced_by_it(commit, mug, low_stock_hook):
    StockItem.objects.filter(pk=mug.pk).update(reorder_point=8)
    set_to(commit, 8)
    assert [data["reorder_point"] for data in announced()] == [8]


def test_a_sale_that_takes_a_sku_to_its_reorder_point_is_announced(commit, mug, shop, low_stock_hook, tenant_a):
    sell(commit, shop, (SKU, 10 - tenant_a.default_reorder_point))
    assert [data["available"] for data in announced()] == [tenant_a.default_reorder_point]


def test_a_platform_figure_the_hub_takes_is_announced_once_not_also_as_the_variants(commit, mug, woo, low_stock_hook):
    StockChannelSettings.objects.create(
        tenant=woo.tenant, connection=woo, conflict_strategy=ConflictStrategy.PLATFORM_PRIORITY
    )
    sync_level(commit, woo, 2, at=ago(1))
    assert [(data["sku"], data["available"], data.get("stock_item_id")) for data in announced()] == [(SKU, 2, mug.pk)]


def test_a_platform_figure_the_hub_overrules_is_not_announced(commit, mug, woo, low_stock_hook):
    StockChannelSettings.objects.create(
        tenant=woo.tenant, connection=woo, conflict_strategy=ConflictStrategy.HUB_PRIORITY
    )
    sync_level(commit, woo, 2, at=ago(1))
    assert announced() == []


def test_a_variant_the_hub_does_not_keep_by_sku_is_still_announced_by_its_own_levels(
    commit, shop, low_stock_hook, pusher
):
    sync_product(commit, shop, sku="", available=1)
    assert [(data["sku"], data["available"], "stock_item_id" in data) for data in announced()] == [("", 1, False)]


def test_a_new_sku_already_low_is_announced_when_the_hub_first_sees_it(commit, shop, low_stock_hook, pusher):
    sync_product(commit, shop, available=2)
    assert [(data["sku"], data["available"]) for data in announced()] == [(SKU, 2)]


# --- Email ----------------------------------------------------------------------------------------


@pytest.fixture
def owners(make_member, tenant_a):
    make_member(tenant_a, Role.OWNER, username="owner@alpha.example")
    make_member(tenant_a, Role.VIEWER, username="viewer@alpha.example")


def email_tasks() -> list[tuple]:
    return [q.task["args"] for q in OrmQ.objects.all() if q.task["func"] == "commerce.stock_push.email_low_stock"]


def test_owners_are_emailed_once_per_fall_when_the_client_asks_for_it(commit, mug, owners, tenant_a):
    StockAlertSettings.objects.create(tenant=tenant_a, email_owners=True)
    set_to(commit, 3)
    set_to(commit, 1)
    assert email_tasks() == [(tenant_a.pk, [mug.pk])]
    run_pushes()

    [message] = mail.outbox
    assert message.to == ["owner@alpha.example"]
    assert message.subject == f"Low stock: {SKU}"
    assert f"{SKU} Mug – Blue: 1 left (reorder at {tenant_a.default_reorder_point})" in message.body  # noqa: RUF001

    set_to(commit, 40)
    set_to(commit, 0)
    run_pushes()
    assert len(mail.outbox) == 2


def test_no_email_without_the_setting(commit, mug, owners):
    set_to(commit, 1)
    run_pushes()
    assert email_tasks() == [] and mail.outbox == []


def test_a_sku_restocked_before_the_email_goes_is_left_out(commit, mug, owners, tenant_a):
    StockAlertSettings.objects.create(tenant=tenant_a, email_owners=True)
    set_to(commit, 1)
    StockItem.objects.filter(pk=mug.pk).update(on_hand=50, low_since=None)
    run_pushes()
    assert mail.outbox == []
