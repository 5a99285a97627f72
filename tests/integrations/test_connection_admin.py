from __future__ import annotations

import re

import pytest
from django.db import connection as db

from integrations.models import Connection
from tenants.models import AuditLog, Tenant

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/integrations/connection/add/"
TOKEN = "shpat_0123456789abcdef0123456789abcd"
NEW_TOKEN = "shpat_fedcba9876543210fedcba98765xyz"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher takes a noticeable fraction of a second per password, on every login here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


@pytest.fixture
def shopify(make_connection, tenant_a) -> Connection:
    return make_connection(
        tenant_a,
        name="Alpha Shopify",
        credentials={"shop_domain": "alpha.myshopify.com", "access_token": TOKEN},
    )


def change_url(conn: Connection) -> str:
    return f"/admin/integrations/connection/{conn.pk}/change/"


def shopify_form(owner: Tenant, **overrides: str) -> dict[str, str]:
    data = {
        "tenant": str(owner.pk),
        "platform": "shopify",
        "name": "Alpha Shopify",
        "cred_shop_domain": "alpha.myshopify.com",
        "cred_access_token": "",
        "cred_client_id": "",
        "cred_client_secret": "",
        "sync_frequency": "1h",
        "enabled": "on",
        "base_url": "",
    }
    data.update(overrides)
    return data


def test_the_add_page_without_a_platform_shows_only_the_first_step(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    assert "Choose the platform to see its credential fields." in page
    assert 'name="platform"' in page
    assert "cred_" not in page


def test_the_add_page_for_shopify_shows_the_catalogue_credential_fields(admin_client):
    page = admin_client.get(ADD_URL, {"platform": "shopify"}).content.decode()

    assert "Shopify credentials" in page
    for label in ("Shop domain", "Admin API access token", "Client ID", "Client secret"):
        assert label in page
    assert 'name="cred_access_token"' in page
    assert 'type="password"' in page


def test_creating_a_shopify_connection_stores_its_credentials_encrypted(admin_client, tenant_a):
    response = admin_client.post(ADD_URL, shopify_form(tenant_a, cred_access_token=TOKEN))

    assert response.status_code == 302
    conn = Connection.objects.get(tenant=tenant_a, name="Alpha Shopify")
    assert conn.platform == "shopify"
    assert conn.credentials == {"shop_domain": "alpha.myshopify.com", "access_token": TOKEN}
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [conn.pk])
        assert TOKEN.encode() not in bytes(cursor.fetchone()[0])


def test_creating_a_connection_is_audited_with_field_names_only(admin_client, tenant_a, superadmin):
    admin_client.post(ADD_URL, shopify_form(tenant_a, cred_access_token=TOKEN))

    entry = AuditLog.objects.get(action="connection.created")
    assert entry.tenant == tenant_a
    assert entry.actor == superadmin
    assert sorted(entry.details["fields"]) == ["access_token", "shop_domain"]
    assert TOKEN not in str(entry.details) + entry.target


def test_a_rejected_add_form_does_not_echo_the_secret_back(admin_client, tenant_a):
    response = admin_client.post(ADD_URL, shopify_form(tenant_a, cred_shop_domain="", cred_access_token=TOKEN))

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert TOKEN not in response.content.decode()
    assert not Connection.objects.exists()


def test_the_change_page_never_contains_the_secret(admin_client, shopify):
    page = admin_client.get(change_url(shopify)).content.decode()

    assert TOKEN not in page


def test_the_change_page_shows_that_the_secret_is_set_and_its_last_four_characters(admin_client, shopify):
    page = admin_client.get(change_url(shopify)).content.decode()

    assert "Currently set, ending …abcd; leave empty to keep it." in page


def test_the_change_page_shows_non_secret_credentials_with_their_value(admin_client, shopify):
    page = admin_client.get(change_url(shopify)).content.decode()

    assert 'name="cred_shop_domain" value="alpha.myshopify.com"' in page


def test_saving_with_the_secret_left_empty_keeps_the_stored_secret(admin_client, shopify, tenant_a):
    response = admin_client.post(change_url(shopify), shopify_form(tenant_a, name="Alpha (renamed)"))

    assert response.status_code == 302
    shopify.refresh_from_db()
    assert shopify.name == "Alpha (renamed)"
    assert shopify.credentials["access_token"] == TOKEN


def test_saving_with_the_secret_left_empty_records_no_credential_change(admin_client, shopify, tenant_a):
    admin_client.post(change_url(shopify), shopify_form(tenant_a, name="Alpha (renamed)"))

    assert not AuditLog.objects.filter(action="connection.credentials_changed").exists()


def test_submitting_a_new_secret_replaces_the_stored_one(admin_client, shopify, tenant_a):
    admin_client.post(change_url(shopify), shopify_form(tenant_a, cred_access_token=NEW_TOKEN))

    shopify.refresh_from_db()
    assert shopify.credentials == {"shop_domain": "alpha.myshopify.com", "access_token": NEW_TOKEN}


def test_changing_credentials_is_audited_with_field_names_but_never_values(admin_client, shopify, tenant_a):
    admin_client.post(
        change_url(shopify),
        shopify_form(tenant_a, cred_shop_domain="alpha-eu.myshopify.com", cred_access_token=NEW_TOKEN),
    )

    entry = AuditLog.objects.get(action="connection.credentials_changed")
    assert entry.tenant == tenant_a
    assert entry.target == str(shopify)
    assert sorted(entry.details["fields"]) == ["access_token", "shop_domain"]
    recorded = str(entry.details) + entry.target + entry.actor_label
    assert NEW_TOKEN not in recorded
    assert TOKEN not in recorded
    assert "alpha-eu.myshopify.com" not in recorded


def test_the_admin_history_never_contains_the_secret(admin_client, shopify, tenant_a):
    admin_client.post(change_url(shopify), shopify_form(tenant_a, cred_access_token=NEW_TOKEN))

    page = admin_client.get(f"/admin/integrations/connection/{shopify.pk}/history/").content.decode()

    assert "Admin API access token" in page
    assert NEW_TOKEN not in page


def test_tenant_and_platform_are_shown_disabled_on_an_existing_connection(admin_client, shopify):
    page = admin_client.get(change_url(shopify)).content.decode()

    assert re.search(r'<select name="tenant"[^>]* disabled', page)
    assert re.search(r'<select name="platform"[^>]* disabled', page)


def test_tenant_and_platform_cannot_be_changed_on_an_existing_connection(admin_client, shopify, tenant_a, tenant_b):
    response = admin_client.post(
        change_url(shopify), shopify_form(tenant_a, tenant=str(tenant_b.pk), platform="woocommerce")
    )

    assert response.status_code == 302
    shopify.refresh_from_db()
    assert shopify.tenant == tenant_a
    assert shopify.platform == "shopify"
    assert shopify.credentials["access_token"] == TOKEN
