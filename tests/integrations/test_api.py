"""The public integrations API: the catalogue, connections, tests, syncs, sync history and status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from integrations.connectors.base import CheckResult
from integrations.models import Connection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger
from integrations.platforms import CATALOGUE
from tenants.models import ApiKey, AuditLog, Role

pytestmark = pytest.mark.django_db

SECRET = "shpat_0123456789abcdefSECRETvalue9876"
WOO_KEY = "ck_woo_consumer_key_SECRET_1111"
WOO_SECRET = "cs_woo_consumer_secret_SECRET_2222"
WRITE_SCOPES = ["integrations:read", "integrations:write"]


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.fixture(autouse=True)
def _public_urls_only(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def write_key(tenant_a) -> str:
    return ApiKey.generate(tenant=tenant_a, name="writer", scopes=WRITE_SCOPES)[1]


@pytest.fixture
def read_key(api_key) -> str:
    """Tenant A's key with every read scope and no write scope."""
    return api_key[1]


@pytest.fixture
def shop_a(make_connection, tenant_a) -> Connection:
    return make_connection(
        tenant_a, "shopify", "Alpha shop", credentials={"shop_domain": "alpha.myshopify.com", "access_token": SECRET}
    )


@pytest.fixture
def shop_b(make_connection, tenant_b) -> Connection:
    return make_connection(
        tenant_b, "shopify", "Beta shop", credentials={"shop_domain": "beta.myshopify.com", "access_token": SECRET}
    )


def shopify_body(**overrides) -> dict:
    body = {
        "platform": "shopify",
        "name": "Main store",
        "credentials": {"shop_domain": "main.myshopify.com", "access_token": SECRET},
    }
    body.update(overrides)
    return body


def make_run(connection: Connection, status: str = SyncStatus.SUCCEEDED, seconds: float | None = None, **kwargs):
    if seconds is not None:
        kwargs.setdefault("started_at", timezone.now() - timedelta(hours=1))
        kwargs.setdefault("finished_at", kwargs["started_at"] + timedelta(seconds=seconds))
    return SyncRun.objects.create(tenant=connection.tenant, connection=connection, status=status, **kwargs)


class FakeConnector:
    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def check(self) -> CheckResult:
        return self.result


# --- Platform catalogue ---------------------------------------------------------------------------


def test_the_platform_catalogue_lists_every_platform_to_any_key(api_client, tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="no scopes", scopes=[])
    response = api_client.get("/api/v1/platforms", **bearer(raw))
    assert response.status_code == 200
    platforms = {p["platform"]: p for p in response.json()["results"]}
    assert set(platforms) == set(CATALOGUE)
    shopify = platforms["shopify"]
    token = next(f for f in shopify["credentials"] if f["name"] == "access_token")
    assert token["secret"] is True
    assert token["required"] is False
    assert {"label", "help_text", "example", "choices"} <= set(token)
    assert shopify["streams"] == ["orders", "products", "customers", "inventory"]
    assert shopify["rate_limit"] == 2.0
    assert "read_orders" in shopify["scopes"]


def test_one_platform_is_served_by_name(api_client, read_key):
    response = api_client.get("/api/v1/platforms/woocommerce", **bearer(read_key))
    assert response.status_code == 200
    assert response.json()["label"] == "WooCommerce"


def test_an_unknown_platform_name_is_404(api_client, read_key):
    response = api_client.get("/api/v1/platforms/myspace", **bearer(read_key))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_the_platform_catalogue_needs_authentication(api_client):
    response = api_client.get("/api/v1/platforms")
    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


# --- Creating a connection ------------------------------------------------------------------------


