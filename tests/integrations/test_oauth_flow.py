"""Connect by OAuth: the start redirect, the one-time state, the callback's checks, the token
exchange, and what lands on the connection. Token endpoints are mocked with `responses`; the
connection test after a successful Connect runs the real service with a stub connector."""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from django.db import connection as db

from integrations.connectors.base import CheckResult
from integrations.errors import AuthError
from integrations.models import ConnectionStatus
from integrations.oauth import state as oauth_state
from integrations.oauth.shopify import query_hmac
from tenants.models import AuditLog, Membership, Role

pytestmark = pytest.mark.django_db

SHOP = "alpha.myshopify.com"
CLIENT_SECRET = "shopify-app-secret"
NEW_TOKEN = "shpat_new_token_0123456789abcdef"
OLD_TOKEN = "shpat_old_token_fedcba9876543210"
SHOPIFY_TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
AMAZON_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
NEW_REFRESH = "Atzr|new-refresh-token-0123456789"


class StubConnector:
    """Stands in for the platform's check; remembers the credentials it was built with."""

    seen: list[dict] = []

    def __init__(self, connection, result: CheckResult) -> None:
        StubConnector.seen.append(dict(connection.credentials))
        self.result = result

    def check(self) -> CheckResult:
        return self.result


@pytest.fixture(autouse=True)
def check_result(monkeypatch):
    """The connection check's answer (success unless a test changes `result`)."""
    StubConnector.seen = []
    holder = {"result": CheckResult(ok=True, samples={"orders": 12}, latency_ms=40)}
    monkeypatch.setattr("integrations.services.get_connector", lambda c: StubConnector(c, holder["result"]))
    return holder


@pytest.fixture
def shop(tenant_a, make_connection):
    return make_connection(
        tenant_a,
        "shopify",
        name="Alpha Shopify",
        credentials={
            "shop_domain": SHOP,
            "client_id": "shopify-app-id",
            "client_secret": CLIENT_SECRET,
            "access_token": OLD_TOKEN,
            "access_token_expires_at": "2020-01-01T00:00:00+00:00",
        },
        status=ConnectionStatus.NEEDS_REAUTH,
    )


@pytest.fixture
def amazon(tenant_a, make_connection):
    return make_connection(
        tenant_a,
        "amazon",
        name="Alpha Amazon",
        credentials={
            "lwa_client_id": "amzn1.application-oa2-client.abc",
            "lwa_client_secret": "lwa-secret",
            "refresh_token": "Atzr|old-refresh",
            "seller_id": "OLDSELLER",
            "region": "NA",
            "marketplace_ids": "ATVPDKIKX0DER",
            "application_id": "amzn1.sp.solution.app-1",
        },
    )


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.fixture
def member_client(client, tenant_a, make_member):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    return client


