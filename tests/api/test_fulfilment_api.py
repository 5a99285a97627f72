"""Fulfilment in the public API: fulfil an order (orders:write), bulk (JSON or CSV), the list of
fulfilments with their push results, analytics, rules with their dry run, orders still to ship
oldest first; every error in the one error shape; another tenant's objects are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_q.models import OrmQ

from commerce.models import FulfillmentStatus, Fulfilment, FulfilmentRule, FulfilmentSource, Order
from commerce.models import FulfilmentPushStatus as Status
from tenants.models import ApiKeyScope, Role
from tests.commerce.test_fulfilment import FakePlatform, add_line, install, run_queued

from .conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform():
    fake = FakePlatform()
    restore = install(fake)
    yield fake
    restore()


@pytest.fixture
def shop(make_connection, tenant_a):
    return make_connection(tenant_a, "shopify", name="Alpha Shopify")


@pytest.fixture
def order(shop, make_order):
    order = make_order(shop, number="1001", external_id="gid://shopify/Order/1001")
    add_line(order, "TENT-1", 2)
    add_line(order, "MAT-1", 1)
    return order


@pytest.fixture
def writer(make_key) -> dict:
    return bearer(make_key([ApiKeyScope.ORDERS_READ, ApiKeyScope.ORDERS_WRITE])[1])


@pytest.fixture
def reader(make_key) -> dict:
    return bearer(make_key([ApiKeyScope.ORDERS_READ])[1])


@pytest.fixture
def theirs(make_connection, make_order, tenant_b) -> dict:
    connection = make_connection(tenant_b, "shopify", name="Beta shop")
    order = make_order(connection, number="9009")
    add_line(order, "B-1", 1)
    fulfilment = Fulfilment.objects.create(tenant=tenant_b, order=order, connection=connection, carrier="ups")
    rule = FulfilmentRule.objects.create(tenant=tenant_b, name="Theirs", sku_prefix="B-", carrier="ups")
    return {"order": order, "fulfilment": fulfilment, "rule": rule, "connection": connection}


def post(api_client, url: str, body: dict, headers: dict, capture):
    with capture(execute=True):
        return api_client.post(url, body, format="json", **headers)


# --- Fulfilling one order ------------------------------------------------------------------------------


def test_fulfilling_an_order_answers_202_and_pushes_it(
    api_client, order, platform, writer, django_capture_on_commit_callbacks
):
    tent = order.lines.get(sku="TENT-1")
    response = post(
        api_client,
        f"/api/v1/orders/{order.pk}/fulfil",
        {"tracking_number": "1Z001", "carrier": "united parcel service", "lines": [{"sku": "TENT-1", "quantity": 1}]},
        writer,
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["carrier"] == "ups" and body["source"] == "api"
    assert body["lines"] == [{"line_id": tent.pk, "quantity": 1}]
    assert (body["order"], body["order_number"], body["channel"]) == (order.pk, "1001", "shopify")
    assert body["tracking_url"] == "https://www.ups.com/track?tracknum=1Z001"

    run_queued()
    pushed = api_client.get(f"/api/v1/fulfillments/{body['id']}", **writer).json()
    assert pushed["status"] == "pushed" and pushed["remote_id"] == "remote-1" and pushed["attempts"] == 1
    detail = api_client.get(f"/api/v1/orders/{order.pk}", **writer).json()
    assert detail["fulfillment_status"] == "partial"
    assert {line["sku"]: line["id"] for line in detail["lines"]}["TENT-1"] == tent.pk


def test_fulfilling_needs_the_orders_write_scope(api_client, order, platform, reader):
    response = api_client.post(f"/api/v1/orders/{order.pk}/fulfil", {"carrier": "UPS"}, format="json", **reader)
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")
    assert response.json()["error"]["details"] == {"required_scope": "orders:write"}
    assert not Fulfilment.objects.exists()


def test_a_viewer_cannot_fulfil(api_client, order, platform, make_member, tenant_a):
    api_client.force_login(make_member(tenant_a, Role.VIEWER))
    response = api_client.post(f"/api/v1/orders/{order.pk}/fulfil", {"carrier": "UPS"}, format="json")
    assert response.status_code == 403
    assert not Fulfilment.objects.exists()


def test_an_unknown_carrier_is_a_400_listing_the_accepted_ones(api_client, order, platform, writer):
    response = api_client.post(
        f"/api/v1/orders/{order.pk}/fulfil", {"tracking_number": "1", "carrier": "Pony"}, format="json", **writer
    )
    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "invalid")
    assert body["error"]["details"] == {
        "carrier": ["Unknown carrier “Pony”. Accepted: UPS, USPS, Royal Mail, DHL Express."],
        "accepted_carriers": ["ups", "usps", "royal_mail", "dhl"],
    }


def test_more_than_is_left_is_a_400(api_client, order, platform, writer):
    tent = order.lines.get(sku="TENT-1")
    response = api_client.post(
        f"/api/v1/orders/{order.pk}/fulfil",
        {"carrier": "UPS", "lines": [{"line_id": tent.pk, "quantity": 3}]},
        format="json",
        **writer,
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "lines": ["Only 2 of “Tent (TENT-1)” left to fulfil on order #1001, not 3."]
    }
    assert not Fulfilment.objects.exists()


def test_a_line_without_an_id_or_sku_is_a_400(api_client, order, platform, writer):
    response = api_client.post(
        f"/api/v1/orders/{order.pk}/fulfil", {"carrier": "UPS", "lines": [{"quantity": 1}]}, format="json", **writer
    )
    assert response.status_code == 400
    assert "line_id" in str(response.json()["error"]["details"])


# --- Tenant isolation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/orders/{order}/fulfil"),
        ("get", "/api/v1/fulfillments/{fulfilment}"),
        ("get", "/api/v1/fulfillment-rules/{rule}"),
        ("patch", "/api/v1/fulfillment-rules/{rule}"),
        ("delete", "/api/v1/fulfillment-rules/{rule}"),
        ("get", "/api/v1/fulfillment-rules/{rule}/preview"),
    ],
)
def test_another_tenants_objects_are_404(api_client, platform, make_key, theirs, method, path):
    key = bearer(make_key(ApiKeyScope.values)[1])
    url = path.format(**{name: obj.pk for name, obj in theirs.items()})
    response = getattr(api_client, method)(url, {"carrier": "UPS", "name": "Mine"}, format="json", **key)
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")
    assert Fulfilment.objects.count() == 1 and FulfilmentRule.objects.get().name == "Theirs"


def test_lists_hold_only_the_callers_rows(api_client, order, platform, writer, theirs):
    Fulfilment.objects.create(tenant=order.tenant, order=order, connection=order.connection, carrier="ups")
    assert [f["order"] for f in api_client.get("/api/v1/fulfillments", **writer).json()["results"]] == [order.pk]
    assert api_client.get("/api/v1/fulfillment-rules", **writer).json()["results"] == []
    bulk = api_client.post(
        "/api/v1/fulfillments/bulk",
        {"fulfillments": [{"order_id": theirs["order"].pk, "carrier": "UPS"}]},
        format="json",
        **writer,
    ).json()
    assert bulk["created"] == 0 and bulk["failures"][0]["reason"].startswith("There is no order with the id")


# --- Fulfilments ---------------------------------------------------------------------------------------


def test_fulfilments_are_listed_newest_first_and_filtered_by_status(api_client, order, shop, platform, reader):
    made = [
        Fulfilment.objects.create(
            tenant=order.tenant,
            order=order,
            connection=shop,
            carrier="ups",
            status=status,
            last_error=error,
            created_at=timezone.now() - timedelta(minutes=n),
        )
        for n, (status, error) in enumerate(
            [(Status.FAILED, "Tracking number is invalid"), (Status.PUSHED, ""), (Status.RETRYING, "503")]
        )
    ]
    listed = api_client.get("/api/v1/fulfillments", **reader).json()["results"]
    assert [f["id"] for f in listed] == [f.pk for f in made]
    failed = api_client.get("/api/v1/fulfillments", {"status": "failed"}, **reader).json()["results"]
    assert [(f["id"], f["last_error"]) for f in failed] == [(made[0].pk, "Tracking number is invalid")]
    response = api_client.get("/api/v1/fulfillments", {"status": "lost"}, **reader)
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")


def test_bulk_from_json_rows_checks_each_parcel_on_its_own(
    api_client, order, shop, make_order, platform, writer, django_capture_on_commit_callbacks
):
    second = make_order(shop, number="1002")
    add_line(second, "HAT-1", 1)
    rows = [
        {"order_number": "1001", "tracking_number": "1Z1", "carrier": "UPS", "sku": "TENT-1", "quantity": 2},
        {"order_number": "#1002", "tracking_number": "1Z2", "carrier": "Pony"},
        {"order_number": "1003", "tracking_number": "1Z3", "carrier": "UPS"},
    ]
    response = post(
        api_client, "/api/v1/fulfillments/bulk", {"fulfillments": rows}, writer, django_capture_on_commit_callbacks
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["rows"], body["created"], body["failed"]) == (3, 1, 2)
    assert body["fulfillments"][0]["source"] == "bulk"
    assert [(f["row"], f["order"]) for f in body["failures"]] == [(2, "1002"), (3, "1003")]
    assert body["failures"][1]["reason"] == "There is no order #1003."
    assert OrmQ.objects.count() == 1


def test_bulk_from_a_csv_file(api_client, order, platform, writer):
    upload = SimpleUploadedFile("parcels.csv", b"Order,Tracking number,Carrier\n1001,1Z1,Royal Mail\n", "text/csv")
    response = api_client.post("/api/v1/fulfillments/bulk", {"file": upload}, format="multipart", **writer)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 1 and body["fulfillments"][0]["carrier"] == "royal_mail"
    assert body["fulfillments"][0]["source"] == "csv"


def test_a_csv_file_without_its_columns_is_a_400(api_client, platform, writer):
    upload = SimpleUploadedFile("parcels.csv", b"Order,Note\n1001,x\n", "text/csv")
    response = api_client.post("/api/v1/fulfillments/bulk", {"file": upload}, format="multipart", **writer)
    assert response.status_code == 400
    assert "needs a column for: tracking number, carrier" in str(response.json()["error"]["details"])


# --- Orders still to ship ------------------------------------------------------------------------------


def test_orders_still_to_ship_are_listed_oldest_first(api_client, shop, make_order, reader):
    now = timezone.now()
    newest = make_order(shop, placed_at=now - timedelta(hours=1))
    oldest = make_order(shop, placed_at=now - timedelta(days=3))
    middle = make_order(shop, placed_at=now - timedelta(days=1))
    make_order(shop, placed_at=now - timedelta(days=9), fulfillment_status=FulfillmentStatus.FULFILLED)

    listed = api_client.get("/api/v1/orders", {"fulfillment_status": "unfulfilled"}, **reader).json()["results"]
    assert [o["id"] for o in listed] == [oldest.pk, middle.pk, newest.pk]
    newest_first = api_client.get(
        "/api/v1/orders", {"fulfillment_status": "unfulfilled", "ordering": "-placed_at"}, **reader
    ).json()["results"]
    assert [o["id"] for o in newest_first] == [newest.pk, middle.pk, oldest.pk]
    paged = api_client.get("/api/v1/orders", {"fulfillment_status": "unfulfilled", "page_size": 2}, **reader).json()
    follow = api_client.get(paged["next"], **reader).json()["results"]
    assert [o["id"] for o in paged["results"] + follow] == [oldest.pk, middle.pk, newest.pk]


# --- Analytics -----------------------------------------------------------------------------------------


def test_analytics_are_served_for_the_callers_tenant(api_client, order, shop, reader, theirs):
    Fulfilment.objects.create(
        tenant=order.tenant,
        order=order,
        connection=shop,
        carrier="ups",
        status=Status.PUSHED,
        pushed_at=order.placed_at + timedelta(hours=5),
    )
    Fulfilment.objects.filter(pk=theirs["fulfilment"].pk).update(status=Status.PUSHED, pushed_at=timezone.now())

    body = api_client.get("/api/v1/fulfillment/analytics", {"days": 7}, **reader).json()

    assert body["period"]["days"] == 7 and len(body["fulfilled_per_day"]) == 7
    assert body["fulfilled"] == 1
    assert body["time_to_ship"] == [{"channel": "shopify", "label": "Shopify", "orders": 1, "median_hours": 5.0}]
    assert body["sla_hours"] == 48


@pytest.mark.parametrize("days", ["0", "367", "week"])
def test_analytics_refuse_a_period_out_of_range(api_client, reader, days):
    response = api_client.get("/api/v1/fulfillment/analytics", {"days": days}, **reader)
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")


def test_analytics_need_the_orders_read_scope(api_client, make_key):
    response = api_client.get("/api/v1/fulfillment/analytics", **bearer(make_key([ApiKeyScope.PRODUCTS_READ])[1]))
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "orders:read"}


# --- Rules ---------------------------------------------------------------------------------------------


def test_a_rule_is_created_with_its_carrier_code_and_previewed(api_client, shop, make_order, platform, writer):
    response = api_client.post(
        "/api/v1/fulfillment-rules",
        {"name": "E-books", "sku_prefix": "EBOOK-", "carrier": "Royal Mail", "enabled": False, "connection": shop.pk},
        format="json",
        **writer,
    )
    assert response.status_code == 201, response.content
    rule = response.json()
    assert (rule["carrier"], rule["enabled"], rule["enabled_at"], rule["connection"]) == (
        "royal_mail",
        False,
        None,
        shop.pk,
    )
    pending = make_order(shop, number="77", financial_status="paid")
    line = add_line(pending, "EBOOK-1", 1, "Novel")

    preview = api_client.get(f"/api/v1/fulfillment-rules/{rule['id']}/preview", **writer).json()

    assert preview["orders"] == [
        {
            "id": pending.pk,
            "number": "77",
            "channel": "shopify",
            "placed_at": preview["orders"][0]["placed_at"],
            "everything_left": False,
            "lines": [{"line_id": line.pk, "title": "Novel (EBOOK-1)", "quantity": 1}],
        }
    ]
    assert not Fulfilment.objects.exists()

    switched = api_client.patch(f"/api/v1/fulfillment-rules/{rule['id']}", {"enabled": True}, format="json", **writer)
    assert switched.status_code == 200 and switched.json()["enabled_at"] is not None


def test_a_rule_matching_everything_or_another_tenants_connection_is_a_400(api_client, platform, writer, theirs):
    everything = api_client.post(
        "/api/v1/fulfillment-rules", {"name": "All", "carrier": "UPS"}, format="json", **writer
    )
    assert everything.status_code == 400
    assert "matching every order" in str(everything.json()["error"]["details"])
    elsewhere = api_client.post(
        "/api/v1/fulfillment-rules",
        {"name": "Theirs", "carrier": "UPS", "connection": theirs["connection"].pk},
        format="json",
        **writer,
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["details"] == {"connection": ["No such connection."]}
    assert FulfilmentRule.objects.count() == 1


def test_rules_need_orders_write_to_change(api_client, reader):
    response = api_client.post(
        "/api/v1/fulfillment-rules", {"name": "E", "sku_prefix": "E", "carrier": "UPS"}, format="json", **reader
    )
    assert response.status_code == 403


def test_the_fulfil_endpoint_stores_nothing_for_a_cancelled_order(api_client, order, platform, writer):
    Order.objects.filter(pk=order.pk).update(status="cancelled")
    response = api_client.post(f"/api/v1/orders/{order.pk}/fulfil", {"carrier": "UPS"}, format="json", **writer)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"non_field_errors": ["Order #1001 is cancelled."]}
    assert not Fulfilment.objects.filter(source=FulfilmentSource.API).exists()
