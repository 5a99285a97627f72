"""The read-only commerce lists of the public API: products, customers and inventory (and orders'
shared filters)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import Customer, InventoryLevel, Product, ProductVariant
from integrations.models import Connection
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.fixture
def key(api_key) -> str:
    """Tenant A's key with every read scope."""
    return api_key[1]


@pytest.fixture
def shop_a(make_connection, tenant_a) -> Connection:
    return make_connection(tenant_a, "shopify", "Alpha shop")


@pytest.fixture
def woo_a(make_connection, tenant_a) -> Connection:
    return make_connection(tenant_a, "woocommerce", "Alpha woo")


@pytest.fixture
def shop_b(make_connection, tenant_b) -> Connection:
    return make_connection(tenant_b, "shopify", "Beta shop")


_ids = iter(range(1, 1_000_000))


def make_product(connection: Connection, title: str = "Tent", variants: int = 1, **kwargs) -> Product:
    product = Product.objects.create(
        tenant=connection.tenant, connection=connection, external_id=f"p-{next(_ids)}", title=title, **kwargs
    )
    for n in range(variants):
        ProductVariant.objects.create(
            tenant=connection.tenant,
            connection=connection,
            product=product,
            external_id=f"v-{next(_ids)}",
            sku=f"{title.upper()}-{n + 1}",
            title=f"Size {n + 1}",
            price=Decimal("99.50"),
            currency="USD",
        )
    return product


def make_customer(connection: Connection, email: str = "ann@example.com", **kwargs) -> Customer:
    return Customer.objects.create(
        tenant=connection.tenant, connection=connection, external_id=f"c-{next(_ids)}", email=email, **kwargs
    )


def make_level(connection: Connection, sku: str = "TENT-1", available: int = 5, **kwargs) -> InventoryLevel:
    product = make_product(connection, title=sku, variants=0)
    variant = ProductVariant.objects.create(
        tenant=connection.tenant,
        connection=connection,
        product=product,
        external_id=f"v-{next(_ids)}",
        sku=sku,
        currency="USD",
    )
    kwargs.setdefault("location_id", "loc-1")
    kwargs.setdefault("location_name", "Warehouse")
    return InventoryLevel.objects.create(
        tenant=connection.tenant,
        connection=connection,
        variant=variant,
        external_id=f"i-{next(_ids)}",
        available=available,
        **kwargs,
    )


# --- Products -------------------------------------------------------------------------------------


def test_the_product_list_shows_the_tenants_products_with_their_variants(api_client, key, shop_a, shop_b):
    make_product(shop_a, "Tent", variants=2, vendor="Acme", status="active")
    make_product(shop_b, "Kayak")
    response = api_client.get("/api/v1/products", **bearer(key))
    assert response.status_code == 200
    [product] = response.json()["results"]
    assert product["title"] == "Tent"
    assert product["vendor"] == "Acme"
    assert product["platform"] == "shopify"
    assert product["connection"] == shop_a.pk
    assert [v["sku"] for v in product["variants"]] == ["TENT-1", "TENT-2"]
    assert product["variants"][0]["price"] == "99.5000"
    assert product["variants"][0]["currency"] == "USD"
    assert "raw" not in product


def test_the_product_list_filters_on_platform(api_client, key, shop_a, woo_a):
    make_product(shop_a, "Tent")
    make_product(woo_a, "Stove")
    response = api_client.get("/api/v1/products", {"platform": "woocommerce"}, **bearer(key))
    assert [p["title"] for p in response.json()["results"]] == ["Stove"]


def test_the_product_list_filters_on_status(api_client, key, shop_a):
    make_product(shop_a, "Tent", status="active")
    make_product(shop_a, "Old tent", status="archived")
    response = api_client.get("/api/v1/products", {"status": "archived"}, **bearer(key))
    assert [p["title"] for p in response.json()["results"]] == ["Old tent"]


def test_the_product_list_filters_on_updated_since(api_client, key, shop_a):
    now = timezone.now()
    make_product(shop_a, "Stale", updated_at=now - timedelta(days=3))
    make_product(shop_a, "Fresh", updated_at=now - timedelta(hours=1))
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api_client.get("/api/v1/products", {"updated_since": since}, **bearer(key))
    assert [p["title"] for p in response.json()["results"]] == ["Fresh"]


