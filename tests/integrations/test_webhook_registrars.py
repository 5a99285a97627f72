"""Registering the hub's webhooks on Shopify (GraphQL webhookSubscriptions) and WooCommerce
(wc/v3/webhooks), against the local fake platforms, through the connectors."""

from __future__ import annotations

import pytest

from integrations.connectors import get_connector
from integrations.connectors.webhook_registration import REGISTRARS, RemoteWebhook
from integrations.errors import AuthError, ConfigurationError, PermissionDenied
from integrations.webhook_handlers import HANDLERS
from tests.fakes.shopify_server import ALL_SCOPES, FakeClock, FakeShopify
from tests.fakes.woocommerce_server import FakeWooCommerce

pytestmark = pytest.mark.django_db

ADDRESS = "https://hub.example.com/webhooks/shopify/6f1c0b8e-0000-4000-8000-000000000001/"


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def fake_shop(settings, clock):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    servers: list[FakeShopify] = []

    def start(**kwargs) -> FakeShopify:
        servers.append(FakeShopify(clock=clock, **kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def shopify(fake_shop, make_connection, tenant_a):
    """(fake shop, its registrar); keyword arguments go to the fake."""

    def make(**kwargs):
        shop = fake_shop(**kwargs)
        credentials = {"shop_domain": "fake-shop.myshopify.com", "access_token": "shpat_fake_token"}
        connection = make_connection(tenant_a, "shopify", base_url=shop.url, credentials=credentials)
        return shop, REGISTRARS["shopify"](get_connector(connection))

    return make


@pytest.fixture
def woocommerce(settings, make_connection, tenant_a):
    """(fake store, its registrar); keyword arguments go to the fake."""
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    stores: list[FakeWooCommerce] = []

    def make(*, secret: str = "hub-secret", **kwargs):
        store = FakeWooCommerce(**{"key_permissions": "read_write", **kwargs}).start()
        stores.append(store)
        credentials = store.credentials(webhook_secret=secret) if secret else store.credentials()
        connection = make_connection(tenant_a, "woocommerce", credentials=credentials)
        return store, REGISTRARS["woocommerce"](get_connector(connection))

    yield make
    for store in stores:
        store.stop()


def handled(provider: str) -> set[str]:
    return {topic for (platform, topic) in HANDLERS if platform == provider}


# --- Shopify ---------------------------------------------------------------------------------------


def test_shopify_registrar_subscribes_to_every_topic_the_hub_handles(shopify):
    _, registrar = shopify()
    assert set(registrar.topics) == handled("shopify")


def test_shopify_registrar_creates_lists_and_deletes_a_subscription(shopify):
    shop, registrar = shopify()

    created = registrar.create("orders/create", ADDRESS)

    assert created == RemoteWebhook("gid://shopify/WebhookSubscription/1", "orders/create", ADDRESS)
    [sent] = shop.graphql_requests("HubWebhookSubscriptionCreate")
    assert sent["variables"] == {
        "topic": "ORDERS_CREATE",
        "webhookSubscription": {"uri": ADDRESS, "format": "JSON"},
    }
    assert registrar.list() == [created]
    registrar.delete(created.remote_id)
    assert registrar.list() == [] and shop.webhook_subscriptions == {}


def test_shopify_list_reads_every_page(shopify):
    shop, registrar = shopify()
    for n in range(1, 131):
        gid = f"gid://shopify/WebhookSubscription/{n}"
        shop.webhook_subscriptions[gid] = {"id": gid, "topic": "ORDERS_UPDATED", "uri": f"{ADDRESS}{n}"}

    hooks = registrar.list()

    assert len(hooks) == 130 and {hook.topic for hook in hooks} == {"orders/updated"}
    assert len(shop.graphql_requests("HubWebhookSubscriptions")) == 2


def test_shopify_subscription_already_at_the_address_is_returned_not_duplicated(shopify):
    shop, registrar = shopify()
    first = registrar.create("app/uninstalled", ADDRESS)

    again = registrar.create("app/uninstalled", ADDRESS)

    assert again == first
    assert len(shop.webhook_subscriptions) == 1


def test_shopify_deleting_a_subscription_already_gone_is_not_an_error(shopify):
    _, registrar = shopify()
    registrar.delete("gid://shopify/WebhookSubscription/404")


def test_shopify_versions_before_2025_10_give_the_address_as_callback_url(shopify, settings):
    settings.SHOPIFY_API_VERSION = "2025-07"
    shop, registrar = shopify()

    registrar.create("products/update", ADDRESS)

    [sent] = shop.graphql_requests("HubWebhookSubscriptionCreate")
    assert sent["variables"]["webhookSubscription"] == {"callbackUrl": ADDRESS, "format": "JSON"}
    assert "callbackUrl" in sent["query"] and "uri" not in sent["query"]
    assert [hook.address for hook in registrar.list()] == [ADDRESS]


def test_shopify_revoked_token_gives_the_connectors_auth_error(shopify):
    shop, registrar = shopify()
    shop.revoke()

    with pytest.raises(AuthError) as raised:
        registrar.list()
    assert raised.value.status == 401 and "access token" in raised.value.hint


def test_shopify_missing_scope_gives_permission_denied(shopify):
    _, registrar = shopify(scopes=tuple(s for s in ALL_SCOPES if s != "read_inventory"))

    with pytest.raises(PermissionDenied, match="read_inventory"):
        registrar.create("inventory_levels/update", ADDRESS)


def test_shopify_refusal_for_protected_customer_data_gives_permission_denied(shopify):
    shop, registrar = shopify()
    shop.protected_data_approved = False

    with pytest.raises(PermissionDenied) as raised:
        registrar.create("customers/create", ADDRESS)
    assert "protected customer data" in raised.value.message and "approval" in raised.value.hint
    assert registrar.create("products/create", ADDRESS).topic == "products/create"


def test_shopify_topic_the_hub_does_not_handle_is_refused_before_asking(shopify):
    shop, registrar = shopify()

    with pytest.raises(ConfigurationError):
        registrar.create("carts/create", ADDRESS)
    assert shop.graphql_requests() == []


# --- WooCommerce -----------------------------------------------------------------------------------


def test_woocommerce_registrar_subscribes_to_every_topic_the_hub_handles(woocommerce):
    _, registrar = woocommerce()
    assert set(registrar.topics) == handled("woocommerce")


def test_woocommerce_registrar_creates_lists_and_deletes_a_webhook(woocommerce):
    store, registrar = woocommerce()

    created = registrar.create("order.updated", ADDRESS)

    assert created == RemoteWebhook("1", "order.updated", ADDRESS)
    hook = store.webhooks[1]
    assert (hook["secret"], hook["status"], hook["name"]) == ("hub-secret", "active", "Commerce hub: order.updated")
    assert registrar.list() == [created]
    registrar.delete(created.remote_id)
    assert store.webhooks == {}
    [deleted] = [seen for seen in store.seen("webhooks/1") if seen.method == "DELETE"]
    assert deleted.query["force"] == "true"


def test_woocommerce_list_reads_every_page(woocommerce):
    store, registrar = woocommerce()
    for n in range(1, 131):
        store.webhooks[n] = {"id": n, "topic": "product.updated", "status": "active", "delivery_url": f"{ADDRESS}{n}"}

    assert len(registrar.list()) == 130
    assert len([seen for seen in store.seen("webhooks") if seen.method == "GET"]) == 2


def test_woocommerce_webhook_the_store_disabled_is_listed_as_inactive(woocommerce):
    store, registrar = woocommerce()
    registrar.create("customer.created", ADDRESS)
    store.webhooks[1]["status"] = "disabled"

    assert registrar.list() == [RemoteWebhook("1", "customer.created", ADDRESS, active=False)]


def test_woocommerce_deleting_a_webhook_already_gone_is_not_an_error(woocommerce):
    _, registrar = woocommerce()
    registrar.delete("77")


def test_woocommerce_create_without_the_webhook_secret_is_refused_before_asking(woocommerce):
    store, registrar = woocommerce(secret="")

    with pytest.raises(ConfigurationError, match="webhook secret"):
        registrar.create("order.created", ADDRESS)
    assert store.seen("webhooks") == []


def test_woocommerce_read_only_key_gives_the_connectors_auth_error(woocommerce):
    _, registrar = woocommerce(key_permissions="read")

    with pytest.raises(AuthError) as raised:
        registrar.create("order.created", ADDRESS)
    assert raised.value.status == 401 and "consumer key" in raised.value.hint


def test_woocommerce_user_who_may_not_manage_webhooks_gives_permission_denied(woocommerce):
    store, registrar = woocommerce()
    store.manage_webhooks = False

    with pytest.raises(PermissionDenied) as raised:
        registrar.list()
    assert raised.value.status == 403 and "administrator or shop manager" in raised.value.hint
