"""`GET /api/v1/integrations/setup-status`: every platform of the catalogue with the caller's
connections of it, their status, last sync and record counts, and the credential fields a
misconfigured one lacks or gets wrong, by name, never with a secret's value; another tenant's
connections and rows never in it; a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import Customer, InventoryLevel, Order, Product, ProductVariant
from integrations.models import ConnectionStatus, SyncRun, SyncStatus
from integrations.platforms import CATALOGUE
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/setup-status"
TOKEN = "shpat_SECRET_token_0123456789abcdef"
LWA_SECRET = "amzn1.oa2-cs.v1.SECRET-lwa-client-secret"
REFRESH = "Atzr|SECRET-refresh-token"
AMAZON = {
    "lwa_client_id": "amzn1.application-oa2-client.0123",
    "lwa_client_secret": LWA_SECRET,
    "refresh_token": REFRESH,
    "seller_id": "A3TH9S8BH6GOGM",
    "region": "NA",
    "marketplace_ids": "ATVPDKIKX0DER,A2EUQ1WTGCTBG2",
}


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


@pytest.fixture(autouse=True)
def _public_urls_only(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def read_key(tenant_a) -> str:
    return ApiKey.generate(tenant=tenant_a, name="reader", scopes=["integrations:read"])[1]


def get(api_client, raw_key: str) -> dict[str, dict]:
    response = api_client.get(URL, **bearer(raw_key))
    assert response.status_code == 200, response.content
    return {row["platform"]: row for row in response.json()["results"]}


def connection_of(platforms: dict[str, dict], name: str) -> dict:
    return next(c for row in platforms.values() for c in row["connections"] if c["name"] == name)


def add_stock(connection, n: int) -> None:
    for k in range(n):
        product = Product.objects.create(
            tenant=connection.tenant, connection=connection, external_id=f"p-{connection.pk}-{k}", title="Tent"
        )
        variant = ProductVariant.objects.create(
            tenant=connection.tenant,
            connection=connection,
            product=product,
            external_id=f"v-{connection.pk}-{k}",
            sku=f"T-{k}",
            currency="USD",
        )
        for location in ("a", "b"):
            InventoryLevel.objects.create(
                tenant=connection.tenant,
                connection=connection,
                variant=variant,
                external_id=f"i-{connection.pk}-{k}-{location}",
                location_id=location,
                available=3,
            )


def test_every_platform_of_the_catalogue_is_listed_in_its_order_connected_or_not(
    api_client, read_key, make_connection, tenant_a
):
    make_connection(
        tenant_a,
        "shopify",
        "Alpha shop",
        status=ConnectionStatus.CONNECTED,
        credentials={"shop_domain": "alpha.myshopify.com", "access_token": TOKEN},
    )
    response = api_client.get(URL, **bearer(read_key))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["platform"] for row in results] == list(CATALOGUE)
    platforms = {row["platform"]: row for row in results}
    assert {k: platforms["shopify"][k] for k in ("label", "kind", "connected")} == {
        "label": "Shopify",
        "kind": "commerce",
        "connected": True,
    }
    assert platforms["stripe"] == {
        "platform": "stripe",
        "label": "Stripe",
        "kind": "payments",
        "connected": False,
        "connections": [],
    }
    (shop,) = platforms["shopify"]["connections"]
    assert set(shop) == {"id", "uuid", "name", "status", "enabled", "last_sync", "records", "configuration"}
    assert shop["configuration"] == {"complete": True, "missing": [], "invalid": {}}
    assert shop["last_sync"] is None
    assert shop["records"] == {"orders": 0, "products": 0, "customers": 0, "inventory": 0}


@pytest.mark.parametrize(
    ("status", "enabled", "connected"),
    [
        (ConnectionStatus.CONNECTED, True, True),
        (ConnectionStatus.CONNECTED, False, False),
        (ConnectionStatus.FAILING, True, False),
        (ConnectionStatus.UNTESTED, True, False),
    ],
)
def test_a_platform_is_connected_by_an_enabled_connection_that_is_connected(
    api_client, read_key, make_connection, tenant_a, status, enabled, connected
):
    make_connection(tenant_a, "woocommerce", "Woo", status=status, enabled=enabled)
    platforms = get(api_client, read_key)
    assert platforms["woocommerce"]["connected"] is connected
    assert platforms["woocommerce"]["connections"][0]["status"] == status


def test_each_connection_has_its_own_record_counts_and_last_finished_sync(
    api_client, read_key, make_connection, make_order, tenant_a
):
    shop = make_connection(tenant_a, "shopify", "Alpha shop", credentials={"shop_domain": "a.myshopify.com"})
    woo = make_connection(tenant_a, "woocommerce", "Alpha woo")
    for _ in range(3):
        make_order(shop)
    make_order(woo)
    add_stock(shop, 2)
    for n in range(4):
        Customer.objects.create(tenant=tenant_a, connection=shop, external_id=f"c-{n}")
    now = timezone.now()
    SyncRun.objects.create(
        tenant=tenant_a, connection=shop, status=SyncStatus.SUCCEEDED, finished_at=now - timedelta(hours=2)
    )
    SyncRun.objects.create(
        tenant=tenant_a, connection=shop, status=SyncStatus.FAILED, finished_at=now - timedelta(hours=1)
    )
    SyncRun.objects.create(tenant=tenant_a, connection=shop, status=SyncStatus.RUNNING, started_at=now)
    platforms = get(api_client, read_key)
    alpha = connection_of(platforms, "Alpha shop")
    assert alpha["records"] == {"orders": 3, "products": 2, "customers": 4, "inventory": 4}
    assert alpha["last_sync"]["status"] == SyncStatus.FAILED
    assert alpha["last_sync"]["finished_at"].startswith((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert (alpha["id"], alpha["uuid"]) == (shop.pk, str(shop.uuid))
    assert connection_of(platforms, "Alpha woo")["records"] == {
        "orders": 1,
        "products": 0,
        "customers": 0,
        "inventory": 0,
    }


def test_missing_required_credentials_are_named(api_client, read_key, make_connection, tenant_a):
    credentials = {**AMAZON, "lwa_client_secret": "", "marketplace_ids": "  "}
    del credentials["seller_id"]  # optional: Connect sets it
    del credentials["refresh_token"]  # optional on the form (Connect sets it), needed to sync
    make_connection(tenant_a, "amazon", "Half done", credentials=credentials)
    make_connection(tenant_a, "stripe", "Payments", credentials={})
    platforms = get(api_client, read_key)
    assert connection_of(platforms, "Half done")["configuration"] == {
        "complete": False,
        "missing": ["lwa_client_secret", "refresh_token", "marketplace_ids"],
        "invalid": {},
    }
    assert connection_of(platforms, "Payments")["configuration"]["missing"] == ["secret_key"]


def test_a_shopify_connection_needs_an_access_token_or_a_client_id_and_secret(
    api_client, read_key, make_connection, tenant_a
):
    domain = {"shop_domain": "alpha.myshopify.com"}
    make_connection(tenant_a, "shopify", "No token", credentials=domain)
    make_connection(tenant_a, "shopify", "Only an id", credentials={**domain, "client_id": "cid"})
    make_connection(
        tenant_a, "shopify", "Client pair", credentials={**domain, "client_id": "cid", "client_secret": "cs"}
    )
    platforms = get(api_client, read_key)
    assert connection_of(platforms, "No token")["configuration"]["missing"] == ["access_token"]
    assert connection_of(platforms, "Only an id")["configuration"]["missing"] == ["access_token"]
    assert connection_of(platforms, "Client pair")["configuration"]["complete"] is True


def test_invalid_values_are_named_with_the_reason(api_client, read_key, make_connection, tenant_a):
    make_connection(
        tenant_a, "shopify", "Custom domain", credentials={"shop_domain": "shop.example.com", "access_token": TOKEN}
    )
    make_connection(tenant_a, "amazon", "Wrong region", credentials={**AMAZON, "region": "US"})
    make_connection(
        tenant_a,
        "amazon",
        "Mixed marketplaces",
        credentials={
            **AMAZON,
            "marketplace_ids": "ATVPDKIKX0DER,A1PA6795UKMFR9",
            "lwa_client_secret_expires_at": "soon",
        },
    )
    make_connection(tenant_a, "amazon", "Unknown marketplace", credentials={**AMAZON, "marketplace_ids": "NOPE123"})
    make_connection(
        tenant_a,
        "woocommerce",
        "Private site",
        credentials={
            "site_url": "https://127.0.0.1",
            "consumer_key": "ck_x",
            "consumer_secret": "cs_x",
            "api_version": "v1",
        },
    )
    platforms = get(api_client, read_key)

    def invalid(name: str) -> dict[str, str]:
        configuration = connection_of(platforms, name)["configuration"]
        assert configuration["complete"] is False and configuration["missing"] == []
        return configuration["invalid"]

    assert set(invalid("Custom domain")) == {"shop_domain"}
    assert "myshopify.com" in invalid("Custom domain")["shop_domain"]
    assert set(invalid("Wrong region")) == {"region"}
    assert "NA, EU or FE" in invalid("Wrong region")["region"]
    mixed = invalid("Mixed marketplaces")
    assert set(mixed) == {"marketplace_ids", "lwa_client_secret_expires_at"}
    assert "A1PA6795UKMFR9 (DE) is a marketplace of the EU region, not NA" in mixed["marketplace_ids"]
    assert "NOPE123" in invalid("Unknown marketplace")["marketplace_ids"]
    assert set(invalid("Private site")) == {"site_url", "api_version"}


def test_secret_values_are_never_in_the_answer(api_client, read_key, make_connection, tenant_a):
    make_connection(
        tenant_a, "amazon", "Amazon", credentials={**AMAZON, "region": "XX", "aws_secret_access_key": "AWS-SECRET-KEY"}
    )
    make_connection(
        tenant_a,
        "shopify",
        "Shop",
        credentials={"shop_domain": "nope", "access_token": TOKEN, "webhook_secret": "whsec-SECRET"},
    )
    body = api_client.get(URL, **bearer(read_key)).content.decode()
    for secret in (LWA_SECRET, REFRESH, "AWS-SECRET-KEY", TOKEN, "whsec-SECRET"):
        assert secret not in body
    assert "credentials" not in body


def test_another_tenants_connections_and_rows_never_appear(
    api_client, read_key, make_connection, make_order, tenant_a, tenant_b
):
    ours = make_connection(tenant_a, "shopify", "Alpha shop", credentials={"shop_domain": "a.myshopify.com"})
    theirs = make_connection(
        tenant_b, "amazon", "Beta Amazon", status=ConnectionStatus.CONNECTED, credentials={**AMAZON, "region": "XX"}
    )
    make_order(theirs)
    SyncRun.objects.create(tenant=tenant_b, connection=theirs, status=SyncStatus.SUCCEEDED, finished_at=timezone.now())
    make_order(ours)
    # A row of the other tenant pointing at our connection (it should never exist) is not ours to count.
    Order.objects.create(
        tenant=tenant_b, connection=ours, external_id="stray", number="1", currency="USD", placed_at=timezone.now()
    )
    body = api_client.get(URL, **bearer(read_key))
    assert "Beta Amazon" not in body.content.decode()
    platforms = {row["platform"]: row for row in body.json()["results"]}
    assert platforms["amazon"] == {**platforms["amazon"], "connected": False, "connections": []}
    assert connection_of(platforms, "Alpha shop")["records"]["orders"] == 1
    # And the other tenant sees only its own.
    _, their_key = ApiKey.generate(tenant=tenant_b, name="theirs", scopes=["integrations:read"])
    their_platforms = get(api_client, their_key)
    assert [c["name"] for row in their_platforms.values() for c in row["connections"]] == ["Beta Amazon"]
    assert their_platforms["amazon"]["connected"] is True


def test_it_needs_integrations_read(api_client, tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="orders only", scopes=["orders:read"])
    response = api_client.get(URL, **bearer(raw))
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("permission_denied", {"required_scope": "integrations:read"})


def test_a_signed_in_member_sees_their_own_tenant(api_client, make_member, make_connection, tenant_a, tenant_b):
    make_connection(tenant_a, "shopify", "Alpha shop")
    make_connection(tenant_b, "shopify", "Beta shop")
    api_client.force_login(make_member(tenant_a))
    response = api_client.get(URL)
    assert response.status_code == 200
    names = [c["name"] for row in response.json()["results"] for c in row["connections"]]
    assert names == ["Alpha shop"]


def count_queries(api_client, raw_key: str) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = api_client.get(URL, **bearer(raw_key))
    assert response.status_code == 200
    return len(queries)


def test_the_queries_do_not_grow_with_connections_or_their_rows(
    api_client, read_key, make_connection, make_order, tenant_a
):
    first = make_connection(tenant_a, "shopify", "first", credentials={"shop_domain": "a.myshopify.com"})
    make_order(first)
    api_client.get(URL, **bearer(read_key))  # the key's last_used_at is written once
    few = count_queries(api_client, read_key)
    for n, platform in enumerate(["woocommerce", "amazon", "amazon", "stripe", "manual", "shopify"]):
        connection = make_connection(
            tenant_a, platform, f"more {n}", credentials=AMAZON if platform == "amazon" else {}
        )
        make_order(connection)
        add_stock(connection, 2)
        SyncRun.objects.create(
            tenant=tenant_a, connection=connection, status=SyncStatus.SUCCEEDED, finished_at=timezone.now()
        )
    assert count_queries(api_client, read_key) == few


def test_the_schema_documents_the_answer_and_its_errors():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/integrations/setup-status/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SetupStatus"
    }
    assert {"401", "403", "429"} <= set(operation["responses"])
    connection = schema["components"]["schemas"]["SetupConnection"]["properties"]
    assert {"last_sync", "records", "configuration"} <= set(connection)
