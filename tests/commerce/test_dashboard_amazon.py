"""The overview's Amazon figures: SKUs, units, low and out of stock, unshipped orders and the last
sync of the tenant's Amazon connections, nothing of its other connections or of another tenant,
computed in two queries and cached; the section is there only for a tenant with Amazon.

Alpha (default reorder point 5) has two Amazon accounts and a Shopify store:

    Amazon US  A-OUT 0, A-LOW 3, A-OK 20 + 30 at two locations, A-OWN 4 (own reorder point 3),
               A-UNTRACKED (no stock levels); orders unfulfilled, partial, fulfilled, cancelled
    Amazon CA  C-LOW 5; an unfulfilled order
    Shopify    S-OUT 0; an unfulfilled order

so Amazon: 6 SKUs, 62 units, low stock 2 (A-LOW, C-LOW), out of stock 1, unshipped 3. Beta, another
tenant, has an Amazon account with an empty SKU and unshipped orders of its own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from commerce import metrics
from commerce.metrics import source_figures
from commerce.models import FulfillmentStatus, InventoryLevel, OrderStatus, Product, ProductVariant
from integrations.models import SyncRun, SyncStatus

pytestmark = pytest.mark.django_db

EXPECTED = {"skus": 6, "quantity": 62, "low_stock": 2, "out_of_stock": 1, "unshipped": 3}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def add_variant(connection, sku: str, *levels: int, reorder_point: int | None = None) -> ProductVariant:
    key = f"{connection.pk}-{sku}"
    product = Product.objects.create(tenant=connection.tenant, connection=connection, external_id=key, title=sku)
    variant = ProductVariant.objects.create(
        tenant=connection.tenant,
        connection=connection,
        product=product,
        external_id=key,
        sku=sku,
        currency="USD",
        reorder_point=reorder_point,
    )
    for n, available in enumerate(levels):
        InventoryLevel.objects.create(
            tenant=connection.tenant,
            connection=connection,
            variant=variant,
            external_id=f"{key}@{n}",
            location_id=str(n),
            available=available,
        )
    return variant


@pytest.fixture
def shops(make_connection, make_order, tenant_a, tenant_b):
    us = make_connection(tenant_a, "amazon", "Amazon US")
    ca = make_connection(tenant_a, "amazon", "Amazon CA")
    shopify = make_connection(tenant_a, "shopify", "Alpha Shopify")
    theirs = make_connection(tenant_b, "amazon", "Beta Amazon")
    add_variant(us, "A-OUT", 0)
    add_variant(us, "A-LOW", 3)
    add_variant(us, "A-OK", 20, 30)
    add_variant(us, "A-OWN", 4, reorder_point=3)
    add_variant(us, "A-UNTRACKED")
    add_variant(ca, "C-LOW", 5)
    add_variant(shopify, "S-OUT", 0)
    add_variant(theirs, "B-OUT", 0)
    make_order(us, fulfillment_status=FulfillmentStatus.UNFULFILLED)
    make_order(us, fulfillment_status=FulfillmentStatus.PARTIAL)
    make_order(us, fulfillment_status=FulfillmentStatus.FULFILLED, status=OrderStatus.COMPLETED)
    make_order(us, fulfillment_status=FulfillmentStatus.UNFULFILLED, status=OrderStatus.CANCELLED)
    make_order(ca, fulfillment_status=FulfillmentStatus.UNFULFILLED)
    make_order(shopify, fulfillment_status=FulfillmentStatus.UNFULFILLED)
    for _ in range(2):
        make_order(theirs, fulfillment_status=FulfillmentStatus.UNFULFILLED)
    return {"us": us, "ca": ca, "shopify": shopify, "theirs": theirs}


@pytest.fixture
def owner(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    return client


def amazon_section(client) -> str:
    response = client.get("/dashboard/")
    assert response.status_code == 200
    content = response.content.decode()
    start = content.index('id="amazon"')
    return content[start : content.index("</section>", start)]


def kpi(section: str, name: str) -> str:
    match = re.search(rf'data-kpi="{re.escape(name)}".*?<span class="value">(.*?)</span>', section, re.S)
    assert match, f"no KPI card {name}"
    return match.group(1).strip()


def test_the_figures_count_only_the_amazon_connections_rows(shops, tenant_a):
    assert source_figures(tenant_a, [shops["us"].pk, shops["ca"].pk]) == EXPECTED


def test_another_tenants_connection_counts_nothing_for_this_tenant(shops, tenant_a, tenant_b):
    # Beta's Amazon account, asked for with Alpha's tenant, holds none of Alpha's rows.
    assert source_figures(tenant_a, [shops["theirs"].pk]) == dict.fromkeys(EXPECTED, 0)
    assert source_figures(tenant_b, [shops["theirs"].pk]) == {
        "skus": 1,
        "quantity": 0,
        "low_stock": 0,
        "out_of_stock": 1,
        "unshipped": 2,
    }


def test_the_figures_take_two_queries_and_are_cached_until_the_data_changes(shops, tenant_a):
    ids = [shops["us"].pk, shops["ca"].pk]
    with CaptureQueriesContext(db_connection) as queries:
        source_figures(tenant_a, ids)
    assert len(queries) == 2
    with CaptureQueriesContext(db_connection) as queries:
        assert source_figures(tenant_a, ids) == EXPECTED
    assert len(queries) == 0
    add_variant(shops["us"], "A-NEW", 0)
    metrics.invalidate(tenant_a.pk)
    assert source_figures(tenant_a, ids)["out_of_stock"] == 2


def test_the_overview_shows_the_amazon_figures_and_the_last_sync(owner, shops, tenant_a):
    tenant_a.time_zone = "Europe/Berlin"
    tenant_a.save()
    for connection, finished, status in (
        (shops["us"], datetime(2026, 3, 1, 9, 0, tzinfo=UTC), SyncStatus.SUCCEEDED),
        (shops["ca"], datetime(2026, 3, 2, 9, 30, tzinfo=UTC), SyncStatus.FAILED),
        (shops["shopify"], datetime(2026, 3, 3, 9, 0, tzinfo=UTC), SyncStatus.SUCCEEDED),
    ):
        SyncRun.objects.create(
            tenant=tenant_a, connection=connection, status=status, started_at=finished, finished_at=finished
        )
    section = amazon_section(owner)
    assert "2 accounts" in section
    assert {
        name: kpi(section, f"amazon-{name.replace('_', '-')}")
        for name in ("skus", "quantity", "low_stock", "out_of_stock", "unshipped")
    } == {key: str(value) for key, value in EXPECTED.items()}
    # The latest sync of the Amazon accounts (not Shopify's, later still), in the tenant's time.
    assert kpi(section, "amazon-last-sync") == "2 Mar, 10:30"
    assert "Failed" in section
    assert "?channel=amazon&amp;fulfillment=unshipped" in section


def test_an_amazon_account_that_never_synced_says_so(owner, make_connection, tenant_a):
    make_connection(tenant_a, "amazon", "Amazon US")
    section = amazon_section(owner)
    assert kpi(section, "amazon-last-sync") == "Never"
    assert kpi(section, "amazon-skus") == "0"


def test_without_an_amazon_connection_there_is_no_amazon_section(owner, make_connection, tenant_a, tenant_b):
    make_connection(tenant_a, "shopify", "Alpha Shopify")
    make_connection(tenant_b, "amazon", "Beta Amazon")
    response = owner.get("/dashboard/")
    assert response.status_code == 200
    assert 'id="amazon"' not in response.content.decode()
    assert response.context["amazon"] is None


def test_the_other_tenant_sees_only_its_own_amazon_figures(client, make_member, shops, tenant_b):
    client.force_login(make_member(tenant_b))
    section = amazon_section(client)
    assert kpi(section, "amazon-skus") == "1"
    assert kpi(section, "amazon-unshipped") == "2"
    assert "accounts" not in section