def test_a_naive_updated_since_is_taken_as_utc(api_client, key, shop_a):
    now = timezone.now()
    make_product(shop_a, "Fresh", updated_at=now - timedelta(hours=1))
    since = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    response = api_client.get("/api/v1/products", {"updated_since": since}, **bearer(key))
    assert [p["title"] for p in response.json()["results"]] == ["Fresh"]


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/customers", "/api/v1/inventory", "/api/v1/orders"])
def test_an_updated_since_that_is_not_a_date_is_400(api_client, key, path):
    response = api_client.get(path, {"updated_since": "last tuesday"}, **bearer(key))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "ISO 8601" in response.json()["error"]["details"]["updated_since"]


def test_the_product_list_is_most_recently_updated_first(api_client, key, shop_a):
    now = timezone.now()
    make_product(shop_a, "Older", updated_at=now - timedelta(hours=2))
    make_product(shop_a, "Newer", updated_at=now - timedelta(hours=1))
    response = api_client.get("/api/v1/products", **bearer(key))
    assert [p["title"] for p in response.json()["results"]] == ["Newer", "Older"]


def test_products_updated_in_one_batch_page_without_gaps_or_repeats(api_client, key, shop_a):
    """Bulk ingest gives a whole page the same `updated_at`: the cursor must still walk every row."""
    moment = timezone.now()
    Product.objects.bulk_create(
        Product(tenant=shop_a.tenant, connection=shop_a, external_id=f"p{n}", title=f"P{n}", updated_at=moment)
        for n in range(60)
    )
    first = api_client.get("/api/v1/products", **bearer(key)).json()
    second = api_client.get(first["next"], **bearer(key)).json()
    ids = [p["id"] for p in first["results"] + second["results"]]
    assert len(first["results"]) == 50
    assert second["next"] is None
    assert len(ids) == len(set(ids)) == 60


def test_one_product_is_served_with_its_variants(api_client, key, shop_a):
    product = make_product(shop_a, "Tent", variants=3)
    response = api_client.get(f"/api/v1/products/{product.pk}", **bearer(key))
    assert response.status_code == 200
    assert len(response.json()["variants"]) == 3


def test_another_tenants_product_is_404(api_client, key, shop_b):
    product = make_product(shop_b, "Kayak")
    response = api_client.get(f"/api/v1/products/{product.pk}", **bearer(key))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    assert "Kayak" not in response.content.decode()


def test_a_key_without_products_read_gets_403_naming_the_scope(api_client, tenant_a, shop_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="orders only", scopes=["orders:read"])
    response = api_client.get("/api/v1/products", **bearer(raw))
    assert response.status_code == 403
    assert "products:read" in response.json()["error"]["message"]


# --- Customers ------------------------------------------------------------------------------------


def test_the_customer_list_shows_only_the_tenants_customers(api_client, key, shop_a, shop_b):
    make_customer(shop_a, "ann@example.com", first_name="Ann", country="GB", tags=["vip"], accepts_marketing=True)
    make_customer(shop_b, "bob@example.com")
    response = api_client.get("/api/v1/customers", **bearer(key))
    assert response.status_code == 200
    [customer] = response.json()["results"]
    assert customer["email"] == "ann@example.com"
    assert customer["first_name"] == "Ann"
    assert customer["tags"] == ["vip"]
    assert customer["accepts_marketing"] is True
    assert customer["platform"] == "shopify"
    assert "bob@example.com" not in response.content.decode()


def test_the_customer_list_filters_on_platform_and_updated_since(api_client, key, shop_a, woo_a):
    now = timezone.now()
    make_customer(shop_a, "shop-old@example.com", updated_at=now - timedelta(days=5))
    make_customer(shop_a, "shop-new@example.com", updated_at=now - timedelta(hours=1))
    make_customer(woo_a, "woo-new@example.com", updated_at=now - timedelta(hours=1))
    since = (now - timedelta(days=1)).isoformat()
    response = api_client.get("/api/v1/customers", {"platform": "shopify", "updated_since": since}, **bearer(key))
    assert [c["email"] for c in response.json()["results"]] == ["shop-new@example.com"]


