"""Schemathesis against the generated OpenAPI schema (`/api/schema/`), in process through the WSGI app.

Every operation of the schema is called with generated requests (valid and invalid ones) by a
tenant's key with every scope (premium, and rates far above what the run uses), the admin API by a
superadmin's admin key, and each response is checked: never a 5xx, a documented status code, a
documented content type, documented headers, and a body that matches the schema.

Bounded and reproducible: a fixed seed, derandomised generation, a few examples per operation and
no example database. Each call runs in a savepoint that is rolled back, so one case (a revoked key,
a deleted connection) never changes what the next one sees. Nothing leaves the machine: every
outbound HTTP request is refused by `responses`, and no name resolves but localhost (the database
and Redis are on loopback).
"""

from __future__ import annotations

import logging
import socket
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from commerce.models import Customer, InventoryLevel, OrderLine, Product, ProductVariant
from integrations.models import SyncRun, SyncStatus
from tenants.models import AdminApiKey, ApiKey, ApiKeyScope, ApiKeyTier

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db

SEED = 20260601
MAX_EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
MUST_SUCCEED = {
    "GET /api/v1/me",
    "GET /api/v1/orders/",
    "GET /api/v1/orders/{id}/",
    "GET /api/v1/products/",
    "GET /api/v1/customers/",
    "GET /api/v1/inventory/",
    "GET /api/v1/integrations/",
    "GET /api/v1/integrations/status/",
    "GET /api/v1/api-keys/",
    "POST /api/v1/api-keys/",
    "GET /api/v1/platforms/",
    "GET /api/v1/admin/overview/",
    "GET /api/v1/admin/platforms/",
}


@dataclass
class World:
    api_key: ApiKey
    raw_key: str
    admin_raw_key: str
    ids: dict[str, list[int]]


@pytest.fixture
def no_outbound(monkeypatch):
    """No request leaves the machine: `requests` gets a ConnectionError for every URL, and only
    loopback names resolve (for PostgreSQL and Redis)."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: outbound names are blocked in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def keep_connection():
    """As Django's test client does: the request signals must not close the test's database
    connection (PostgreSQL's would be closed inside the test transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(settings, make_tenant, make_connection, make_order, superadmin) -> World:
    """Two tenants with connections, sync runs, customers, products, variants, stock and orders
    with lines; the first one's key with every scope; a superadmin's admin key."""
    settings.API_RATE_DEFAULT = settings.API_RATE_PREMIUM = 1_000_000
    now = timezone.now()
    ids: dict[str, list[int]] = {}
    tenants = [make_tenant("Fuzz Goods"), make_tenant("Other Wares")]
    for tenant in tenants:
        shop = make_connection(tenant, "shopify", credentials={"shop_domain": "fuzz.myshopify.com"})
        woo = make_connection(tenant, "woocommerce", enabled=False)
        spare = make_connection(tenant, "ebay", name="nothing synced")
        connections = [shop, woo, spare]
        runs = [
            SyncRun.objects.create(
                tenant=tenant,
                connection=shop,
                streams=["orders"],
                status=status,
                queued_at=now - timedelta(hours=n + 1),
                started_at=now - timedelta(hours=n + 1),
                finished_at=now - timedelta(hours=n) if status != SyncStatus.RUNNING else None,
                counts={"orders": {"created": 3}},
            )
            for n, status in enumerate([SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.RUNNING])
        ]
        customers = [
            Customer.objects.create(
                tenant=tenant,
                connection=shop,
                external_id=f"c{n}",
                email=f"buyer{n}@example.com" if n else "",
                first_name="Ava",
                country="US",
                tags=["vip"] if n % 2 else [],
                platform_created_at=now - timedelta(days=30),
            )
            for n in range(3)
        ]
        products, variants, stock = [], [], []
        for n in range(3):
            product = Product.objects.create(
                tenant=tenant, connection=shop, external_id=f"p{n}", title=f"Product {n}", status="active"
            )
            products.append(product)
            for k in range(2):
                variant = ProductVariant.objects.create(
                    tenant=tenant,
                    connection=shop,
                    product=product,
                    external_id=f"v{n}-{k}",
                    sku=f"SKU-{n}-{k}",
                    price=Decimal("12.50"),
                    currency="USD",
                    reorder_point=None if k else 3,
                )
                variants.append(variant)
                stock.append(
                    InventoryLevel.objects.create(
                        tenant=tenant,
                        connection=shop,
                        variant=variant,
                        external_id=f"i{n}-{k}",
                        location_id="loc-1",
                        location_name="Warehouse",
                        available=k * 7 - 1,
                    )
                )
        orders = []
        for n in range(6):
            order = make_order(
                shop if n % 3 else woo,
                customer=customers[n % 3],
                email=customers[n % 3].email,
                status=["open", "completed", "cancelled"][n % 3],
                fulfillment_status=["unfulfilled", "fulfilled", "partial"][n % 3],
                platform_updated_at=now - timedelta(hours=n) if n % 2 else None,
            )
            OrderLine.objects.create(
                tenant=tenant,
                connection=order.connection,
                external_id=f"l{order.pk}",
                order=order,
                variant=variants[n % len(variants)],
                sku=variants[n % len(variants)].sku,
                title="Product",
                quantity=2,
                unit_price=Decimal("5.00"),
                total=Decimal("10.00"),
                placed_at=order.placed_at,
                currency=order.currency,
                counted=order.status != "cancelled",
            )
            orders.append(order)
        for name, rows in [
            ("integrations", connections),
            ("sync-runs", runs),
            ("customers", customers),
            ("products", products),
            ("inventory", stock),
            ("orders", orders),
        ]:
            # Every row of the caller's tenant, and one of the other tenant's (which must be a 404).
            ids.setdefault(name, []).extend(row.pk for row in (rows if tenant == tenants[0] else rows[:1]))

    api_key, raw_key = ApiKey.generate(tenants[0], "fuzz key", scopes=list(ApiKeyScope.values), tier=ApiKeyTier.PREMIUM)
    revoked, _ = ApiKey.generate(tenants[0], "revoked key", scopes=["orders:read"])
    revoked.revoke()
    other_key, _ = ApiKey.generate(tenants[1], "other tenant's key")
    ids["api-keys"] = [api_key.pk, revoked.pk, other_key.pk]
    _, admin_raw_key = AdminApiKey.generate(superadmin, "fuzz admin key")
    return World(api_key=api_key, raw_key=raw_key, admin_raw_key=admin_raw_key, ids=ids)


def fuzz_config(world: World) -> schemathesis.Config:
    """Generation settings, the keys, and path ids: while fuzzing, three times in four a row that
    exists (one of them the other tenant's), otherwise whatever is generated."""
    dictionaries = {name: {"values": values} for name, values in world.ids.items()}
    operations = [
        {
            "include-path-regex": rf"^/api/v1/{name}/\{{id\}}/",
            "parameters": {"path.id": {"dictionary": name, "probability": 0.75}},
        }
        for name in world.ids
    ]
    operations.append(
        {"include-path-regex": r"^/api/v1/admin/", "headers": {"Authorization": f"Bearer {world.admin_raw_key}"}}
    )
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # no state kept between runs
            "headers": {"Authorization": f"Bearer {world.raw_key}"},
            "dictionaries": dictionaries,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
            "operations": operations,
        }
    )


