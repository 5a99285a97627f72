"""The admin API for superadmins: create a client in one call, list platforms, test credentials
without saving them, bulk-test connections, overview figures. Staff session or admin API key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from integrations.connectors.base import CheckResult
from integrations.models import Connection, ConnectionStatus
from tenants.models import AdminApiKey, ApiKey, AuditLog, Membership, Role, Tenant

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SHOP = "https://alpha-goods.myshopify.com"
GRAPHQL = f"{SHOP}/admin/api/2025-10/graphql.json"
TOKEN = "shpat_0123456789abcdefSECRETtoken9876"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _public_urls_only(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    settings.SHOPIFY_API_VERSION = "2025-10"


@pytest.fixture
def admin_client(superadmin) -> APIClient:
    client = APIClient()
    client.force_login(superadmin)
    return client


@pytest.fixture
def admin_key(superadmin) -> tuple[AdminApiKey, str]:
    return AdminApiKey.generate(superadmin, "ops script")


@pytest.fixture
def shopify():
    with responses.RequestsMock() as mock:
        yield mock


def new_client(**overrides) -> dict:
    body = {
        "tenant": {"name": "Gamma Gear", "contact_email": "hello@gamma.example", "base_currency": "EUR"},
        "owner": {"email": "Owner@Gamma.example", "password": "a-long-enough-password-2026"},
    }
    body.update(overrides)
    return body


# --- Who may call ---------------------------------------------------------------------------------


def test_a_superadmin_session_reaches_the_admin_api(admin_client):
    assert admin_client.get("/api/v1/admin/platforms").status_code == 200


def test_an_admin_api_key_reaches_the_admin_api(api_client, admin_key):
    key, raw = admin_key
    response = api_client.get("/api/v1/admin/overview", **bearer(raw))
    assert response.status_code == 200
    assert "X-RateLimit-Limit" in response
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_an_admin_api_key_is_stored_as_a_hash_only(admin_key):
    key, raw = admin_key
    assert raw.startswith("hubadm_")
    assert key.matches(raw)
    assert raw not in str(AdminApiKey.objects.filter(pk=key.pk).values().first())


def test_a_revoked_admin_key_is_401(api_client, admin_key):
    key, raw = admin_key
    key.revoke()
    response = api_client.get("/api/v1/admin/overview", **bearer(raw))
    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")


def test_an_admin_key_whose_user_is_no_longer_a_superuser_is_401(api_client, admin_key, superadmin):
    superadmin.is_superuser = False
    superadmin.save()
    response = api_client.get("/api/v1/admin/overview", **bearer(admin_key[1]))
    assert response.status_code == 401


def test_an_admin_key_reaches_no_tenant_endpoint(api_client, admin_key):
    response = api_client.get("/api/v1/orders", **bearer(admin_key[1]))
    assert response.status_code == 401


def test_a_staff_user_who_is_not_a_superuser_is_403(api_client):
    staff = get_user_model().objects.create_user("helper", "helper@example.com", "pw-for-tests-1", is_staff=True)
    api_client.force_login(staff)
    response = api_client.get("/api/v1/admin/overview")
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")


def test_a_client_member_is_403(api_client, make_member, tenant_a):
    api_client.force_login(make_member(tenant_a))
    assert api_client.post("/api/v1/admin/clients", new_client(), format="json").status_code == 403
    assert not Tenant.objects.filter(name="Gamma Gear").exists()


def test_anonymous_is_401(api_client):
    response = api_client.get("/api/v1/admin/platforms")
    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


# --- Create a client --------------------------------------------------------------------------------


def test_a_client_is_created_with_owner_key_and_connection_in_one_call(admin_client, superadmin):
    body = new_client(
        api_key={"name": "Zapier", "scopes": ["orders:read"], "tier": "premium"},
        connection={
            "platform": "shopify",
            "name": "Main store",
            "credentials": {"shop_domain": "gamma.myshopify.com", "access_token": TOKEN},
        },
    )
    response = admin_client.post("/api/v1/admin/clients", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    tenant = Tenant.objects.get(slug="gamma-gear")
    assert data["tenant"]["id"] == tenant.pk
    assert tenant.base_currency == "EUR"
    owner = Membership.objects.get(tenant=tenant)
    assert owner.role == Role.OWNER
    assert owner.user.username == "owner@gamma.example"
    assert owner.user.check_password("a-long-enough-password-2026")
    key = ApiKey.objects.get(tenant=tenant)
    assert key.matches(data["api_key"]["key"])
    assert key.tier == "premium"
    assert key.created_by == superadmin
    connection = Connection.objects.get(tenant=tenant)
    assert connection.credentials["access_token"] == TOKEN
    assert TOKEN not in response.content.decode()
    assert "password" not in json.dumps(data["owner"])
    assert data["test"] is None
    actions = set(AuditLog.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"tenant.created", "api_key.created", "connection.created"} <= actions
    assert data["api_key"]["key"] not in str(list(AuditLog.objects.values()))


def test_the_new_key_works_for_the_new_client(admin_client, api_client):
    data = admin_client.post("/api/v1/admin/clients", new_client(api_key={"name": "first"}), format="json").json()
    me = api_client.get("/api/v1/me", **bearer(data["api_key"]["key"]))
    assert me.json()["tenant"]["slug"] == "gamma-gear"


def test_a_new_client_can_have_its_connection_tested_at_once(admin_client, monkeypatch):
    class Passing:
        def check(self) -> CheckResult:
            return CheckResult(ok=True, message="Connected to Gamma.")

    monkeypatch.setattr("integrations.services.get_connector", lambda connection: Passing())
    body = new_client(
        connection={
            "platform": "shopify",
            "name": "Main",
            "credentials": {"shop_domain": "gamma.myshopify.com", "access_token": TOKEN},
        },
        test_connection=True,
    )
    data = admin_client.post("/api/v1/admin/clients", body, format="json").json()
    assert data["test"]["ok"] is True
    assert Connection.objects.get(pk=data["connection"]["id"]).status == ConnectionStatus.CONNECTED


def test_an_invalid_part_creates_nothing(admin_client):
    body = new_client(
        connection={"platform": "shopify", "name": "Main", "credentials": {"shop_domain": "gamma.myshopify.com"}},
    )
    body["connection"]["credentials"]["nonsense"] = "x"
    response = admin_client.post("/api/v1/admin/clients", body, format="json")
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "nonsense" in json.dumps(response.json()["error"]["details"]["connection"])
    assert not Tenant.objects.filter(name="Gamma Gear").exists()
    assert not get_user_model().objects.filter(username="owner@gamma.example").exists()


def test_a_taken_email_or_a_weak_password_is_refused(admin_client, make_member, tenant_a):
    make_member(tenant_a, username="owner@gamma.example")
    body = new_client(owner={"email": "owner@gamma.example", "password": "123"})
    response = admin_client.post("/api/v1/admin/clients", body, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]["owner"]
    assert "email" in details
    assert not Tenant.objects.filter(name="Gamma Gear").exists()


def test_a_taken_slug_is_refused(admin_client, tenant_a):
    body = new_client(tenant={"name": "Other", "slug": tenant_a.slug, "contact_email": "x@example.com"})
    response = admin_client.post("/api/v1/admin/clients", body, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]["tenant"]


# --- Platforms and credential tests -------------------------------------------------------------------


def test_the_platform_list_says_which_can_be_tested(admin_client):
    results = {p["platform"]: p for p in admin_client.get("/api/v1/admin/platforms").json()["results"]}
    assert results["shopify"]["testable"] is True
    assert results["ebay"]["testable"] is True
    assert results["hubspot"]["testable"] is True
    assert results["manual"]["testable"] is False
    assert {"name", "secret", "required"} <= set(results["shopify"]["credentials"][0])


def test_credentials_are_tested_without_being_saved(admin_client, shopify):
    shopify.post(GRAPHQL, json=fixture("check.json"))
    before = Connection.objects.count()

    response = admin_client.post(
        "/api/v1/admin/credentials/test",
        {"platform": "shopify", "credentials": {"shop_domain": "alpha-goods.myshopify.com", "access_token": TOKEN}},
        format="json",
    )

    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is True
    assert result["message"] == "Connected to Alpha Goods."
    assert result["samples"]["orders"] == 1520
    assert Connection.objects.count() == before
    assert TOKEN not in response.content.decode()
    assert shopify.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN
    entry = AuditLog.objects.get(action="admin_api.credentials_tested")
    assert entry.details["ok"] is True
    assert TOKEN not in json.dumps(entry.details)


def test_refused_credentials_come_back_with_the_platforms_hint(admin_client, shopify):
    shopify.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
    response = admin_client.post(
        "/api/v1/admin/credentials/test",
        {"platform": "shopify", "credentials": {"shop_domain": "alpha-goods.myshopify.com", "access_token": TOKEN}},
        format="json",
    )
    result = response.json()
    assert result["ok"] is False
    assert result["error_code"] == "auth"
    assert "access token" in result["hint"].lower()
    assert len(shopify.calls) == 1  # a test never retries
    assert TOKEN not in response.content.decode()
    assert not Connection.objects.exists()


def test_credentials_are_checked_against_the_catalogue_first(admin_client):
    response = admin_client.post(
        "/api/v1/admin/credentials/test",
        {"platform": "shopify", "credentials": {"access_token": TOKEN, "password": "x"}},
        format="json",
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]["credentials"]
    assert "password" in details
    assert "shop_domain" in details


def test_a_private_base_url_is_refused(admin_client):
    response = admin_client.post(
        "/api/v1/admin/credentials/test",
        {
            "platform": "shopify",
            "credentials": {"shop_domain": "alpha-goods.myshopify.com", "access_token": TOKEN},
            "base_url": "https://169.254.169.254/",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "base_url" in response.json()["error"]["details"]


def test_a_platform_without_a_connector_is_not_testable(admin_client):
    response = admin_client.post(
        "/api/v1/admin/credentials/test",
        {"platform": "manual", "credentials": {}},
        format="json",
    )
    assert response.json()["ok"] is False
    assert response.json()["error_code"] == "not_testable"


# --- Bulk tests ----------------------------------------------------------------------------------------


@pytest.fixture
def passing_and_failing(monkeypatch):
    class Fake:
        def __init__(self, connection) -> None:
            self.connection = connection

        def check(self) -> CheckResult:
            if "bad" in self.connection.name:
                return CheckResult(ok=False, message="Refused.", error_code="auth")
            return CheckResult(ok=True, message="Connected.")

    monkeypatch.setattr("integrations.services.get_connector", Fake)


def test_connections_are_bulk_tested_by_id(admin_client, make_connection, tenant_a, tenant_b, passing_and_failing):
    good = make_connection(tenant_a, name="good shop")
    bad = make_connection(tenant_b, name="bad shop")

    response = admin_client.post("/api/v1/admin/connections/test", {"ids": [good.pk, bad.pk]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["tested"], body["failed"]) == (2, 1)
    assert [(row["id"], row["result"]["ok"]) for row in body["results"]] == [(good.pk, True), (bad.pk, False)]
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == ConnectionStatus.CONNECTED
    assert bad.status == ConnectionStatus.NEEDS_REAUTH
    assert AuditLog.objects.filter(action="connection.tested").count() == 2
    assert AuditLog.objects.filter(action="admin_api.connections_tested").exists()


def test_every_enabled_connection_of_a_client_is_bulk_tested(
    admin_client, make_connection, tenant_a, tenant_b, passing_and_failing
):
    one = make_connection(tenant_a, name="one")
    two = make_connection(tenant_a, name="two")
    make_connection(tenant_a, name="paused", enabled=False)
    make_connection(tenant_b, name="elsewhere")

    body = admin_client.post("/api/v1/admin/connections/test", {"tenant": tenant_a.slug}, format="json").json()

    assert sorted(row["id"] for row in body["results"]) == [one.pk, two.pk]


def test_unknown_connection_ids_are_named(admin_client, make_connection, tenant_a):
    known = make_connection(tenant_a)
    response = admin_client.post("/api/v1/admin/connections/test", {"ids": [known.pk, 987654]}, format="json")
    assert response.status_code == 400
    assert "987654" in json.dumps(response.json()["error"]["details"])


def test_a_bulk_test_needs_ids_or_a_tenant(admin_client):
    response = admin_client.post("/api/v1/admin/connections/test", {}, format="json")
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")


def test_a_bulk_test_is_capped(admin_client):
    response = admin_client.post("/api/v1/admin/connections/test", {"ids": list(range(1, 100))}, format="json")
    assert response.status_code == 400


# --- Overview ------------------------------------------------------------------------------------------


def test_the_overview_has_the_admin_pages_figures(admin_client, make_connection, tenant_a, tenant_b):
    make_connection(tenant_a, status=ConnectionStatus.FAILING, last_error="Shopify refused the token.")
    response = admin_client.get("/api/v1/admin/overview")
    assert response.status_code == 200
    body = response.json()
    assert body["tenants"]["total"] == 2
    assert body["connections"]["total"] == 1
    failing = body["failing_connections"][0]
    assert failing["error"] == "Shopify refused the token."
    assert "badge" not in failing
    assert "<" not in json.dumps(body["connections"])
    assert AuditLog.objects.filter(action="admin_api.overview_viewed").exists()
