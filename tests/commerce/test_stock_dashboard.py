"""The client's stock pages: every SKU with its figure and the state of its pushes, one SKU's page
with its listings, levels, conflicts and oversold sales, and the forms that set stock (one SKU, or
a CSV), relink listings by hand and choose the settings. Another tenant's SKU is a 404."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from commerce.models import (
    ConflictStatus,
    ConflictStrategy,
    LinkSource,
    Oversell,
    PushStatus,
    StockAlertSettings,
    StockChannelSettings,
    StockConflict,
    StockItem,
)
from commerce.pushes import PushResult
from tenants.models import Role

from .stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    ago,
    commit_fixture,
    item,
    listing_on,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    sell,
    shop_fixture,
    sync_level,
    sync_product,
    woo_fixture,
)

pytestmark = pytest.mark.django_db
PAGE = f"/dashboard/stock/sku/{SKU}/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.OWNER))
    return client


@pytest.fixture
def viewer(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.VIEWER))
    return client


def content(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def kpi(page: str, name: str) -> str:
    match = re.search(rf'data-kpi="{re.escape(name)}".*?<span class="value">(.*?)</span>', page, re.S)
    assert match, f"no KPI card {name}"
    return match.group(1).strip()


def section(page: str, element_id: str) -> str:
    return page[page.index(f'id="{element_id}"') :]


def test_the_stock_page_lists_every_sku_with_its_figure_and_state(owner, mug, commit, shop):
    sync_product(commit, shop, sku="LAMP-1", available=2, key="2")
    page = content(owner.get("/dashboard/stock/"))
    table = section(page, "stock-items")
    assert table.index("LAMP-1") < table.index(SKU)  # in SKU order
    row = re.search(r'<tr data-sku="LAMP-1">(.*?)</tr>', table, re.S).group(1)
    assert ">2<" in row and "Low" in row
    assert (kpi(page, "hub-skus"), kpi(page, "hub-low-stock"), kpi(page, "hub-quantity")) == ("2", "1", "12")
    low_only = section(content(owner.get("/dashboard/stock/", {"show": "low"})), "stock-items")
    assert "LAMP-1" in low_only and f'data-sku="{SKU}"' not in low_only


def test_a_failed_push_shows_on_the_list_and_on_the_skus_page_with_the_platforms_reason(
    owner, mug, woo, pusher, commit
):
    pusher.answers[woo.pk] = [PushResult(ok=False, message="Invalid product ID.")]
    with commit():
        owner.post(PAGE, {"action": "set", "quantity": "6", "reorder_point": ""})
    run_pushes()
    assert "1 push failed" in section(content(owner.get("/dashboard/stock/")), "stock-items")
    listing = listing_on(woo)
    row = re.search(rf'<tr data-listing="{listing.pk}">(.*?)</tr>', content(owner.get(PAGE)), re.S).group(1)
    assert "Failed" in row and "Invalid product ID." in row

    with commit():
        owner.post(PAGE, {"action": "push", "listing": listing.pk})  # "Push again", and it lands
    run_pushes()
    assert listing_on(woo).push_status == PushStatus.PUSHED
    assert "6 landed" in content(owner.get(PAGE))


def test_setting_stock_on_the_skus_page_pushes_it_everywhere(owner, mug, shop, woo, pusher, commit):
    with commit():
        response = owner.post(PAGE, {"action": "set", "quantity": "3", "reorder_point": "4"})
    assert response.status_code == 302
    run_pushes()
    assert (item().on_hand, item().reorder_point) == (3, 4)
    assert (pusher.to(shop), pusher.to(woo)) == ([3], [3])


def test_the_quick_set_on_the_list(owner, mug, shop, woo, pusher, commit):
    with commit():
        owner.post("/dashboard/stock/set/", {"sku": SKU, "quantity": "8", "next": "/dashboard/stock/?q=MUG"})
    run_pushes()
    assert item().on_hand == 8 and pusher.to(woo) == [8]


def test_a_csv_sets_stock_and_a_wrong_one_sets_nothing(owner, mug, woo, pusher, commit):
    with commit():
        response = owner.post(
            "/dashboard/stock/upload/", {"file": SimpleUploadedFile("s.csv", b"sku,quantity\nMUG-1,5\n")}, follow=True
        )
    run_pushes()
    assert "Stock set for 1 SKU(s)" in content(response)
    assert item().on_hand == 5 and pusher.to(woo) == [5]

    response = owner.post(
        "/dashboard/stock/upload/", {"file": SimpleUploadedFile("s.csv", b"MUG-1,2\nGONE-1,3\n")}, follow=True
    )
    assert "Nothing was set. No stock item has the SKU GONE-1" in content(response)
    assert item().on_hand == 5


def test_a_listing_moved_to_another_sku_by_hand_stays_there_after_a_sync(owner, mug, shop, commit, pusher):
    other = StockItem.objects.create(tenant=mug.tenant, sku="MUG-GIFT", on_hand=4)
    with commit():
        owner.post(PAGE, {"action": "move_listing", "listing": listing_on(shop).pk, "sku": "MUG-GIFT"})
    moved = listing_on(shop, "MUG-GIFT")
    assert moved.linked_by == LinkSource.MANUAL
    run_pushes()
    assert pusher.to(shop) == [4]  # the figure of the SKU it now counts towards
    sync_product(commit, shop, available=10, at=ago(1))
    assert listing_on(shop, "MUG-GIFT").pk == moved.pk
    assert other.listings.count() == 1 and mug.listings.count() == 1


def test_a_listing_linked_by_hand_points_at_the_synced_variant_and_gets_the_figure(
    owner, mug, commit, pusher, make_connection, tenant_a
):
    ebay = make_connection(tenant_a, "ebay", name="Alpha eBay")
    with commit():
        owner.post(
            PAGE,
            {"action": "add_listing", "connection": ebay.pk, "variant_external_id": "v-77", "location_id": "default"},
        )
    run_pushes()
    listing = listing_on(ebay)
    assert (listing.linked_by, listing.variant_external_id, listing.location_id) == (
        LinkSource.MANUAL,
        "v-77",
        "default",
    )
    assert pusher.to(ebay) == [10]
    assert "Alpha eBay" in content(owner.get(PAGE))


def test_a_conflict_is_settled_from_the_skus_page(owner, mug, shop, woo, commit, pusher):
    StockChannelSettings.objects.create(tenant=woo.tenant, connection=woo, conflict_strategy=ConflictStrategy.MANUAL)
    sync_level(commit, woo, 3, at=ago(1))
    conflict = StockConflict.objects.get()
    assert f'data-conflict="{conflict.pk}"' in content(owner.get(PAGE))
    assert "wait" in section(content(owner.get("/dashboard/stock/")), "stock-attention")
    with commit():
        owner.post(PAGE, {"action": "accept_platform", "conflict": conflict.pk})
    run_pushes()
    assert item().on_hand == 3 and pusher.to(shop) == [3]
    assert StockConflict.objects.get().status == ConflictStatus.ACCEPTED_PLATFORM


def test_an_oversold_sale_is_shown_until_dealt_with(owner, mug, shop, commit):
    StockItem.objects.filter(pk=mug.pk).update(on_hand=0)
    sell(commit, shop, (SKU, 1))
    oversell = Oversell.objects.get()
    assert f"#{oversell.order.number}" in section(content(owner.get(PAGE)), "oversells")
    owner.post(PAGE, {"action": "resolve_oversell", "oversell": oversell.pk})
    assert 'id="oversells"' not in content(owner.get(PAGE))


def test_owners_choose_the_email_and_each_connections_strategy(owner, mug, woo, tenant_a):
    owner.post("/dashboard/stock/settings/", {"email_owners": "on", f"strategy-{woo.pk}": "manual"})
    assert StockAlertSettings.objects.get(tenant=tenant_a).email_owners
    assert StockChannelSettings.objects.get(connection=woo).conflict_strategy == ConflictStrategy.MANUAL
    page = content(owner.get("/dashboard/stock/"))
    assert re.search(rf'name="strategy-{woo.pk}".*?<option value="manual" selected>', page, re.S)


def test_a_viewer_sees_stock_but_changes_nothing(viewer, mug, woo):
    page = content(viewer.get("/dashboard/stock/"))
    assert SKU in page and "stock/set/" not in page and 'id="stock-settings"' not in page
    assert viewer.post(PAGE, {"action": "set", "quantity": "1"}).status_code == 403
    assert viewer.post("/dashboard/stock/set/", {"sku": SKU, "quantity": "1"}).status_code == 403
    assert viewer.post("/dashboard/stock/settings/", {f"strategy-{woo.pk}": "manual"}).status_code == 403
    assert item().on_hand == 10 and not StockChannelSettings.objects.exists()


def test_another_tenants_sku_is_a_404_and_never_shown(client, make_member, tenant_b, mug):
    client.force_login(make_member(tenant_b, Role.OWNER))
    assert client.get(PAGE).status_code == 404
    assert client.post(PAGE, {"action": "set", "quantity": "0"}).status_code == 404
    assert client.post("/dashboard/stock/set/", {"sku": SKU, "quantity": "0"}).status_code == 404
    assert SKU not in content(client.get("/dashboard/stock/"))
    assert item().on_hand == 10