def test_every_operation_conforms_to_the_schema(world, no_outbound, keep_connection, caplog):
    caplog.set_level(logging.ERROR, logger="django.request")  # thousands of 4xx warnings otherwise
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler(), config=fuzz_config(world))
    statuses: dict[str, Counter] = defaultdict(Counter)

    def call_and_check(case) -> None:
        with transaction.atomic():
            response = case.call()
            transaction.set_rollback(True)
        if case.method.upper() == case.operation.method.upper():  # not the coverage phase's other methods
            statuses[case.operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    # Schemathesis's pytest integration (`schemathesis.pytest.from_fixture`) does not run on pytest
    # 9.2 (it sets `Node._nodeid`), so the operations' tests, with all their phases, run here in turn.
    failures: dict[str, BaseException] = {}
    for result in get_all_tests(schema=schema, test_func=call_and_check, settings=None, given_kwargs=None):
        if not isinstance(result, Ok):
            failures[result.err().label] = result.err()
            continue
        operation, test = result.ok()
        try:
            test()
        except (Exception, BaseExceptionGroup) as error:  # check failures come as a group
            failures[operation.label] = error
    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())

    # A key that stopped working would pass every check with 401s: these must have answered 2xx.
    succeeded = {label for label, counts in statuses.items() if any(200 <= code < 300 for code in counts)}
    assert succeeded >= MUST_SUCCEED, {label: dict(statuses[label]) for label in MUST_SUCCEED - succeeded}
    assert len(statuses) >= 30


# --- What it found, pinned down ---------------------------------------------------------------------


def test_a_cursor_that_cannot_be_decoded_is_a_400(api_client, api_key):
    response = api_client.get("/api/v1/orders", {"cursor": "not-a-cursor"}, **bearer(api_key[1]))

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "cursor" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("0417-03-13T18:02:20-16:56", 200),  # an offset PostgreSQL refuses: compared in UTC instead
        ("2026-01-31T00:00:00+23:59", 200),
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
        ("9999-12-31T23:00:00-05:00", 400),  # after year 9999 in UTC
    ],
)
def test_updated_since_takes_any_offset_python_does(api_client, api_key, since, status):
    response = api_client.get("/api/v1/orders", {"updated_since": since}, **bearer(api_key[1]))

    assert response.status_code == status
