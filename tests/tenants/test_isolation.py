"""One tenant never sees another's data: not in the dashboard, not in the API, not by guessing ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from commerce.models import Order
from integrations.models import Connection
from tenants.models import ApiKey, AuditLog, Membership, Role, TenantStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member_a(make_member, tenant_a):
    return make_member(tenant_a)


@pytest.fixture
def order_a(make_connection, make_order, tenant_a):
    return make_order(make_connection(tenant_a), number="A-7001")


@pytest.fixture
def order_b(make_connection, make_order, tenant_b):
    return make_order(make_connection(tenant_b), number="B-9002")


@pytest.fixture
def member_client(client, member_a):
    client.force_login(member_a)
    return client


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


# --- Dashboard ------------------------------------------------------------------------------------


def test_a_member_sees_their_own_order_in_the_dashboard(member_client, order_a):
    response = member_client.get(f"/dashboard/orders/{order_a.pk}/")
    assert response.status_code == 200
    assert "Order #A-7001" in response.content.decode()


def test_a_member_gets_404_for_another_tenants_order_in_the_dashboard(member_client, order_a, order_b):
    response = member_client.get(f"/dashboard/orders/{order_b.pk}/")
    assert response.status_code == 404
    assert "B-9002" not in response.content.decode()


def test_the_dashboard_order_list_shows_only_the_members_tenant(member_client, order_a, order_b):
    content = member_client.get("/dashboard/orders/").content.decode()
    assert "#A-7001" in content
    assert "B-9002" not in content


def test_a_search_in_the_dashboard_order_list_never_reaches_another_tenant(member_client, order_a, order_b):
    content = member_client.get("/dashboard/orders/", {"q": "B-9002"}).content.decode()
    assert "No orders." in content
    assert "#B-9002" not in content


def test_the_dashboard_overview_counts_and_lists_only_the_members_tenant(
    member_client, make_order, order_a, order_b, tenant_b
):
    make_order(Connection.objects.for_tenant(tenant_b).get(), number="B-9003")
    response = member_client.get("/dashboard/")
    content = response.content.decode()
    assert response.context["order_count"] == 1
    assert "#A-7001" in content
    assert "B-900" not in content


# --- API ------------------------------------------------------------------------------------------


def test_an_api_key_reads_its_own_tenants_order(api_client, api_key, order_a):
    _, raw = api_key
    response = api_client.get(f"/api/v1/orders/{order_a.pk}", **bearer(raw))
    assert response.status_code == 200
    assert response.json()["number"] == "A-7001"


def test_an_api_key_gets_404_for_another_tenants_order(api_client, api_key, order_a, order_b):
    _, raw = api_key
    response = api_client.get(f"/api/v1/orders/{order_b.pk}", **bearer(raw))
    assert response.status_code == 404
    assert "B-9002" not in response.content.decode()


def test_a_signed_in_member_gets_404_for_another_tenants_order_in_the_api(api_client, member_a, order_b):
    api_client.force_login(member_a)
    response = api_client.get(f"/api/v1/orders/{order_b.pk}")
    assert response.status_code == 404
    assert "B-9002" not in response.content.decode()


def test_a_signed_in_member_reads_their_own_order_in_the_api(api_client, member_a, order_a):
    api_client.force_login(member_a)
    response = api_client.get(f"/api/v1/orders/{order_a.pk}")
    assert response.status_code == 200
    assert response.json()["number"] == "A-7001"


def test_the_api_order_list_for_a_key_contains_only_its_tenants_orders(api_client, api_key, order_a, order_b):
    _, raw = api_key
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 200
    assert [o["number"] for o in response.json()["results"]] == ["A-7001"]


def test_the_api_order_list_for_a_signed_in_member_contains_only_their_tenants_orders(
    api_client, member_a, order_a, order_b
):
    api_client.force_login(member_a)
    response = api_client.get("/api/v1/orders")
    assert [o["number"] for o in response.json()["results"]] == ["A-7001"]


def test_another_tenants_api_key_does_not_widen_a_members_view(api_client, member_a, tenant_b, order_a, order_b):
    """A key decides the tenant, whoever is signed in: B's key sees B's orders only, never A's too."""
    _, raw_b = ApiKey.generate(tenant=tenant_b, name="b key")
    api_client.force_login(member_a)
    response = api_client.get("/api/v1/orders", **bearer(raw_b))
    assert [o["number"] for o in response.json()["results"]] == ["B-9002"]


def test_the_order_api_answers_with_and_without_a_trailing_slash(api_client, api_key, order_a):
    _, raw = api_key
    assert api_client.get("/api/v1/orders", **bearer(raw)).status_code == 200
    assert api_client.get("/api/v1/orders/", **bearer(raw)).status_code == 200
    assert api_client.get(f"/api/v1/orders/{order_a.pk}", **bearer(raw)).status_code == 200
    assert api_client.get(f"/api/v1/orders/{order_a.pk}/", **bearer(raw)).status_code == 200


def test_the_api_order_list_is_newest_placed_first(api_client, api_key, make_order, order_a):
    _, raw = api_key
    make_order(order_a.connection, number="A-7000", placed_at=order_a.placed_at - timedelta(hours=1))
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert [o["number"] for o in response.json()["results"]] == ["A-7001", "A-7000"]


# --- for_tenant() ---------------------------------------------------------------------------------


def test_for_tenant_none_returns_no_rows_even_when_rows_exist(order_a, order_b, member_a, api_key):
    AuditLog.objects.create(tenant=order_a.tenant, action="test")
    assert Order.objects.count() == 2
    assert not Order.objects.for_tenant(None).exists()
    assert not Connection.objects.for_tenant(None).exists()
    assert not Membership.objects.for_tenant(None).exists()
    assert not ApiKey.objects.for_tenant(None).exists()
    assert not AuditLog.objects.for_tenant(None).exists()