def test_a_key_with_integrations_write_creates_a_connection(api_client, write_key, tenant_a):
    response = api_client.post(
        "/api/v1/integrations", shopify_body(sync_frequency="6h"), format="json", **bearer(write_key)
    )
    assert response.status_code == 201
    body = response.json()
    connection = Connection.objects.for_tenant(tenant_a).get(pk=body["id"])
    assert connection.name == "Main store"
    assert connection.sync_frequency == "6h"
    assert connection.credentials == {"shop_domain": "main.myshopify.com", "access_token": SECRET}
    assert body["platform"] == "shopify"
    assert body["status"] == ConnectionStatus.UNTESTED
    assert body["uuid"] == str(connection.uuid)
    assert body["stats"]["total"] == 0


def test_a_created_connection_shows_its_credentials_masked(api_client, write_key):
    response = api_client.post("/api/v1/integrations", shopify_body(), format="json", **bearer(write_key))
    assert response.json()["credentials"] == {"shop_domain": "main.myshopify.com", "access_token": "set, ending …9876"}
    assert SECRET not in response.content.decode()


def test_creating_a_connection_audits_the_credential_field_names_only(api_client, write_key, tenant_a):
    api_client.post("/api/v1/integrations", shopify_body(), format="json", **bearer(write_key))
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="connection.created")
    assert entry.details["fields"] == ["access_token", "shop_domain"]
    assert entry.target == "Main store (Shopify)"
    assert entry.actor_label.startswith("writer (")
    assert SECRET not in str(entry.details)


def test_a_key_without_integrations_write_gets_403_naming_the_scope(api_client, read_key):
    response = api_client.post("/api/v1/integrations", shopify_body(), format="json", **bearer(read_key))
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert "integrations:write" in response.json()["error"]["message"]
    assert not Connection.objects.exists()


def test_a_key_without_integrations_read_cannot_list_connections(api_client, tenant_a, shop_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="orders only", scopes=["orders:read"])
    response = api_client.get("/api/v1/integrations", **bearer(raw))
    assert response.status_code == 403
    assert "integrations:read" in response.json()["error"]["message"]


def test_a_signed_in_viewer_cannot_create_a_connection(api_client, make_member, tenant_a):
    api_client.force_login(make_member(tenant_a, role=Role.VIEWER))
    response = api_client.post("/api/v1/integrations", shopify_body(), format="json")
    assert response.status_code == 403
    assert not Connection.objects.exists()


def test_a_signed_in_editor_creates_a_connection_for_their_tenant(api_client, make_member, tenant_a):
    api_client.force_login(make_member(tenant_a, role=Role.EDITOR))
    response = api_client.post("/api/v1/integrations", shopify_body(), format="json")
    assert response.status_code == 201
    assert Connection.objects.get().tenant == tenant_a


def test_an_unknown_platform_is_400(api_client, write_key):
    response = api_client.post(
        "/api/v1/integrations", shopify_body(platform="myspace"), format="json", **bearer(write_key)
    )
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "not a platform" in response.json()["error"]["details"]["platform"][0]


def test_an_unknown_credential_field_is_400_naming_it(api_client, write_key):
    body = shopify_body(credentials={"shop_domain": "main.myshopify.com", "password": "hunter2-hunter2"})
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    errors = response.json()["error"]["details"]["credentials"]
    assert set(errors) == {"password"}
    assert "shop_domain" in errors["password"]
    assert "hunter2-hunter2" not in response.content.decode()


def test_a_missing_required_credential_is_400(api_client, write_key):
    body = shopify_body(platform="woocommerce", credentials={"site_url": "https://shop.example.com"})
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["credentials"]
    assert set(errors) == {"consumer_key", "consumer_secret"}
    assert errors["consumer_key"] == "This credential is required."


def test_an_empty_secret_is_400_on_create(api_client, write_key):
    body = shopify_body(credentials={"shop_domain": "main.myshopify.com", "access_token": "  "})
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    assert "non-empty" in response.json()["error"]["details"]["credentials"]["access_token"]


def test_a_credential_that_is_not_a_string_is_400(api_client, write_key):
    body = shopify_body(credentials={"shop_domain": "main.myshopify.com", "access_token": 12345678901234})
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["credentials"]["access_token"] == "Send the value as a string."


