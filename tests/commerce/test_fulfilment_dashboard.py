"""The client's fulfilment pages and the SuperAdmin's: orders still to ship across channels oldest
first with their age, the fulfil form, the CSV upload, each push's result, the figures, settings,
rules with their dry run; another tenant's orders and rules are 404, viewers only look."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from commerce.models import FulfillmentStatus, Fulfilment, FulfilmentRule, FulfilmentSettings, OrderStatus
from commerce.models import FulfilmentPushStatus as Status
from commerce.pushes import PushResult
from tenants.models import Role

from .test_fulfilment import FakePlatform, add_line, install, run_queued

pytestmark = pytest.mark.django_db
URL = "/dashboard/fulfilment/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def platform():
    fake = FakePlatform()
    restore = install(fake)
    yield fake
    restore()


@pytest.fixture
def owner(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    return client


@pytest.fixture
def viewer(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.VIEWER))
    return client


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


@pytest.fixture
def order(shop, make_order):
    order = make_order(shop, number="1001", placed_at=timezone.now() - timedelta(days=2, hours=3))
    add_line(order, "TENT-1", 2)
    return order


def page(client, url: str = URL, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def pending_numbers(content: str) -> list[str]:
    table = content[
        content.index('id="pending-orders"') : content.index("</table>", content.index('id="pending-orders"'))
    ]
    return re.findall(r'href="/dashboard/orders/\d+/">#([\w-]+)</a>', table)


def test_orders_to_ship_across_channels_are_listed_oldest_first_with_their_age(
    owner, platform, shop, order, make_connection, make_order, tenant_a, tenant_b
):
    amazon = make_connection(tenant_a, "amazon", name="Amazon EU")
    make_order(amazon, number="A-1", placed_at=timezone.now() - timedelta(days=5))
    make_order(shop, number="1002", placed_at=timezone.now() - timedelta(hours=1), fulfillment_status="partial")
    make_order(shop, number="1003", status=OrderStatus.CANCELLED)
    make_order(shop, number="1004", fulfillment_status=FulfillmentStatus.FULFILLED)
    make_order(make_connection(tenant_b, "shopify"), number="9999")

    content = page(owner)

    assert pending_numbers(content) == ["A-1", "1001", "1002"]
    assert "3 orders to ship" in content
    row = content[content.index(f'data-order="{order.pk}"') :]
    assert "Shopify" in row[:600] and "2 d 3 h" in row[:600]
    assert 'href="/dashboard/fulfilment/"' in page(owner, "/dashboard/")  # in the navigation


def test_the_fulfil_form_fulfils_and_the_push_result_is_shown(
    owner, platform, order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(
            f"/dashboard/fulfilment/orders/{order.pk}/fulfil/",
            {"tracking_number": "1Z001", "carrier": "ups", "notify_customer": "on", "next": f"{URL}?page=1"},
        )
    assert response.status_code == 302 and response["Location"] == f"{URL}?page=1"
    made = Fulfilment.objects.get()
    assert (made.order, made.carrier, made.notify_customer, made.source) == (order, "ups", True, "manual")
    run_queued()
    content = page(owner)
    assert f'data-fulfilment="{made.pk}"' in content
    assert 'data-push-status="pushed"' in content


def test_a_partial_quantity_from_the_form(owner, platform, order, make_order):
    add_line(order, "MAT-1", 1)
    tent = order.lines.get(sku="TENT-1")
    owner.post(f"/dashboard/fulfilment/orders/{order.pk}/fulfil/", {"carrier": "usps", f"qty-{tent.pk}": "1"})
    assert Fulfilment.objects.get().lines == [[tent.pk, 1]]


def test_a_refused_form_says_why(owner, platform, order):
    response = owner.post(f"/dashboard/fulfilment/orders/{order.pk}/fulfil/", {"carrier": "Pony Express"}, follow=True)
    assert "Order #1001 was not fulfilled: Unknown carrier “Pony Express”. Accepted: UPS" in response.content.decode()
    assert not Fulfilment.objects.exists()


def test_failed_and_retrying_pushes_show_their_reason(owner, platform, order, shop, make_order):
    Fulfilment.objects.create(
        tenant=order.tenant,
        order=order,
        connection=shop,
        carrier="ups",
        status=Status.FAILED,
        last_error="Tracking number is invalid",
    )
    other = make_order(shop, number="1005")
    Fulfilment.objects.create(
        tenant=order.tenant,
        order=other,
        connection=shop,
        carrier="ups",
        status=Status.RETRYING,
        last_error="Shopify answered 503",
        next_attempt_at=timezone.now() + timedelta(minutes=2),
    )
    content = page(owner)
    assert 'data-push-status="failed"' in content and "Tracking number is invalid" in content
    assert 'data-push-status="retrying"' in content and "Next try" in content and "Shopify answered 503" in content
    only_failed = page(owner, status="failed")
    recent = only_failed[only_failed.index('id="fulfilments"') :]
    assert "Tracking number is invalid" in recent and "Shopify answered 503" not in recent


def test_another_tenants_order_cannot_be_fulfilled(owner, platform, make_connection, make_order, tenant_b):
    theirs = make_order(make_connection(tenant_b, "shopify"), number="9999")
    response = owner.post(f"/dashboard/fulfilment/orders/{theirs.pk}/fulfil/", {"carrier": "ups"})
    assert response.status_code == 404
    assert not Fulfilment.objects.exists()


def test_a_viewer_sees_but_cannot_fulfil(viewer, platform, order):
    content = page(viewer)
    assert "#1001" in content and "fulfil-form" not in content and 'id="bulk"' not in content
    response = viewer.post(f"/dashboard/fulfilment/orders/{order.pk}/fulfil/", {"carrier": "ups"})
    assert response.status_code == 403
    assert viewer.post("/dashboard/fulfilment/bulk/").status_code == 403
    assert not Fulfilment.objects.exists()


def test_a_csv_upload_lists_what_it_could_not_fulfil(owner, platform, order, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("parcels.csv", b"order,tracking,carrier\n1001,1Z1,UPS\n1002,1Z2,UPS\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post("/dashboard/fulfilment/bulk/", {"file": upload})
    content = response.content.decode()
    assert response.status_code == 200
    assert "<strong>1</strong> fulfilment stored from 2 rows" in content
    assert '<tr data-row="3"><td class="num">3</td><td>1002</td><td>There is no order #1002.</td></tr>' in content
    assert Fulfilment.objects.get().source == "csv"


def test_an_unusable_csv_file_is_refused_with_the_reason(owner, platform):
    response = owner.post("/dashboard/fulfilment/bulk/", {"file": SimpleUploadedFile("x.csv", b"order\n1\n")})
    assert response.status_code == 400
    assert "needs a column for: tracking number, carrier" in response.content.decode()


def test_the_figures_panel(owner, platform, order, shop):
    Fulfilment.objects.create(
        tenant=order.tenant,
        order=order,
        connection=shop,
        carrier="ups",
        status=Status.PUSHED,
        pushed_at=order.placed_at + timedelta(hours=6),
    )
    content = page(owner)
    assert re.search(r'data-kpi="fulfilled".*?<span class="value">1</span>', content, re.S)
    assert re.search(r'data-kpi="median-hours".*?<span class="value">6.0</span>', content, re.S)
    assert re.search(r'data-kpi="late".*?<span class="value">1</span>', content, re.S)  # 51 h over 48


def test_owners_change_the_settings_and_editors_cannot(owner, client, make_member, tenant_a, platform):
    response = owner.post("/dashboard/fulfilment/settings/", {"sla_hours": "24", "notify_via": "hub"})
    assert response.status_code == 302
    settings_row = FulfilmentSettings.objects.get(tenant=tenant_a)
    assert (settings_row.sla_hours, settings_row.notify_customers, settings_row.notify_via) == (24, False, "hub")
    client.force_login(make_member(tenant_a, Role.EDITOR, username="editor"))
    assert client.post("/dashboard/fulfilment/settings/", {"sla_hours": "1"}).status_code == 403


def test_a_rule_is_made_previewed_and_switched_on(owner, platform, shop, make_order):
    waiting = make_order(shop, number="77", financial_status="paid")
    add_line(waiting, "EBOOK-1", 1, "Novel")

    response = owner.post(
        "/dashboard/fulfilment/rules/",
        {"name": "E-books", "skus": "", "sku_prefix": "EBOOK-", "carrier": "Royal Mail", "notify_customer": "on"},
    )

    rule = FulfilmentRule.objects.get()
    assert (rule.carrier, rule.enabled, rule.sku_prefix) == ("royal_mail", False, "EBOOK-")
    assert response["Location"] == f"/dashboard/fulfilment/rules/{rule.pk}/preview/"
    preview = page(owner, response["Location"])
    assert "1 order of the last 30 days" in preview and "1 \u00d7 Novel (EBOOK-1)" in preview  # a multiplication sign
    assert not Fulfilment.objects.exists()
    owner.post(f"/dashboard/fulfilment/rules/{rule.pk}/", {"change": "enable"})
    rule.refresh_from_db()
    assert rule.enabled and rule.enabled_at is not None


def test_a_rule_matching_everything_is_refused_by_the_form(owner, platform):
    response = owner.post("/dashboard/fulfilment/rules/", {"name": "All", "carrier": "UPS"})
    assert response.status_code == 400
    assert "a rule matching every order is refused" in response.content.decode()
    assert not FulfilmentRule.objects.exists()


def test_another_tenants_rule_is_404(owner, platform, tenant_b):
    theirs = FulfilmentRule.objects.create(tenant=tenant_b, name="Theirs", sku_prefix="B", carrier="ups")
    assert owner.get(f"/dashboard/fulfilment/rules/{theirs.pk}/preview/").status_code == 404
    assert owner.post(f"/dashboard/fulfilment/rules/{theirs.pk}/", {"change": "delete"}).status_code == 404
    assert FulfilmentRule.objects.filter(pk=theirs.pk).exists()
    assert "Theirs" not in page(owner, "/dashboard/fulfilment/rules/")


# --- SuperAdmin ----------------------------------------------------------------------------------------


def test_the_admin_lists_orders_awaiting_fulfilment_oldest_first_with_their_age(
    client, superadmin, platform, shop, make_order, make_connection, tenant_b
):
    client.force_login(superadmin)
    now = timezone.now()
    make_order(shop, number="NEW", placed_at=now - timedelta(hours=2))
    make_order(make_connection(tenant_b, "ebay"), number="OLD", placed_at=now - timedelta(days=4, hours=1))
    make_order(shop, number="DONE", placed_at=now - timedelta(days=9), fulfillment_status="fulfilled")

    content = client.get("/admin/commerce/order/", {"awaiting": "yes"}).content.decode()

    numbers = re.findall(r'class="field-number"><a href="/admin/commerce/order/\d+/change/[^"]*">([\w-]+)</a>', content)
    assert numbers == ["OLD", "NEW"]
    assert "4 d 1 h" in content


def test_the_admin_shows_fulfilments_and_a_rules_dry_run(client, superadmin, platform, order, shop, tenant_a):
    client.force_login(superadmin)
    Fulfilment.objects.create(
        tenant=tenant_a,
        order=order,
        connection=shop,
        carrier="ups",
        status=Status.FAILED,
        last_error="Refused: on hold",
    )
    assert "Refused: on hold" in client.get("/admin/commerce/fulfilment/").content.decode()
    Fulfilment.objects.all().delete()  # so the order is still to ship for the rule below
    order.financial_status = "paid"
    order.save()
    rule = FulfilmentRule.objects.create(tenant=tenant_a, name="Tents", skus=["TENT-1"], carrier="ups")
    content = client.get(f"/admin/commerce/fulfilmentrule/{rule.pk}/change/").content.decode()
    assert "#1001 (Shopify," in content and "2 x Tent (TENT-1)" in content


def test_pushes_refused_by_the_platform_leave_the_order_on_the_list(
    owner, platform, order, django_capture_on_commit_callbacks
):
    platform.refuse[order.external_id] = PushResult(ok=False, message="Order is on hold in Shopify")
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(f"/dashboard/fulfilment/orders/{order.pk}/fulfil/", {"carrier": "ups"})
    run_queued()
    content = page(owner)
    assert pending_numbers(content) == ["1001"]
    assert "Order is on hold in Shopify" in content