def sign(params: dict[str, str], secret: str = CLIENT_SECRET) -> dict[str, str]:
    """Shopify's signature, computed here independently: the other parameters sorted by name."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def start(client, connection, platform: str | None = None) -> tuple[str, dict[str, str]]:
    """Start Connect; return the consent URL and its query."""
    response = client.get(f"/integrations/oauth/{platform or connection.platform}/start?connection={connection.uuid}")
    assert response.status_code == 302, response.content
    url = response["Location"]
    return url, {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def shopify_answer(client, state: str, *, shop: str = SHOP, secret: str = CLIENT_SECRET, **extra):
    params = sign({"code": "auth-code-1", "shop": shop, "state": state, "timestamp": "1750000000", **extra}, secret)
    return client.get(f"/integrations/oauth/shopify/callback?{urlencode(params)}")


def text(response) -> str:
    """The page as a person reads it (entities such as &#x27; unescaped)."""
    return html.unescape(response.content.decode())


def raw_credentials(pk: int) -> bytes:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def assert_unchanged(shop) -> None:
    shop.refresh_from_db()
    assert shop.credentials["access_token"] == OLD_TOKEN
    assert shop.status == ConnectionStatus.NEEDS_REAUTH
    assert not AuditLog.objects.filter(action="connection.oauth_connected").exists()


# --- Start ------------------------------------------------------------------------------------------


def test_start_redirects_to_shopifys_consent_page_with_a_state(admin_client, shop):
    url, query = start(admin_client, shop)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert query["client_id"] == "shopify-app-id"
    assert query["scope"].split(",")[:2] == ["read_orders", "read_all_orders"]
    assert query["redirect_uri"] == "http://testserver/integrations/oauth/shopify/callback"
    assert len(query["state"]) >= 32
    assert query["state"] in admin_client.session[oauth_state.SESSION_KEY]


def test_each_start_has_its_own_state(admin_client, shop):
    assert start(admin_client, shop)[1]["state"] != start(admin_client, shop)[1]["state"]


def test_the_redirect_uri_is_built_on_public_base_url_when_it_is_set(admin_client, shop, settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.com"
    _, query = start(admin_client, shop)
    assert query["redirect_uri"] == "https://hub.example.com/integrations/oauth/shopify/callback"


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("NA", "sellercentral.amazon.com"),
        ("EU", "sellercentral-europe.amazon.com"),
        ("FE", "sellercentral.amazon.co.jp"),
    ],
)
def test_amazon_start_opens_the_regions_seller_central(admin_client, amazon, region, host):
    amazon.credentials = {**amazon.credentials, "region": region}
    amazon.save()
    url, query = start(admin_client, amazon)
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == (host, "/apps/authorize/consent")
    assert query["application_id"] == "amzn1.sp.solution.app-1"
    assert query["redirect_uri"] == "http://testserver/integrations/oauth/amazon/callback"
    assert "version" not in query


def test_amazon_start_asks_for_the_beta_version_of_a_draft_app(admin_client, amazon, settings):
    settings.AMAZON_DRAFT_APPLICATION_IDS = ["amzn1.sp.solution.app-1"]
    assert start(admin_client, amazon)[1]["version"] == "beta"


def test_start_without_the_apps_credentials_says_what_is_missing_and_keeps_no_state(admin_client, amazon):
    amazon.credentials = {k: v for k, v in amazon.credentials.items() if k != "application_id"}
    amazon.save()
    response = admin_client.get(f"/integrations/oauth/amazon/start?connection={amazon.uuid}")
    assert response.status_code == 400
    assert "The connection has no application ID." in text(response)
    assert not admin_client.session.get(oauth_state.SESSION_KEY)


def test_a_client_of_another_tenant_cannot_start_a_flow_on_the_connection(client, shop, tenant_b, make_member):
    client.force_login(make_member(tenant_b, Role.OWNER))
    response = client.get(f"/integrations/oauth/shopify/start?connection={shop.uuid}")
    assert response.status_code == 404
    assert not client.session.get(oauth_state.SESSION_KEY)


@pytest.mark.parametrize(
    "path",
    [
        "/integrations/oauth/shopify/start?connection={missing}",
        "/integrations/oauth/shopify/start?connection=not-a-uuid",
        "/integrations/oauth/amazon/start?connection={shop}",  # the connection is not an Amazon one
        "/integrations/oauth/woocommerce/start?connection={shop}",  # no OAuth for WooCommerce
    ],
)
def test_start_answers_404_for_what_does_not_exist(admin_client, shop, path):
    response = admin_client.get(path.format(missing=uuid.uuid4(), shop=shop.uuid))
    assert response.status_code == 404