def test_credentials_that_are_not_an_object_are_400(api_client, write_key):
    response = api_client.post(
        "/api/v1/integrations", shopify_body(credentials=["access_token"]), format="json", **bearer(write_key)
    )
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["details"]["credentials"][0]


def test_a_credential_outside_its_choices_is_400(api_client, write_key):
    body = {
        "platform": "woocommerce",
        "name": "Woo",
        "credentials": {
            "site_url": "https://shop.example.com",
            "consumer_key": WOO_KEY,
            "consumer_secret": WOO_SECRET,
            "api_version": "wc/v1",
        },
    }
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["credentials"]["api_version"] == "Choose one of: wc/v3."


@pytest.mark.parametrize(
    "url", ["https://10.0.0.5/", "https://127.0.0.1:8443", "https://localhost/", "http://shop.example.com"]
)
def test_a_private_or_plain_http_base_url_is_400(api_client, write_key, url):
    response = api_client.post("/api/v1/integrations", shopify_body(base_url=url), format="json", **bearer(write_key))
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    message = response.json()["error"]["details"]["base_url"][0]
    assert "private or loopback" in message or "not a public address" in message or "Only https://" in message
    assert not Connection.objects.exists()


def test_a_private_woocommerce_site_url_is_400(api_client, write_key):
    body = {
        "platform": "woocommerce",
        "name": "Woo",
        "credentials": {"site_url": "https://192.168.1.20", "consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET},
    }
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 400
    assert "private or loopback" in response.json()["error"]["details"]["credentials"]["site_url"]
    assert WOO_SECRET not in response.content.decode()


def test_a_private_base_url_is_accepted_when_private_urls_are_allowed(api_client, write_key, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    response = api_client.post(
        "/api/v1/integrations", shopify_body(base_url="http://127.0.0.1:8000"), format="json", **bearer(write_key)
    )
    assert response.status_code == 201
    assert response.json()["base_url"] == "http://127.0.0.1:8000"


def test_a_public_woocommerce_connection_is_created_with_both_secrets_masked(api_client, write_key):
    body = {
        "platform": "woocommerce",
        "name": "Woo",
        "base_url": "https://staging.shop.example.com",
        "enabled": False,
        "credentials": {"site_url": "https://shop.example.com", "consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET},
    }
    response = api_client.post("/api/v1/integrations", body, format="json", **bearer(write_key))
    assert response.status_code == 201
    assert response.json()["credentials"] == {
        "site_url": "https://shop.example.com",
        "consumer_key": "set, ending …1111",
        "consumer_secret": "set, ending …2222",
    }
    assert response.json()["enabled"] is False
    assert WOO_KEY not in response.content.decode()
    assert WOO_SECRET not in response.content.decode()


# --- Reading connections --------------------------------------------------------------------------


def test_the_connection_list_shows_only_the_keys_tenant(api_client, read_key, shop_a, shop_b):
    response = api_client.get("/api/v1/integrations", **bearer(read_key))
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Alpha shop"]


def test_the_connection_list_never_contains_a_secret(api_client, read_key, shop_a):
    response = api_client.get("/api/v1/integrations", **bearer(read_key))
    assert SECRET not in response.content.decode()
    assert response.json()["results"][0]["credentials"]["access_token"] == "set, ending …9876"


def test_the_connection_detail_shows_its_state_and_stats(api_client, read_key, shop_a):
    make_run(shop_a, SyncStatus.SUCCEEDED, seconds=12)
    shop_a.cursors = {"orders": {"updated_at_min": "2026-01-01T00:00:00Z"}}
    shop_a.save()
    response = api_client.get(f"/api/v1/integrations/{shop_a.pk}", **bearer(read_key))
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Alpha shop"
    assert body["cursors"] == {"orders": {"updated_at_min": "2026-01-01T00:00:00Z"}}
    assert body["credentials"] == {"shop_domain": "alpha.myshopify.com", "access_token": "set, ending …9876"}
    assert body["stats"]["total"] == 1
    assert body["stats"]["last_duration"] == 12.0
    assert {"id", "uuid", "status", "last_tested_at", "last_test_result", "last_error", "sync_frequency"} <= set(body)
    assert SECRET not in response.content.decode()


def test_a_credential_the_catalogue_does_not_know_is_shown_masked(api_client, read_key, shop_a):
    shop_a.credentials = {**shop_a.credentials, "legacy_password": "a-legacy-password-value"}
    shop_a.save()
    response = api_client.get(f"/api/v1/integrations/{shop_a.pk}", **bearer(read_key))
    assert response.json()["credentials"]["legacy_password"] == "set, ending …alue"


def test_an_unknown_connection_id_is_404_in_the_json_shape(api_client, read_key):
    response = api_client.get("/api/v1/integrations/999999", **bearer(read_key))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


CROSS_TENANT_CALLS = [
    ("get", "/api/v1/integrations/{id}"),
    ("patch", "/api/v1/integrations/{id}"),
    ("delete", "/api/v1/integrations/{id}"),
    ("post", "/api/v1/integrations/{id}/test"),
    ("post", "/api/v1/integrations/{id}/sync"),
    ("get", "/api/v1/integrations/{id}/sync-runs"),
]


@pytest.mark.parametrize(("method", "path"), CROSS_TENANT_CALLS)
def test_another_tenants_connection_is_404(api_client, write_key, shop_a, shop_b, method, path, monkeypatch):
    monkeypatch.setattr("integrations.services.get_connector", lambda c: FakeConnector(CheckResult(ok=True)))
    response = getattr(api_client, method)(
        path.format(id=shop_b.pk), {"name": "Taken over"}, format="json", **bearer(write_key)
    )
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    assert "Beta" not in response.content.decode()
    shop_b.refresh_from_db()
    assert shop_b.name == "Beta shop"
    assert shop_b.last_tested_at is None
    assert not SyncRun.objects.exists()


def test_another_tenants_sync_run_is_404(api_client, read_key, shop_b):
    run = make_run(shop_b)
    response = api_client.get(f"/api/v1/sync-runs/{run.pk}", **bearer(read_key))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


# --- Changing a connection ------------------------------------------------------------------------


def test_patch_changes_the_name_frequency_and_enabled_flag(api_client, write_key, shop_a, tenant_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}",
        {"name": "Renamed", "sync_frequency": "1d", "enabled": False},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 200
    shop_a.refresh_from_db()
    assert (shop_a.name, shop_a.sync_frequency, shop_a.enabled) == ("Renamed", "1d", False)
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="connection.updated")
    assert sorted(entry.details["fields"]) == ["enabled", "name", "sync_frequency"]


def test_patch_merges_credentials_and_an_empty_secret_keeps_the_stored_one(api_client, write_key, shop_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}",
        {"credentials": {"shop_domain": "alpha-new.myshopify.com", "access_token": ""}},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 200
    shop_a.refresh_from_db()
    assert shop_a.credentials == {"shop_domain": "alpha-new.myshopify.com", "access_token": SECRET}
    assert SECRET not in response.content.decode()


def test_patch_with_a_new_secret_replaces_it_and_audits_the_name_only(api_client, write_key, shop_a, tenant_a):
    new_secret = "shpat_brand_new_token_value_5555"
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}",
        {"credentials": {"access_token": new_secret}},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 200
    assert response.json()["credentials"]["access_token"] == "set, ending …5555"
    assert new_secret not in response.content.decode()
    shop_a.refresh_from_db()
    assert shop_a.credentials["access_token"] == new_secret
    assert shop_a.credentials["shop_domain"] == "alpha.myshopify.com"
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="connection.credentials_changed")
    assert entry.details["fields"] == ["access_token"]
    assert new_secret not in str(entry.details)


