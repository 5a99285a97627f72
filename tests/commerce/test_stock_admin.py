"""The SuperAdmin's stock pages: editing a SKU's figure pushes it to every listing, listings added
or changed by hand are pinned and pushed to, failed pushes are listed with their reason and pushed
again by an action, and conflicts are settled by the accept-hub and accept-platform actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from commerce.models import (
    ConflictStrategy,
    LinkSource,
    PushStatus,
    StockChannelSettings,
    StockConflict,
    StockListing,
)
from commerce.pushes import PushResult

from .stock_world import (  # noqa: F401  (the fixtures)
    SKU,
    ago,
    commit_fixture,
    item,
    listing_on,
    mug_fixture,
    pusher_fixture,
    run_pushes,
    shop_fixture,
    sync_level,
    woo_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def item_form(mug, listings, **changes) -> dict:
    """The SKU's change form as the admin posts it, with `changes`."""
    data = {
        "title": mug.title,
        "on_hand": str(mug.on_hand),
        "reorder_point": "",
        "listings-TOTAL_FORMS": str(len(listings)),
        "listings-INITIAL_FORMS": str(len(listings)),
        "listings-MIN_NUM_FORMS": "0",
        "listings-MAX_NUM_FORMS": "1000",
    }
    for n, listing in enumerate(listings):
        data |= {
            f"listings-{n}-id": str(listing.pk),
            f"listings-{n}-item": str(mug.pk),
            f"listings-{n}-connection": str(listing.connection_id),
            f"listings-{n}-product_external_id": listing.product_external_id,
            f"listings-{n}-variant_external_id": listing.variant_external_id,
            f"listings-{n}-location_id": listing.location_id,
        }
    return data | changes


def test_editing_the_figure_in_the_admin_pushes_it_to_every_listing(admin_client, mug, shop, woo, pusher, commit):
    listings = list(mug.listings.order_by("pk"))
    with commit():
        response = admin_client.post(
            f"/admin/commerce/stockitem/{mug.pk}/change/", item_form(mug, listings, on_hand="2")
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    run_pushes()
    assert item().on_hand == 2
    assert (pusher.to(shop), pusher.to(woo)) == ([2], [2])


def test_a_listing_changed_in_the_admin_is_pinned_and_pushed_to(admin_client, mug, shop, woo, pusher, commit):
    listings = list(mug.listings.order_by("pk"))
    woo_row = next(n for n, listing in enumerate(listings) if listing.connection_id == woo.pk)
    form = item_form(mug, listings, **{f"listings-{woo_row}-location_id": "shelf-b"})
    with commit():
        admin_client.post(f"/admin/commerce/stockitem/{mug.pk}/change/", form)
    run_pushes()
    changed = listing_on(woo)
    assert (changed.location_id, changed.linked_by) == ("shelf-b", LinkSource.MANUAL)
    assert changed.variant.external_id == "woocommerce-V1"
    assert [p.location_id for p in pusher.pushed] == ["shelf-b"]


def test_a_listing_on_another_clients_connection_is_refused(admin_client, mug, make_connection, tenant_b):
    theirs = make_connection(tenant_b, "shopify", name="Beta shop")
    response = admin_client.post(
        "/admin/commerce/stocklisting/add/",
        {
            "item": mug.pk,
            "connection": theirs.pk,
            "product_external_id": "",
            "variant_external_id": "",
            "location_id": "",
        },
    )
    assert response.status_code == 200
    assert "another client" in response.content.decode()
    assert not StockListing.objects.filter(connection=theirs).exists()


def test_failed_pushes_are_listed_with_their_reason_and_pushed_again(admin_client, mug, woo, pusher, commit):
    from commerce import stock

    pusher.answers[woo.pk] = [PushResult(ok=False, message="Invalid product ID.")]
    with commit():
        stock.set_stock(mug, 4, via="test")
    run_pushes()
    page = admin_client.get("/admin/commerce/stocklisting/", {"push_status__exact": "failed"}).content.decode()
    assert "Invalid product ID." in page

    failed = listing_on(woo)
    with commit():
        admin_client.post("/admin/commerce/stocklisting/", {"action": "push_again", ACTION_CHECKBOX_NAME: [failed.pk]})
    run_pushes()
    assert listing_on(woo).push_status == PushStatus.PUSHED


@pytest.mark.parametrize(
    ("action", "on_hand", "status"), [("accept_hub", 10, "accepted_hub"), ("accept_platform", 3, "accepted_platform")]
)
def test_conflicts_are_settled_by_the_admins_actions(admin_client, mug, woo, commit, pusher, action, on_hand, status):
    StockChannelSettings.objects.create(tenant=woo.tenant, connection=woo, conflict_strategy=ConflictStrategy.MANUAL)
    sync_level(commit, woo, 3, at=ago(1))
    conflict = StockConflict.objects.get()
    listed = admin_client.get("/admin/commerce/stockconflict/").content.decode()
    assert f'value="{conflict.pk}"' in listed and SKU in listed
    with commit():
        admin_client.post("/admin/commerce/stockconflict/", {"action": action, ACTION_CHECKBOX_NAME: [conflict.pk]})
    run_pushes()
    assert item().on_hand == on_hand
    assert StockConflict.objects.get().status == status