def test_a_signed_out_visitor_is_sent_to_sign_in(client, shop):
    response = client.get(f"/integrations/oauth/shopify/start?connection={shop.uuid}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- A successful callback ---------------------------------------------------------------------------


@responses.activate
def test_a_shopify_connect_stores_the_token_encrypted_and_tests_the_connection(admin_client, shop, caplog):
    caplog.set_level(logging.DEBUG)
    token_call = responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN, "scope": "read_orders"})
    _, query = start(admin_client, shop)

    response = shopify_answer(admin_client, query["state"])

    page = text(response)
    assert response.status_code == 200
    assert "Alpha Shopify is connected to Shopify and its test passed." in page
    assert f'href="/admin/integrations/connection/{shop.pk}/change/"' in page
    sent = parse_qs(token_call.calls[0].request.body)
    assert sent == {"client_id": ["shopify-app-id"], "client_secret": [CLIENT_SECRET], "code": ["auth-code-1"]}
    shop.refresh_from_db()
    assert shop.credentials["access_token"] == NEW_TOKEN
    assert "access_token_expires_at" not in shop.credentials  # it would make the connector replace the token
    assert shop.credentials["client_secret"] == CLIENT_SECRET
    assert NEW_TOKEN.encode() not in raw_credentials(shop.pk)
    assert StubConnector.seen == [shop.credentials]  # the test ran with the new token
    assert shop.status == ConnectionStatus.CONNECTED
    assert AuditLog.objects.filter(action="connection.oauth_connected", tenant=shop.tenant).exists()
    assert NEW_TOKEN not in page
    assert NEW_TOKEN not in caplog.text
    assert "auth-code-1" not in caplog.text


@responses.activate
def test_an_amazon_connect_stores_the_refresh_token_and_the_seller_id(admin_client, amazon):
    token_call = responses.post(AMAZON_TOKEN_URL, json={"access_token": "Atza|x", "refresh_token": NEW_REFRESH})
    _, query = start(admin_client, amazon)

    params = {"spapi_oauth_code": "spapi-code", "selling_partner_id": "A2SELLER", "state": query["state"]}
    response = admin_client.get(f"/integrations/oauth/amazon/callback?{urlencode(params)}")

    assert response.status_code == 200
    assert "is connected to Amazon SP-API" in text(response)
    assert parse_qs(token_call.calls[0].request.body) == {
        "grant_type": ["authorization_code"],
        "code": ["spapi-code"],
        "redirect_uri": ["http://testserver/integrations/oauth/amazon/callback"],
        "client_id": ["amzn1.application-oa2-client.abc"],
        "client_secret": ["lwa-secret"],
    }
    amazon.refresh_from_db()
    assert amazon.credentials["refresh_token"] == NEW_REFRESH
    assert amazon.credentials["seller_id"] == "A2SELLER"
    assert NEW_REFRESH.encode() not in raw_credentials(amazon.pk)
    assert NEW_REFRESH not in text(response)


@responses.activate
def test_a_connection_with_a_base_url_override_is_connected_there(admin_client, amazon):
    amazon.base_url = "https://sandbox.example.com/"
    amazon.save()
    token_call = responses.post("https://sandbox.example.com/auth/o2/token", json={"refresh_token": NEW_REFRESH})
    url, query = start(admin_client, amazon)
    assert url.startswith("https://sandbox.example.com/apps/authorize/consent?")

    params = {"spapi_oauth_code": "spapi-code", "selling_partner_id": "A2SELLER", "state": query["state"]}
    admin_client.get(f"/integrations/oauth/amazon/callback?{urlencode(params)}")

    assert len(token_call.calls) == 1
    amazon.refresh_from_db()
    assert amazon.credentials["refresh_token"] == NEW_REFRESH


@responses.activate
def test_a_client_connects_from_the_dashboard_and_is_sent_back_there(member_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    response = member_client.get(f"/integrations/oauth/shopify/start?connection={shop.uuid}&from=dashboard")
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]

    page = text(shopify_answer(member_client, state))

    assert "is connected to Shopify" in page
    assert 'href="/dashboard/integrations/"' in page
    assert "/admin/" not in page
    shop.refresh_from_db()
    assert shop.credentials["access_token"] == NEW_TOKEN


