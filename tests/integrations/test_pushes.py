"""commerce.pushes → integrations: the pusher finds the connection within the push's tenant, calls
its connector, and reports what happened (retryable or for a person)."""

from __future__ import annotations

import pytest

from commerce import pushes
from commerce.pushes import FulfilmentPush, PushResult, StockPush
from integrations.connectors.shopify import ShopifyConnector
from integrations.errors import BadResponse, Unavailable
from integrations.pushes import ConnectorPusher

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", "access_token": "x"})


def push_to(connection, tenant=None) -> FulfilmentPush:
    return FulfilmentPush(
        tenant_id=(tenant or connection.tenant).pk,
        connection_id=connection.pk,
        order_external_id="gid://shopify/Order/1",
        tracking_number="1Z999",
        carrier="ups",
    )


def test_integrations_registers_the_pusher_commerce_calls():
    assert isinstance(pushes.pusher(), ConnectorPusher)


def test_a_push_lands_through_the_connector(shop, monkeypatch):
    seen = []
    monkeypatch.setattr(
        ShopifyConnector, "fulfil", lambda self, push: seen.append(push) or "gid://shopify/Fulfillment/9"
    )
    result = pushes.pusher().fulfil(push_to(shop))
    assert result == PushResult(ok=True, remote_id="gid://shopify/Fulfillment/9")
    assert seen[0].tracking_number == "1Z999"


def test_another_tenants_connection_is_never_reached(shop, tenant_b, monkeypatch):
    monkeypatch.setattr(ShopifyConnector, "fulfil", lambda self, push: pytest.fail("pushed across tenants"))
    result = pushes.pusher().fulfil(push_to(shop, tenant=tenant_b))
    assert not result.ok and result.message == "The connection no longer exists."


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(Unavailable("Shopify answered 503"), True), (BadResponse("Tracking number is invalid"), False)],
)
def test_a_failed_push_says_whether_to_try_again(shop, monkeypatch, error, retryable):
    def refuse(self, push):
        raise error

    monkeypatch.setattr(ShopifyConnector, "fulfil", refuse)
    result = pushes.pusher().fulfil(push_to(shop))
    assert (result.ok, result.retryable, result.message) == (False, retryable, str(error))


def test_a_platform_without_pushes_says_so(tenant_a, make_connection):
    manual = make_connection(tenant_a, "stripe")
    result = pushes.pusher().set_stock(StockPush(tenant_id=tenant_a.pk, connection_id=manual.pk, sku="A", quantity=1))
    assert not result.ok and not result.retryable
    assert "no connector yet" in result.message or "cannot take" in result.message


def test_a_disabled_connection_is_not_pushed_to(shop, monkeypatch):
    shop.enabled = False
    shop.save()
    monkeypatch.setattr(ShopifyConnector, "fulfil", lambda self, push: pytest.fail("pushed to a disabled connection"))
    assert "disabled" in pushes.pusher().fulfil(push_to(shop)).message


def test_a_carrier_the_platform_does_not_accept_is_refused_with_its_list(shop, monkeypatch):
    monkeypatch.setattr(ShopifyConnector, "carrier_names", {"ups": "UPS", "usps": "USPS"})
    connector = ShopifyConnector(shop)
    assert connector.platform_carrier("ups") == "UPS"
    with pytest.raises(Exception) as refused:
        connector.platform_carrier("royal_mail")
    assert "Accepted: UPS, USPS." in str(refused.value)
    assert pushes.pusher().carriers(shop.tenant_id, shop.pk) == ["ups", "usps"]


def test_a_demo_connection_is_never_pushed_to_and_takes_no_carriers(shop, monkeypatch):
    shop.is_demo = True
    shop.save()
    monkeypatch.setattr(ShopifyConnector, "fulfil", lambda self, push: pytest.fail("pushed to a demo shop"))
    result = pushes.pusher().fulfil(push_to(shop))
    assert not result.ok and not result.retryable and "demo connection" in result.message
    assert pushes.pusher().carriers(shop.tenant_id, shop.pk) == []
