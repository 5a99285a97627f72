"""Another tenant's object is a 404 on every endpoint that takes an id, for every method, even for a
key holding every scope: never a 403 that would say it exists. And nothing of it changes."""

from __future__ import annotations

import pytest

from commerce.models import Customer, InventoryLevel, Product, ProductVariant
from integrations.models import Connection, SyncRun
from tenants.models import ApiKey, ApiKeyScope

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(make_connection, make_order, tenant_b) -> dict[str, int]:
    connection = make_connection(tenant_b, name="Beta shop")
    product = Product.objects.create(tenant=tenant_b, connection=connection, external_id="p-b", title="Theirs")
    variant = ProductVariant.objects.create(
        tenant=tenant_b, connection=connection, product=product, external_id="v-b", sku="B-1", currency="USD"
    )
    level = InventoryLevel.objects.create(
        tenant=tenant_b, connection=connection, variant=variant, external_id="i-b", location_id="loc-1", available=3
    )
    customer = Customer.objects.create(tenant=tenant_b, connection=connection, external_id="c-b", email="b@b.example")
    run = SyncRun.objects.create(tenant=tenant_b, connection=connection)
    key, _ = ApiKey.generate(tenant_b, "their key")
    return {
        "order": make_order(connection).pk,
        "product": product.pk,
        "customer": customer.pk,
        "inventory": level.pk,
        "connection": connection.pk,
        "run": run.pk,
        "key": key.pk,
    }


@pytest.fixture
def every_scope(make_key) -> str:
    return make_key(ApiKeyScope.values)[1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/orders/{order}"),
        ("get", "/api/v1/products/{product}"),
        ("get", "/api/v1/customers/{customer}"),
        ("get", "/api/v1/inventory/{inventory}"),
        ("get", "/api/v1/integrations/{connection}"),
        ("patch", "/api/v1/integrations/{connection}"),
        ("delete", "/api/v1/integrations/{connection}"),
        ("post", "/api/v1/integrations/{connection}/test"),
        ("post", "/api/v1/integrations/{connection}/sync"),
        ("get", "/api/v1/integrations/{connection}/sync-runs"),
        ("get", "/api/v1/sync-runs/{run}"),
        ("get", "/api/v1/api-keys/{key}"),
        ("get", "/api/v1/api-keys/{key}/usage"),
        ("post", "/api/v1/api-keys/{key}/revoke"),
        ("delete", "/api/v1/api-keys/{key}"),
    ],
)
def test_another_tenants_object_is_404(api_client, every_scope, theirs, method, path):
    response = getattr(api_client, method)(
        path.format(**theirs), {"name": "mine now"}, format="json", **bearer(every_scope)
    )
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    assert "Beta" not in response.content.decode()


def test_nothing_of_theirs_changed(api_client, every_scope, theirs):
    api_client.patch(
        f"/api/v1/integrations/{theirs['connection']}", {"name": "mine"}, format="json", **bearer(every_scope)
    )
    api_client.delete(f"/api/v1/integrations/{theirs['connection']}", **bearer(every_scope))
    api_client.post(f"/api/v1/api-keys/{theirs['key']}/revoke", **bearer(every_scope))
    assert not ApiKey.objects.get(pk=theirs["key"]).is_revoked
    assert Connection.objects.get(pk=theirs["connection"]).name == "Beta shop"