def test_patch_cannot_empty_a_required_credential(api_client, write_key, shop_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}", {"credentials": {"shop_domain": ""}}, format="json", **bearer(write_key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["credentials"]["shop_domain"] == "This credential is required."


def test_patch_cannot_change_the_platform(api_client, write_key, shop_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}", {"platform": "woocommerce"}, format="json", **bearer(write_key)
    )
    assert response.status_code == 400
    assert "cannot change" in response.json()["error"]["details"]["platform"][0]
    shop_a.refresh_from_db()
    assert shop_a.platform == "shopify"


def test_patch_refuses_a_private_base_url(api_client, write_key, shop_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}",
        {"base_url": "https://169.254.169.254/"},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 400
    assert "private or loopback" in response.json()["error"]["details"]["base_url"][0]
    shop_a.refresh_from_db()
    assert shop_a.base_url == ""


def test_patch_needs_integrations_write(api_client, read_key, shop_a):
    response = api_client.patch(
        f"/api/v1/integrations/{shop_a.pk}", {"name": "Renamed"}, format="json", **bearer(read_key)
    )
    assert response.status_code == 403
    assert "integrations:write" in response.json()["error"]["message"]


def test_put_is_not_offered(api_client, write_key, shop_a):
    response = api_client.put(f"/api/v1/integrations/{shop_a.pk}", shopify_body(), format="json", **bearer(write_key))
    assert response.status_code == 405