@responses.activate
def test_a_failed_connection_test_after_connect_shows_its_reason(admin_client, shop, check_result):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    check_result["result"] = CheckResult.failure(AuthError("The platform answered 401.", hint="Reinstall the app."))
    _, query = start(admin_client, shop)

    page = text(shopify_answer(admin_client, query["state"]))

    assert "Connected, but the test failed" in page
    assert "the connection test failed: The platform answered 401." in page
    assert "Reinstall the app." in page
    shop.refresh_from_db()
    assert shop.credentials["access_token"] == NEW_TOKEN
    assert shop.status == ConnectionStatus.NEEDS_REAUTH


# --- The state ----------------------------------------------------------------------------------------


@responses.activate
def test_a_tampered_state_is_refused_and_nothing_is_stored(admin_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)
    state = query["state"]
    tampered = ("A" if state[0] != "A" else "B") + state[1:]

    response = shopify_answer(admin_client, tampered)

    assert response.status_code == 400
    assert "does not match a Connect started in this browser session" in text(response)
    assert len(responses.calls) == 0
    assert_unchanged(shop)


def test_a_callback_without_a_state_is_refused(admin_client, shop):
    start(admin_client, shop)
    response = shopify_answer(admin_client, "")
    assert response.status_code == 400
    assert "has no state" in text(response)
    assert_unchanged(shop)


@responses.activate
def test_a_state_works_only_once(admin_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)
    assert shopify_answer(admin_client, query["state"]).status_code == 200
    shop.credentials = {**shop.credentials, "access_token": OLD_TOKEN}
    shop.save()

    replay = shopify_answer(admin_client, query["state"])

    assert replay.status_code == 400
    assert "already used" in text(replay)
    assert len(responses.calls) == 1
    shop.refresh_from_db()
    assert shop.credentials["access_token"] == OLD_TOKEN


class SessionCopy:
    """A request carrying a copy of a session's pending flows, as read by a request in flight."""

    def __init__(self, user, flows: dict) -> None:
        self.user = user
        self.session = {oauth_state.SESSION_KEY: dict(flows)}


def test_two_requests_racing_with_one_state_cannot_both_use_it(admin_client, shop, superadmin):
    _, query = start(admin_client, shop)
    flows = admin_client.session[oauth_state.SESSION_KEY]

    assert oauth_state.take(SessionCopy(superadmin, flows), query["state"], "shopify").connection_id == shop.pk
    with pytest.raises(oauth_state.StateError, match="already used"):
        oauth_state.take(SessionCopy(superadmin, flows), query["state"], "shopify")


def test_a_state_in_a_session_that_changed_hands_is_refused(admin_client, shop, make_member):
    _, query = start(admin_client, shop)
    flows = admin_client.session[oauth_state.SESSION_KEY]
    with pytest.raises(oauth_state.StateError, match="started by another user"):
        oauth_state.take(SessionCopy(make_member(shop.tenant), flows), query["state"], "shopify")


@responses.activate
def test_an_expired_state_is_refused(admin_client, shop, monkeypatch, settings):
    settings.OAUTH_STATE_TTL_SECONDS = 600
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    started = 1_750_000_000.0
    monkeypatch.setattr(oauth_state, "now", lambda: started)
    _, query = start(admin_client, shop)
    monkeypatch.setattr(oauth_state, "now", lambda: started + 601)

    response = shopify_answer(admin_client, query["state"])

    assert response.status_code == 400
    assert "took longer than 10 minutes and has expired" in text(response)
    assert len(responses.calls) == 0
    assert_unchanged(shop)


@responses.activate
def test_a_state_is_still_good_just_before_it_expires(admin_client, shop, monkeypatch):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    started = 1_750_000_000.0
    monkeypatch.setattr(oauth_state, "now", lambda: started)
    _, query = start(admin_client, shop)
    monkeypatch.setattr(oauth_state, "now", lambda: started + 599)
    assert shopify_answer(admin_client, query["state"]).status_code == 200


