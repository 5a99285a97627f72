"""Shared pieces of the stock tests: a fake pusher registered with commerce.pushes, and a tenant
with a Shopify and a WooCommerce connection whose synced variants share the SKU MUG-1, built
through commerce.ingest as a sync would, with what ingest leaves for the commit run.

A test module imports the fixtures it uses by their functions' names (`pusher_fixture`, …); the
fixtures go by their short names (`pusher`, `commit`, `shop`, `woo`, `mug`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commerce import pushes
from commerce.ingest import Source, ingest_inventory, ingest_orders, ingest_products
from commerce.models import StockItem, StockListing
from commerce.pushes import PushResult, StockPush
from commerce.records import InventoryRecord, OrderLineRecord, OrderRecord, ProductRecord, VariantRecord
from tests.fakes.hook_receiver import run_queued_tasks

SKU = "MUG-1"
_numbers = itertools.count(1)


@dataclass
class FakePusher:
    """Answers stock pushes as told per connection (a list of PushResults, used in turn; then ok)."""

    pushed: list[StockPush] = field(default_factory=list)
    answers: dict[int, list[PushResult]] = field(default_factory=dict)
    side_effect: object = None

    def set_stock(self, push: StockPush) -> PushResult:
        self.pushed.append(push)
        if self.side_effect is not None:
            effect, self.side_effect = self.side_effect, None
            effect()
        queued = self.answers.get(push.connection_id)
        if queued:
            return queued.pop(0)
        return PushResult(ok=True, remote_id=f"remote-{push.variant_external_id or push.sku}")

    def fulfil(self, push):  # pragma: no cover - stock tests never fulfil
        raise AssertionError("no fulfilments here")

    def carriers(self, tenant_id: int, connection_id: int) -> list[str]:
        return []

    def to(self, connection) -> list[int]:
        """The quantities pushed to this connection, in order."""
        return [push.quantity for push in self.pushed if push.connection_id == connection.pk]


@pytest.fixture(name="pusher")
def pusher_fixture():
    previous = pushes._registered
    fake = FakePusher()
    pushes.register(fake)
    yield fake
    pushes.register(previous)


@pytest.fixture(name="commit")
def commit_fixture(django_capture_on_commit_callbacks):
    """`with commit():` runs what the block left for the commit (and what those callbacks leave)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def source_of(connection) -> Source:
    return Source(tenant_id=connection.tenant_id, connection_id=connection.pk, channel=connection.platform)


def ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def product_record(connection, *, sku: str = SKU, available: int | None = 10, at: datetime | None = None, key="1"):
    """A product with one variant of this SKU and, unless `available` is None, one stock level."""
    at = at or ago(60)
    variant_id = f"{connection.platform}-V{key}"
    inventory = (
        []
        if available is None
        else [
            InventoryRecord(
                external_id=f"{variant_id}@loc",
                variant_external_id=variant_id,
                available=available,
                location_id=f"{connection.platform}-loc",
                location_name="Warehouse",
                updated_at=at,
            )
        ]
    )
    variant = VariantRecord(
        external_id=variant_id,
        sku=sku,
        title="Blue",
        price=Decimal("9.00"),
        currency="USD",
        updated_at=at,
        inventory=inventory,
    )
    return ProductRecord(external_id=f"{connection.platform}-P{key}", title="Mug", updated_at=at, variants=[variant])


def sync_product(commit, connection, **kwargs) -> None:
    with commit():
        ingest_products(source_of(connection), [product_record(connection, **kwargs)])


def sync_level(commit, connection, available: int, at: datetime, key: str = "1") -> None:
    """A stock level of the connection's variant, as its inventory stream or a webhook brings it."""
    variant_id = f"{connection.platform}-V{key}"
    record = InventoryRecord(
        external_id=f"{variant_id}@loc",
        variant_external_id=variant_id,
        available=available,
        location_id=f"{connection.platform}-loc",
        location_name="Warehouse",
        updated_at=at,
    )
    with commit():
        ingest_inventory(source_of(connection), [record])


def order_record(connection, *lines: tuple[str, int], placed_at: datetime | None = None, **kwargs) -> OrderRecord:
    n = next(_numbers)
    return OrderRecord(
        external_id=f"{connection.platform}-O{n}",
        number=str(1000 + n),
        currency="USD",
        placed_at=placed_at or timezone.now(),
        updated_at=placed_at or timezone.now(),
        lines=[
            OrderLineRecord(
                external_id=f"{connection.platform}-O{n}-L{i}",
                title="Mug",
                quantity=quantity,
                unit_price=Decimal("9.00"),
                total=Decimal("9.00") * quantity,
                sku=sku,
            )
            for i, (sku, quantity) in enumerate(lines)
        ],
        **kwargs,
    )


def sell(commit, connection, *lines: tuple[str, int], **kwargs) -> None:
    with commit():
        ingest_orders(source_of(connection), [order_record(connection, *lines, **kwargs)])


def item(sku: str = SKU) -> StockItem:
    return StockItem.objects.get(sku=sku)


def listing_on(connection, sku: str = SKU) -> StockListing:
    return StockListing.objects.get(connection=connection, item__sku=sku)


def run_pushes() -> list[str]:
    return run_queued_tasks()


@pytest.fixture(name="shop")
def shop_fixture(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


@pytest.fixture(name="woo")
def woo_fixture(tenant_a, make_connection):
    return make_connection(tenant_a, "woocommerce", name="Alpha Woo")


@pytest.fixture(name="mug")
def mug_fixture(commit, shop, woo, pusher) -> StockItem:
    """MUG-1 listed on both shops, 10 in stock on each as of an hour ago; nothing pushed yet."""
    sync_product(commit, shop, available=10)
    sync_product(commit, woo, available=10)
    run_pushes()
    pusher.pushed.clear()
    return item()