def test_another_tenants_customer_is_404(api_client, key, shop_b):
    customer = make_customer(shop_b, "bob@example.com")
    response = api_client.get(f"/api/v1/customers/{customer.pk}", **bearer(key))
    assert response.status_code == 404
    assert "bob@example.com" not in response.content.decode()


def test_a_key_without_customers_read_gets_403_naming_the_scope(api_client, tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="products only", scopes=["products:read"])
    response = api_client.get("/api/v1/customers", **bearer(raw))
    assert response.status_code == 403
    assert "customers:read" in response.json()["error"]["message"]


# --- Inventory ------------------------------------------------------------------------------------


def test_an_inventory_row_shows_sku_variant_location_and_available(api_client, key, shop_a, shop_b):
    level = make_level(shop_a, "TENT-1", 7, location_id="gid://Location/1", location_name="Leeds")
    make_level(shop_b, "KAYAK-1", 3)
    response = api_client.get("/api/v1/inventory", **bearer(key))
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["sku"] == "TENT-1"
    assert row["variant_id"] == level.variant_id
    assert row["variant_external_id"] == level.variant.external_id
    assert row["product_id"] == level.variant.product_id
    assert row["location_id"] == "gid://Location/1"
    assert row["location_name"] == "Leeds"
    assert row["available"] == 7
    assert row["platform"] == "shopify"


def test_the_inventory_list_filters_on_platform_and_updated_since(api_client, key, shop_a, woo_a):
    now = timezone.now()
    make_level(shop_a, "SHOP-OLD", updated_at=now - timedelta(days=5))
    make_level(shop_a, "SHOP-NEW", updated_at=now - timedelta(hours=1))
    make_level(woo_a, "WOO-NEW", updated_at=now - timedelta(hours=1))
    assert [
        r["sku"]
        for r in api_client.get("/api/v1/inventory", {"platform": "woocommerce"}, **bearer(key)).json()["results"]
    ] == ["WOO-NEW"]
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api_client.get("/api/v1/inventory", {"platform": "shopify", "updated_since": since}, **bearer(key))
    assert [r["sku"] for r in response.json()["results"]] == ["SHOP-NEW"]


def test_another_tenants_inventory_row_is_404(api_client, key, shop_b):
    level = make_level(shop_b, "KAYAK-1")
    response = api_client.get(f"/api/v1/inventory/{level.pk}", **bearer(key))
    assert response.status_code == 404
    assert "KAYAK" not in response.content.decode()


def test_inventory_needs_products_read(api_client, tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="customers only", scopes=["customers:read"])
    response = api_client.get("/api/v1/inventory", **bearer(raw))
    assert response.status_code == 403
    assert "products:read" in response.json()["error"]["message"]


# --- Orders keep their filters after the shared refactor --------------------------------------------


def test_the_order_list_still_filters_on_platform_and_updated_since(api_client, key, shop_a, woo_a, make_order):
    now = timezone.now()
    make_order(shop_a, number="S-OLD", updated_at=now - timedelta(days=5))
    make_order(shop_a, number="S-NEW", updated_at=now - timedelta(hours=1))
    make_order(woo_a, number="W-NEW", updated_at=now - timedelta(hours=1))
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api_client.get("/api/v1/orders", {"platform": "shopify", "updated_since": since}, **bearer(key))
    assert [o["number"] for o in response.json()["results"]] == ["S-NEW"]


# --- Query counts ---------------------------------------------------------------------------------


def add_rows(connection: Connection, n: int) -> None:
    for _ in range(n):
        make_product(connection, f"T{next(_ids)}", variants=2)
        make_customer(connection, f"c{next(_ids)}@example.com")
        make_level(connection, f"SKU{next(_ids)}")


def count_queries(client, path: str, raw_key: str) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(path, **bearer(raw_key))
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/customers", "/api/v1/inventory", "/api/v1/orders"])
def test_a_list_takes_the_same_queries_for_one_or_many_rows(api_client, key, shop_a, make_order, path):
    add_rows(shop_a, 1)
    make_order(shop_a)
    api_client.get(path, **bearer(key))  # the key's last_used_at is written once
    few = count_queries(api_client, path, key)
    add_rows(shop_a, 6)
    for _ in range(6):
        make_order(shop_a)
    assert count_queries(api_client, path, key) == few