@responses.activate
def test_another_users_session_cannot_use_the_state(admin_client, shop, make_member, django_user_model):
    from django.test import Client

    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)
    colleague = Client()
    colleague.force_login(make_member(shop.tenant, Role.OWNER))

    response = shopify_answer(colleague, query["state"])

    assert response.status_code == 400
    assert "started by someone else" in text(response)
    assert_unchanged(shop)
    # The person who started it can still finish it.
    assert shopify_answer(admin_client, query["state"]).status_code == 200


def test_a_state_answered_on_another_platforms_address_is_refused(admin_client, shop):
    _, query = start(admin_client, shop)
    response = admin_client.get(f"/integrations/oauth/amazon/callback?spapi_oauth_code=x&state={query['state']}")
    assert response.status_code == 400
    assert "another platform's address" in text(response)
    assert_unchanged(shop)


@responses.activate
def test_a_member_who_left_the_tenant_cannot_finish_the_flow(client, shop, make_member):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    user = make_member(shop.tenant, Role.OWNER)
    client.force_login(user)
    _, query = start(client, shop)
    Membership.objects.filter(user=user).delete()

    response = shopify_answer(client, query["state"])

    assert response.status_code == 404
    assert len(responses.calls) == 0
    assert_unchanged(shop)


# --- Shopify's signature and shop ---------------------------------------------------------------------


def test_the_shopify_signature_matches_shopifys_documented_example():
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    assert query_hmac(params, "hush") == "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"


@responses.activate
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"secret": "not-the-app-secret"}, "Shopify's signature (hmac) does not match"),
        ({"shop": "other-store.myshopify.com"}, "not on the connection's shop alpha.myshopify.com"),
        ({"shop": "alpha.myshopify.com.evil.example"}, "is not a *.myshopify.com shop domain"),
    ],
)
def test_a_shopify_answer_that_fails_its_checks_is_refused(admin_client, shop, change, expected):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)

    response = shopify_answer(admin_client, query["state"], **change)

    assert response.status_code == 400
    assert expected in text(response)
    assert len(responses.calls) == 0
    assert_unchanged(shop)


@responses.activate
def test_a_shopify_answer_whose_parameters_were_changed_after_signing_is_refused(admin_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)
    params = sign({"code": "auth-code-1", "shop": SHOP, "state": query["state"], "timestamp": "1750000000"})
    params["code"] = "attackers-code"

    response = admin_client.get(f"/integrations/oauth/shopify/callback?{urlencode(params)}")

    assert response.status_code == 400
    assert len(responses.calls) == 0
    assert_unchanged(shop)


@responses.activate
def test_a_shopify_answer_without_hmac_is_refused(admin_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"access_token": NEW_TOKEN})
    _, query = start(admin_client, shop)
    params = {"code": "auth-code-1", "shop": SHOP, "state": query["state"], "timestamp": "1750000000"}

    response = admin_client.get(f"/integrations/oauth/shopify/callback?{urlencode(params)}")

    assert response.status_code == 400
    assert "it has no hmac" in text(response)
    assert len(responses.calls) == 0
    assert_unchanged(shop)


# --- Declined, and token endpoints that refuse ----------------------------------------------------------


@responses.activate
def test_a_person_who_declines_sees_it_and_nothing_changes(admin_client, amazon):
    _, query = start(admin_client, amazon)
    params = {"error": "access_denied", "error_description": "The user denied the request", "state": query["state"]}

    response = admin_client.get(f"/integrations/oauth/amazon/callback?{urlencode(params)}")

    page = text(response)
    assert "Connect cancelled" in page
    assert "did not grant access: The user denied the request" in page
    assert len(responses.calls) == 0
    amazon.refresh_from_db()
    assert amazon.credentials["refresh_token"] == "Atzr|old-refresh"
    # The state was used up by the answer.
    assert admin_client.get(f"/integrations/oauth/amazon/callback?{urlencode(params)}").status_code == 400


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "expected", "hint"),
    [
        (
            400,
            {"error": "invalid_request", "error_description": "The authorization code is invalid"},
            "Shopify refused to issue a token: invalid_request - The authorization code is invalid.",
            "redirect URL registered",
        ),
        (
            401,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            "Shopify refused to issue a token: invalid_client - Client authentication failed.",
            "does not accept the connection's client ID and secret",
        ),
        (503, {"errors": "Service unavailable"}, "Shopify's token endpoint answered 503.", "try Connect again"),
    ],
)
def test_a_token_endpoint_that_refuses_leaves_the_old_credentials(admin_client, shop, status, body, expected, hint):
    responses.post(SHOPIFY_TOKEN_URL, status=status, json=body)
    _, query = start(admin_client, shop)

    response = shopify_answer(admin_client, query["state"])

    page = text(response)
    assert response.status_code == 502
    assert expected in page
    assert hint in page
    assert len(responses.calls) == 1  # an authorisation code is never retried
    assert_unchanged(shop)
    assert AuditLog.objects.filter(action="connection.oauth_failed", tenant=shop.tenant).exists()