def test_for_tenant_returns_only_that_tenants_rows(order_a, order_b, tenant_a):
    assert list(Order.objects.for_tenant(tenant_a)) == [order_a]
    assert list(Order.objects.for_tenant(tenant_a.pk)) == [order_a]


# --- Who may open the dashboard -------------------------------------------------------------------


def test_a_user_without_membership_gets_403_on_the_dashboard(client):
    user = get_user_model().objects.create_user("loner@example.com", "loner@example.com", "pw-for-tests-1")
    client.force_login(user)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert "not a member of any client" in response.content.decode()


def test_staff_without_membership_are_redirected_to_the_admin(client, superadmin):
    client.force_login(superadmin)
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Switching tenants ----------------------------------------------------------------------------


@pytest.fixture
def two_tenant_member(member_a, tenant_b):
    Membership.objects.create(tenant=tenant_b, user=member_a, role=Role.VIEWER)
    return member_a


def test_a_member_of_two_tenants_starts_in_the_first_by_name(client, two_tenant_member, order_a, order_b):
    client.force_login(two_tenant_member)
    content = client.get("/dashboard/orders/").content.decode()
    assert "#A-7001" in content
    assert "B-9002" not in content


def test_a_member_of_two_tenants_can_switch_to_the_other(client, two_tenant_member, tenant_b, order_a, order_b):
    client.force_login(two_tenant_member)
    response = client.post(f"/dashboard/switch/{tenant_b.slug}/")
    assert response.status_code == 302
    content = client.get("/dashboard/orders/").content.decode()
    assert "#B-9002" in content
    assert "A-7001" not in content


def test_after_switching_the_first_tenants_order_is_404(client, two_tenant_member, tenant_b, order_a):
    client.force_login(two_tenant_member)
    client.post(f"/dashboard/switch/{tenant_b.slug}/")
    assert client.get(f"/dashboard/orders/{order_a.pk}/").status_code == 404


def test_switching_to_a_tenant_one_is_not_a_member_of_is_404(client, member_a, tenant_b, order_b):
    client.force_login(member_a)
    response = client.post(f"/dashboard/switch/{tenant_b.slug}/")
    assert response.status_code == 404
    assert client.get(f"/dashboard/orders/{order_b.pk}/").status_code == 404


def test_switching_to_a_suspended_tenant_is_404(client, two_tenant_member, tenant_b):
    tenant_b.status = TenantStatus.SUSPENDED
    tenant_b.save()
    client.force_login(two_tenant_member)
    assert client.post(f"/dashboard/switch/{tenant_b.slug}/").status_code == 404


def test_switching_needs_a_post(client, two_tenant_member, tenant_b):
    client.force_login(two_tenant_member)
    assert client.get(f"/dashboard/switch/{tenant_b.slug}/").status_code == 405


# --- Suspension -----------------------------------------------------------------------------------


def test_a_suspended_tenants_user_gets_403_on_the_dashboard(member_client, tenant_a):
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    response = member_client.get("/dashboard/")
    assert response.status_code == 403
    assert "Account suspended" in response.content.decode()


def test_a_suspended_tenants_user_is_signed_out(member_client, tenant_a):
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    member_client.get("/dashboard/")
    assert "_auth_user_id" not in member_client.session
    follow_up = member_client.get("/dashboard/")
    assert follow_up.status_code == 302
    assert follow_up["Location"].startswith("/accounts/login/")


def test_a_member_of_a_suspended_and_an_active_tenant_works_in_the_active_one(
    client, two_tenant_member, tenant_a, order_a, order_b
):
    tenant_a.status = TenantStatus.SUSPENDED
    tenant_a.save()
    client.force_login(two_tenant_member)
    response = client.get("/dashboard/orders/")
    assert response.status_code == 200
    assert "#B-9002" in response.content.decode()
    assert "A-7001" not in response.content.decode()


# --- API key scopes and the JSON error shape ------------------------------------------------------


def test_a_key_without_orders_read_gets_403_naming_the_scope(api_client, tenant_a, order_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="products only", scopes=["products:read"])
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 403
    assert "orders:read" in response.json()["error"]["message"]


def test_a_key_without_orders_read_cannot_read_one_order_either(api_client, tenant_a, order_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="products only", scopes=["products:read"])
    response = api_client.get(f"/api/v1/orders/{order_a.pk}", **bearer(raw))
    assert response.status_code == 403
    assert "A-7001" not in response.content.decode()


def test_a_401_has_the_json_error_shape(api_client):
    response = api_client.get("/api/v1/orders")
    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


def test_a_403_has_the_json_error_shape(api_client, tenant_a):
    _, raw = ApiKey.generate(tenant=tenant_a, name="no scopes", scopes=[])
    response = api_client.get("/api/v1/orders", **bearer(raw))
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")


def test_a_404_for_another_tenants_order_has_the_json_error_shape(api_client, api_key, order_b):
    _, raw = api_key
    response = api_client.get(f"/api/v1/orders/{order_b.pk}", **bearer(raw))
    assert_error_shape(response.json(), "not_found")
    assert response.json()["error"]["message"] == "Not found."


def test_a_404_for_an_unknown_api_path_has_the_json_error_shape(api_client, api_key):
    _, raw = api_key
    response = api_client.get("/api/v1/no-such-thing", **bearer(raw))
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_a_signed_in_user_without_membership_gets_403_from_the_api(api_client):
    user = get_user_model().objects.create_user("loner@example.com", "loner@example.com", "pw-for-tests-1")
    api_client.force_login(user)
    response = api_client.get("/api/v1/orders")
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert "not a member" in response.json()["error"]["message"]