def test_patch_leaves_the_sync_cursors_alone(api_client, write_key, shop_a):
    Connection.objects.filter(pk=shop_a.pk).update(cursors={"orders": {"since": "x"}})
    api_client.patch(f"/api/v1/integrations/{shop_a.pk}", {"name": "Renamed"}, format="json", **bearer(write_key))
    shop_a.refresh_from_db()
    assert shop_a.cursors == {"orders": {"since": "x"}}


# --- Deleting a connection ------------------------------------------------------------------------


def test_delete_removes_a_connection_without_records(api_client, write_key, shop_a, tenant_a):
    make_run(shop_a)
    response = api_client.delete(f"/api/v1/integrations/{shop_a.pk}", **bearer(write_key))
    assert response.status_code == 204
    assert not Connection.objects.filter(pk=shop_a.pk).exists()
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="connection.deleted").exists()


def test_delete_of_a_connection_with_orders_is_409_telling_to_disable_it(api_client, write_key, shop_a, make_order):
    make_order(shop_a)
    response = api_client.delete(f"/api/v1/integrations/{shop_a.pk}", **bearer(write_key))
    assert response.status_code == 409
    assert_error_shape(response.json(), "conflict")
    assert "Disable it instead" in response.json()["error"]["message"]
    assert Connection.objects.filter(pk=shop_a.pk).exists()


def test_delete_needs_integrations_write(api_client, read_key, shop_a):
    response = api_client.delete(f"/api/v1/integrations/{shop_a.pk}", **bearer(read_key))
    assert response.status_code == 403
    assert Connection.objects.filter(pk=shop_a.pk).exists()


# --- Testing a connection -------------------------------------------------------------------------


def test_the_test_action_returns_the_check_and_records_it(api_client, write_key, shop_a, tenant_a, monkeypatch):
    result = CheckResult(ok=True, message="Connected to Alpha.", granted=["read_orders"], samples={"orders": 3})
    monkeypatch.setattr("integrations.services.get_connector", lambda c: FakeConnector(result))
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/test", **bearer(write_key))
    assert response.status_code == 200
    assert response.json() == result.as_dict()
    shop_a.refresh_from_db()
    assert shop_a.status == ConnectionStatus.CONNECTED
    assert shop_a.last_tested_at is not None
    assert shop_a.last_test_result["samples"] == {"orders": 3}
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="connection.tested")
    assert entry.details["ok"] is True
    assert entry.actor_label.startswith("writer (")