@responses.activate
def test_amazons_invalid_grant_is_explained_and_the_old_refresh_token_kept(admin_client, amazon):
    responses.post(AMAZON_TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Code expired"})
    _, query = start(admin_client, amazon)

    params = {"spapi_oauth_code": "spapi-code", "selling_partner_id": "A2SELLER", "state": query["state"]}
    page = text(admin_client.get(f"/integrations/oauth/amazon/callback?{urlencode(params)}"))

    assert "Amazon refused to issue a token: invalid_grant - Code expired." in page
    assert "already used or has expired: start Connect again" in page
    amazon.refresh_from_db()
    assert amazon.credentials["refresh_token"] == "Atzr|old-refresh"
    assert amazon.credentials["seller_id"] == "OLDSELLER"


@responses.activate
def test_a_token_answer_without_a_token_changes_nothing(admin_client, shop):
    responses.post(SHOPIFY_TOKEN_URL, json={"scope": "read_orders"})
    _, query = start(admin_client, shop)
    page = text(shopify_answer(admin_client, query["state"]))
    assert "Shopify's token answer has no access token." in page
    assert_unchanged(shop)


# --- Where Connect is offered ---------------------------------------------------------------------------


def test_the_admin_change_page_has_a_connect_button_for_oauth_platforms(admin_client, shop, tenant_a, make_connection):
    woo = make_connection(tenant_a, "woocommerce", credentials={"site_url": "https://woo.example"})
    page = admin_client.get(f"/admin/integrations/connection/{shop.pk}/change/").content.decode()
    assert "Connect with Shopify" in page
    assert f"/integrations/oauth/shopify/start?connection={shop.uuid}" in page
    assert "Connect with" not in admin_client.get(f"/admin/integrations/connection/{woo.pk}/change/").content.decode()


def test_the_dashboard_lists_the_tenants_connections_with_a_prominent_reconnect(
    member_client, shop, amazon, tenant_b, make_connection
):
    make_connection(tenant_b, "shopify", name="Beta Shopify")
    response = member_client.get("/dashboard/integrations/")
    page = text(response)
    assert response.status_code == 200
    assert "Alpha Shopify" in page
    assert "Alpha Amazon" in page
    assert "Beta Shopify" not in page
    assert "Alpha Shopify needs to be reconnected." in page
    assert "Alpha Amazon needs to be reconnected." not in page
    assert f"/integrations/oauth/shopify/start?connection={shop.uuid}&from=dashboard" in page
    assert "Connect Amazon SP-API" in page  # untested yet: Connect rather than Reconnect


def test_a_viewer_sees_the_connections_but_cannot_connect_them(client, shop, make_member):
    client.force_login(make_member(shop.tenant, Role.VIEWER))
    page = client.get("/dashboard/integrations/")
    assert page.status_code == 200 and shop.name in page.content.decode()
    assert "oauth/shopify/start" not in page.content.decode()
    refused = client.get(f"/integrations/oauth/shopify/start?connection={shop.uuid}")
    assert refused.status_code == 403
    assert not client.session.get("oauth_flows")
