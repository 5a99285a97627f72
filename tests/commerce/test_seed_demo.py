from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from commerce.models import Customer, Order, OrderLine, Product, ProductVariant, Refund
from integrations.models import Connection
from tenants.models import Membership, Role, Tenant

pytestmark = pytest.mark.django_db

DEMO_SLUGS = {"acme-outdoor", "bella-boutique"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher takes a noticeable fraction of a second per password, on every login here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = [Tenant, get_user_model(), Membership, Connection, Customer, Product, ProductVariant, Order, OrderLine]
    counts = {model.__name__: model.objects.count() for model in models}
    counts["Refund"] = Refund.objects.count()
    return counts


def test_seed_demo_creates_the_demo_tenants_marked_as_demo():
    seed()

    assert set(Tenant.objects.values_list("slug", flat=True)) == DEMO_SLUGS
    assert all(Tenant.objects.values_list("is_demo", flat=True))


def test_each_demo_tenant_has_an_owner_who_signs_in_with_the_demo_password(client):
    output = seed()

    for slug in DEMO_SLUGS:
        username = f"owner@{slug}.example"
        membership = Membership.objects.get(tenant__slug=slug, user__username=username)
        assert membership.role == Role.OWNER
        assert client.login(username=username, password=settings.DEMO_PASSWORD)
        assert f"client login {username} / {settings.DEMO_PASSWORD}" in output


def test_demo_connections_are_marked_as_demo_and_never_sync_on_their_own():
    seed()

    connections = Connection.objects.all()
    assert connections.count() == 6
    assert all(c.is_demo for c in connections)
    assert not any(c.enabled for c in connections)


def test_seed_demo_creates_a_few_hundred_orders_each_with_lines():
    seed()

    assert 300 <= Order.objects.count() <= 1000
    assert not Order.objects.filter(lines__isnull=True).exists()
    assert OrderLine.objects.count() >= Order.objects.count()


def test_every_demo_row_belongs_to_the_tenant_of_its_connection():
    seed()

    for model in (Customer, Product, ProductVariant, Order, OrderLine, Refund):
        for tenant_id, connection_tenant_id in model.objects.values_list("tenant_id", "connection__tenant_id"):
            assert tenant_id == connection_tenant_id, model.__name__


def test_bella_boutique_sells_in_more_than_one_currency():
    seed()

    currencies = set(Order.objects.filter(tenant__slug="bella-boutique").values_list("currency", flat=True))
    assert currencies == {"GBP", "EUR"}


def test_running_seed_demo_twice_creates_no_duplicates():
    seed()
    first = row_counts()

    seed()

    assert row_counts() == first
    assert first["Refund"] > 0


def test_running_seed_demo_again_keeps_the_owners_password(client):
    seed()
    seed()

    assert client.login(username="owner@acme-outdoor.example", password=settings.DEMO_PASSWORD)


# --- ensure_superadmin ----------------------------------------------------------------------------


@pytest.fixture
def superadmin_env(monkeypatch):
    monkeypatch.setenv("SUPERADMIN_USERNAME", "hubadmin")
    monkeypatch.setenv("SUPERADMIN_PASSWORD", "a-long-admin-password")
    monkeypatch.delenv("SUPERADMIN_EMAIL", raising=False)


def ensure_superadmin(*args: str) -> str:
    out = StringIO()
    call_command("ensure_superadmin", *args, stdout=out)
    return out.getvalue()


def test_ensure_superadmin_creates_a_staff_superuser_who_can_sign_in(superadmin_env, client):
    output = ensure_superadmin()

    user = get_user_model().objects.get(username="hubadmin")
    assert user.is_staff and user.is_superuser and user.is_active
    assert client.login(username="hubadmin", password="a-long-admin-password")
    assert "Superadmin login: hubadmin / a-long-admin-password" in output


def test_ensure_superadmin_twice_keeps_one_user_and_its_password(superadmin_env, client, monkeypatch):
    ensure_superadmin()
    monkeypatch.setenv("SUPERADMIN_PASSWORD", "a-different-password")

    output = ensure_superadmin()

    assert get_user_model().objects.filter(username="hubadmin").count() == 1
    assert client.login(username="hubadmin", password="a-long-admin-password")
    assert "password unchanged" in output


def test_ensure_superadmin_with_reset_password_sets_the_new_one(superadmin_env, client, monkeypatch):
    ensure_superadmin()
    monkeypatch.setenv("SUPERADMIN_PASSWORD", "a-different-password")

    ensure_superadmin("--reset-password")

    assert client.login(username="hubadmin", password="a-different-password")


@override_settings(DEBUG=False)
def test_ensure_superadmin_in_production_without_a_password_generates_and_prints_one(monkeypatch, client):
    monkeypatch.setenv("SUPERADMIN_USERNAME", "hubadmin")
    monkeypatch.delenv("SUPERADMIN_PASSWORD", raising=False)

    output = ensure_superadmin()

    password = output.strip().rsplit(" / ", 1)[1]
    assert password != settings.DEMO_PASSWORD
    assert len(password) >= 16
    assert client.login(username="hubadmin", password=password)


def test_demo_skus_are_linked_to_stock_items_once():
    from commerce.models import StockItem, StockListing

    seed()
    skus = set(ProductVariant.objects.exclude(sku="").values_list("tenant_id", "sku"))
    assert set(StockItem.objects.values_list("tenant_id", "sku")) <= skus
    assert StockItem.objects.exists() and StockListing.objects.exists()
    before = StockItem.objects.count()
    seed()
    assert StockItem.objects.count() == before


def test_the_demo_queues_no_pushes_to_its_made_up_shops():
    from django_q.models import OrmQ

    from commerce.models import PushStatus, StockListing

    seed()
    assert not [q for q in OrmQ.objects.all() if q.task["func"].startswith("commerce.stock_push")]
    assert set(StockListing.objects.values_list("push_status", flat=True)) <= {PushStatus.SKIPPED, PushStatus.NEVER}


def test_seed_demo_gives_each_demo_tenant_segments_for_the_campaign_pages():
    seed()
    seed()  # idempotent

    from campaigns import segments
    from campaigns.models import Segment

    for tenant in Tenant.objects.filter(is_demo=True):
        names = set(Segment.objects.for_tenant(tenant).values_list("name", flat=True))
        assert names == {"Best customers", "Lapsed: no order in 90 days"}
        best = Segment.objects.for_tenant(tenant).get(name="Best customers")
        assert segments.count(tenant, best.rules) > 0