def test_a_failed_test_with_bad_credentials_marks_the_connection_for_reauthorisation(
    api_client, write_key, shop_a, monkeypatch
):
    result = CheckResult(ok=False, message="The token was rejected.", hint="Create a new one.", error_code="auth")
    monkeypatch.setattr("integrations.services.get_connector", lambda c: FakeConnector(result))
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/test", **bearer(write_key))
    assert response.status_code == 200
    assert response.json()["ok"] is False
    shop_a.refresh_from_db()
    assert shop_a.status == ConnectionStatus.NEEDS_REAUTH
    assert shop_a.last_error == "The token was rejected. (Create a new one.)"


def test_the_test_action_needs_integrations_write(api_client, read_key, shop_a):
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/test", **bearer(read_key))
    assert response.status_code == 403
    assert "integrations:write" in response.json()["error"]["message"]


# --- Syncing a connection -------------------------------------------------------------------------


def test_sync_returns_202_with_a_queued_run(api_client, write_key, shop_a):
    response = api_client.post(
        f"/api/v1/integrations/{shop_a.pk}/sync",
        {"streams": ["orders", "products"], "full": True},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 202
    run = SyncRun.objects.get()
    assert response.json()["id"] == run.pk
    assert response.json()["status"] == SyncStatus.QUEUED
    assert (run.connection, run.trigger, run.streams, run.full) == (
        shop_a,
        SyncTrigger.API,
        ["orders", "products"],
        True,
    )


def test_sync_without_a_body_queues_every_stream(api_client, write_key, shop_a):
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/sync", **bearer(write_key))
    assert response.status_code == 202
    run = SyncRun.objects.get()
    assert run.streams == []
    assert run.full is False


def test_sync_enqueues_the_task_once_the_run_is_committed(
    api_client, write_key, shop_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/sync", **bearer(write_key))
    assert response.status_code == 202
    assert SyncRun.objects.filter(pk=response.json()["id"], status=SyncStatus.QUEUED).exists()
    assert OrmQ.objects.count() == 1


def test_sync_is_audited(api_client, write_key, shop_a, tenant_a):
    api_client.post(
        f"/api/v1/integrations/{shop_a.pk}/sync", {"streams": ["orders"]}, format="json", **bearer(write_key)
    )
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="sync.requested")
    assert entry.details["trigger"] == SyncTrigger.API
    assert entry.details["streams"] == ["orders"]


def test_sync_with_an_unknown_stream_is_400_naming_the_platforms_streams(api_client, write_key, shop_a):
    response = api_client.post(
        f"/api/v1/integrations/{shop_a.pk}/sync",
        {"streams": ["orders", "finances"]},
        format="json",
        **bearer(write_key),
    )
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    message = str(response.json()["error"]["details"]["streams"])
    assert "finances" in message
    assert "orders, products, customers, inventory" in message
    assert not SyncRun.objects.exists()


def test_sync_of_a_platform_without_streams_is_400(api_client, write_key, make_connection, tenant_a):
    stripe = make_connection(tenant_a, "stripe", credentials={"secret_key": "sk_test_0123456789abcdef"})
    response = api_client.post(f"/api/v1/integrations/{stripe.pk}/sync", **bearer(write_key))
    assert response.status_code == 400
    assert "nothing to sync" in str(response.json()["error"]["details"]["streams"])


def test_sync_of_a_disabled_connection_is_409(api_client, write_key, shop_a):
    shop_a.enabled = False
    shop_a.save()
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/sync", **bearer(write_key))
    assert response.status_code == 409
    assert_error_shape(response.json(), "conflict")
    assert "disabled" in response.json()["error"]["message"]
    assert not SyncRun.objects.exists()


def test_sync_of_a_platform_without_a_connector_is_409(api_client, write_key, make_connection, tenant_a, monkeypatch):
    from integrations.connectors import CONNECTORS

    monkeypatch.delitem(CONNECTORS, "ebay")  # every commerce platform has one now
    ebay = make_connection(tenant_a, "ebay", credentials={"client_id": "app", "client_secret": "cert"})
    response = api_client.post(f"/api/v1/integrations/{ebay.pk}/sync", **bearer(write_key))
    assert response.status_code == 409
    assert "no connector" in response.json()["error"]["message"]
    assert not SyncRun.objects.exists()


def test_sync_of_a_platform_with_nothing_to_sync_is_400(api_client, write_key, make_connection, tenant_a):
    crm = make_connection(tenant_a, "sendgrid", credentials={"api_key": "SG.x"})
    response = api_client.post(f"/api/v1/integrations/{crm.pk}/sync", **bearer(write_key))
    assert response.status_code == 400
    assert "nothing to sync" in response.json()["error"]["details"]["streams"][0]
    assert not SyncRun.objects.exists()


def test_sync_needs_integrations_write(api_client, read_key, shop_a):
    response = api_client.post(f"/api/v1/integrations/{shop_a.pk}/sync", **bearer(read_key))
    assert response.status_code == 403
    assert "integrations:write" in response.json()["error"]["message"]
    assert not SyncRun.objects.exists()


# --- Sync runs ------------------------------------------------------------------------------------


def test_a_sync_run_shows_its_progress_counts_and_duration(api_client, read_key, shop_a):
    run = make_run(
        shop_a,
        SyncStatus.SUCCEEDED,
        seconds=42.5,
        trigger=SyncTrigger.API,
        streams=["orders", "products"],
        progress={"orders": {"seen": 10, "total": 10, "done": True}, "products": {"seen": 4, "total": 4, "done": True}},
        counts={"orders": {"created": 7, "updated": 3}, "products": {"created": 4, "failed": 1}},
    )
    response = api_client.get(f"/api/v1/sync-runs/{run.pk}", **bearer(read_key))
    assert response.status_code == 200
    body = response.json()
    assert body["connection"] == shop_a.pk
    assert body["trigger"] == "api"
    assert body["streams"] == ["orders", "products"]
    assert body["totals"] == {"created": 11, "updated": 3, "unchanged": 0, "failed": 1}
    assert body["percent"] == 100
    assert body["duration_seconds"] == 42.5
    assert {"error", "error_code", "queued_at", "started_at", "finished_at", "progress", "counts", "full"} <= set(body)


def test_a_running_sync_run_has_no_duration_yet(api_client, read_key, shop_a):
    run = make_run(
        shop_a,
        SyncStatus.RUNNING,
        started_at=timezone.now(),
        streams=["orders"],
        progress={"orders": {"seen": 25, "total": 100, "done": False}},
    )
    body = api_client.get(f"/api/v1/sync-runs/{run.pk}", **bearer(read_key)).json()
    assert body["duration_seconds"] is None
    assert body["percent"] == 25


def test_the_sync_history_is_newest_first(api_client, read_key, shop_a, make_connection, tenant_a):
    now = timezone.now()
    old = make_run(shop_a, queued_at=now - timedelta(hours=2))
    new = make_run(shop_a, queued_at=now - timedelta(minutes=5))
    middle = make_run(shop_a, queued_at=now - timedelta(hours=1))
    make_run(make_connection(tenant_a, "woocommerce"), queued_at=now)
    response = api_client.get(f"/api/v1/integrations/{shop_a.pk}/sync-runs", **bearer(read_key))
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [new.pk, middle.pk, old.pk]


def test_the_sync_history_is_cursor_paginated(api_client, read_key, shop_a):
    now = timezone.now()
    SyncRun.objects.bulk_create(
        SyncRun(tenant=shop_a.tenant, connection=shop_a, queued_at=now - timedelta(minutes=i)) for i in range(55)
    )
    first = api_client.get(f"/api/v1/integrations/{shop_a.pk}/sync-runs", **bearer(read_key)).json()
    assert len(first["results"]) == 50
    second = api_client.get(first["next"], **bearer(read_key)).json()
    assert len(second["results"]) == 5
    assert second["next"] is None
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 55


# --- Status overview ------------------------------------------------------------------------------


def test_status_lists_every_connection_with_its_sync_figures(api_client, read_key, shop_a, shop_b, make_connection):
    base = timezone.now() - timedelta(hours=1)
    make_run(shop_a, SyncStatus.SUCCEEDED, started_at=base, finished_at=base + timedelta(seconds=10))
    make_run(
        shop_a,
        SyncStatus.FAILED,
        started_at=base + timedelta(minutes=1),
        finished_at=base + timedelta(minutes=1, seconds=5),
        error="The platform answered 500.",
    )
    make_run(
        shop_a,
        SyncStatus.SUCCEEDED,
        started_at=base + timedelta(minutes=2),
        finished_at=base + timedelta(minutes=2, seconds=20),
    )
    make_run(shop_a, SyncStatus.RUNNING, started_at=timezone.now())
    make_run(shop_a, SyncStatus.QUEUED)
    woo = make_connection(shop_a.tenant, "woocommerce", "Alpha woo", last_error="Could not connect.")

    response = api_client.get("/api/v1/integrations/status", **bearer(read_key))
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) == {"Alpha shop", "Alpha woo"}
    shop = rows["Alpha shop"]
    assert shop["id"] == shop_a.pk
    assert shop["platform"] == "shopify"
    assert shop["status"] == ConnectionStatus.UNTESTED
    stats = shop["stats"]
    assert stats["total"] == 3
    assert stats["successful"] == 2
    assert stats["failed"] == 1
    assert stats["running"] == 1
    assert stats["success_rate"] == 66.7
    assert stats["average_duration"] == 15.0
    assert stats["last_duration"] == 20.0
    assert stats["last_status"] == SyncStatus.SUCCEEDED
    assert rows["Alpha woo"]["id"] == woo.pk
    assert rows["Alpha woo"]["last_error"] == "Could not connect."
    assert rows["Alpha woo"]["stats"]["total"] == 0
    assert rows["Alpha woo"]["stats"]["success_rate"] is None
    assert "credentials" not in shop
    assert SECRET not in response.content.decode()


def test_status_is_not_read_as_a_connection_id(api_client, read_key, shop_a):
    for path in ("/api/v1/integrations/status", "/api/v1/integrations/status/"):
        response = api_client.get(path, **bearer(read_key))
        assert response.status_code == 200
        assert "results" in response.json()


def test_status_needs_integrations_read(api_client, tenant_a, shop_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="orders only", scopes=["orders:read"])
    response = api_client.get("/api/v1/integrations/status", **bearer(raw))
    assert response.status_code == 403
    assert "integrations:read" in response.json()["error"]["message"]


# --- Query counts ---------------------------------------------------------------------------------


def count_queries(client, path: str, raw_key: str) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(path, **bearer(raw_key))
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("path", ["/api/v1/integrations", "/api/v1/integrations/status"])
def test_connection_lists_take_the_same_queries_for_one_or_many_connections(
    api_client, read_key, make_connection, tenant_a, path
):
    make_run(make_connection(tenant_a, "shopify", "first", credentials={"shop_domain": "a"}), seconds=3)
    api_client.get(path, **bearer(read_key))  # the key's last_used_at is written once
    few = count_queries(api_client, path, read_key)
    for n in range(5):
        make_run(make_connection(tenant_a, "woocommerce", f"more {n}", credentials={"site_url": "x"}), seconds=3)
    assert count_queries(api_client, path, read_key) == few


def test_the_sync_history_takes_the_same_queries_for_one_or_many_runs(api_client, read_key, shop_a):
    path = f"/api/v1/integrations/{shop_a.pk}/sync-runs"
    make_run(shop_a)
    api_client.get(path, **bearer(read_key))
    few = count_queries(api_client, path, read_key)
    for _ in range(5):
        make_run(shop_a)
    assert count_queries(api_client, path, read_key) == few
