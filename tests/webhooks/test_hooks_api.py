"""The hooks API: Zapier subscribes and unsubscribes, sees samples and delivery logs; targets are
checked when subscribed; scopes, tenants and the error body hold as everywhere in the API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db
from django.utils import timezone

from commerce.models import FulfillmentStatus
from tenants.models import ApiKey, AuditLog
from tests.fakes.hook_receiver import PUBLIC_IP, fake_dns
from webhooks.models import DeliveryStatus, HookDelivery, HookEvent, HookSubscription, Milestone

pytestmark = pytest.mark.django_db

ZAPIER_SCOPES = ["hooks:read", "hooks:write", "orders:read", "customers:read", "products:read", "integrations:read"]
TARGET = "https://hooks.zapier.example/hooks/standard/123/abc/"


@pytest.fixture(autouse=True)
def dns(monkeypatch, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    return fake_dns(monkeypatch, {"hooks.zapier.example": PUBLIC_IP, "rebind.example.test": "127.0.0.1"})


@pytest.fixture
def key(tenant_a):
    return ApiKey.generate(tenant_a, "zapier", scopes=ZAPIER_SCOPES)[1]


def auth(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def subscribe(api_client, raw_key, **body):
    body = {"target_url": TARGET, "event": "order.created", **body}
    return api_client.post("/api/v1/hooks", body, format="json", **auth(raw_key))


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- Subscribing ------------------------------------------------------------------------------------


def test_subscribing_answers_201_with_the_secret_shown_once(api_client, key, tenant_a):
    response = subscribe(api_client, key)

    assert response.status_code == 201
    body = response.json()
    assert body["event"] == "order.created" and body["target_url"] == TARGET and body["active"] is True
    assert body["secret"].startswith("whsec_")
    hook = HookSubscription.objects.get(pk=body["id"])
    assert hook.tenant == tenant_a and hook.secret == body["secret"]
    assert hook.created_by_key.name == "zapier"
    again = api_client.get(f"/api/v1/hooks/{body['id']}", **auth(key)).json()
    assert "secret" not in again and again["id"] == body["id"]
    listed = api_client.get("/api/v1/hooks", **auth(key)).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]] and "secret" not in listed[0]


def test_the_secret_is_stored_encrypted(api_client, key):
    body = subscribe(api_client, key).json()

    with db.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_hooksubscription WHERE id = %s", [body["id"]])
        stored = bytes(cursor.fetchone()[0])

    assert body["secret"].encode() not in stored


def test_subscribing_is_audited_without_the_url_or_secret(api_client, key, tenant_a):
    body = subscribe(api_client, key).json()

    entry = AuditLog.objects.for_tenant(tenant_a).get(action="hook.created")
    assert entry.details == {"event": "order.created", "host": "hooks.zapier.example"}
    assert body["secret"] not in str(entry.details) and "abc" not in str(entry.details)


def test_a_payload_template_is_kept(api_client, key):
    template = {"order": "data.number", "total": "data.total", "first_sku": "data.lines.0.sku"}

    body = subscribe(api_client, key, payload_template=template).json()

    assert HookSubscription.objects.get(pk=body["id"]).payload_template == template


@pytest.mark.parametrize(
    "template",
    [["data.total"], {"total": "data.total; import os"}, {"x": "__class__.__init__.__globals__()"}, {"x": 3}],
)
def test_a_template_that_is_not_dotted_paths_is_a_400(api_client, key, template):
    response = subscribe(api_client, key, payload_template=template)

    assert response.status_code == 400
    assert error_of(response)["details"]["payload_template"]


def test_writing_hooks_needs_the_hooks_write_scope(api_client, tenant_a):
    raw = ApiKey.generate(tenant_a, "read only", scopes=["hooks:read", "orders:read"])[1]

    response = subscribe(api_client, raw)

    assert response.status_code == 403
    assert error_of(response)["details"] == {"required_scope": "hooks:write"}


def test_subscribing_to_an_event_needs_the_read_scope_of_its_data(api_client, tenant_a):
    raw = ApiKey.generate(tenant_a, "hooks only", scopes=["hooks:read", "hooks:write"])[1]

    response = subscribe(api_client, raw, event="order.created")

    assert response.status_code == 403
    assert error_of(response)["details"] == {"required_scope": "orders:read"}
    assert not HookSubscription.objects.exists()


def test_an_unknown_event_is_a_400_that_points_at_the_list(api_client, key):
    response = subscribe(api_client, key, event="order.exploded")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert "/api/v1/hooks/events" in error["details"]["event"][0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.zapier.example/x", "https"),
        ("https://127.0.0.1/x", "private or loopback"),
        ("https://10.0.0.1/x", "private or loopback"),
        ("https://169.254.169.254/latest/meta-data/", "private or loopback"),
        ("https://[::1]/x", "private or loopback"),
        ("https://localhost/x", "not a public address"),
        ("https://rebind.example.test/x", "resolves to 127.0.0.1"),
        ("https://nowhere.invalid/x", "could not be resolved"),
        ("ftp://hooks.zapier.example/x", "not a web address"),
    ],
)
def test_an_unsafe_target_is_refused_when_subscribing(api_client, key, url, reason):
    response = subscribe(api_client, key, target_url=url)

    assert response.status_code == 400
    assert reason in error_of(response)["details"]["target_url"][0]
    assert not HookSubscription.objects.exists()


def test_private_targets_are_allowed_when_the_operator_allows_them(api_client, key, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True

    assert subscribe(api_client, key, target_url="http://127.0.0.1:9/x").status_code == 201


def test_a_client_has_at_most_the_configured_number_of_subscriptions(api_client, key, settings):
    settings.HOOKS_MAX_SUBSCRIPTIONS = 2
    assert subscribe(api_client, key).status_code == 201
    assert subscribe(api_client, key).status_code == 201

    response = subscribe(api_client, key)

    assert response.status_code == 400
    assert "2 active hook subscriptions" in str(error_of(response)["details"])


def test_the_events_list_names_each_event_and_its_scope(api_client, key):
    rows = api_client.get("/api/v1/hooks/events", **auth(key)).json()

    assert [row["event"] for row in rows] == HookEvent.values
    assert {"event": "product.low_stock", "required_scope": "products:read"}.items() <= rows[4].items()


# --- Unsubscribing and tenants -----------------------------------------------------------------------


def test_deleting_unsubscribes(api_client, key, tenant_a):
    hook_id = subscribe(api_client, key).json()["id"]

    response = api_client.delete(f"/api/v1/hooks/{hook_id}", **auth(key))

    assert response.status_code == 204
    assert not HookSubscription.objects.exists()
    assert api_client.get(f"/api/v1/hooks/{hook_id}", **auth(key)).status_code == 404
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="hook.deleted").count() == 1


def test_a_key_never_sees_or_deletes_another_clients_hooks(api_client, key, tenant_b):
    hook_id = subscribe(api_client, key).json()["id"]
    other = ApiKey.generate(tenant_b, "other", scopes=ZAPIER_SCOPES)[1]

    assert api_client.get("/api/v1/hooks", **auth(other)).json()["results"] == []
    for method, path in [
        ("get", f"/api/v1/hooks/{hook_id}"),
        ("delete", f"/api/v1/hooks/{hook_id}"),
        ("get", f"/api/v1/hooks/{hook_id}/deliveries"),
        ("get", f"/api/v1/hooks/samples/order.created?hook={hook_id}"),
    ]:
        response = getattr(api_client, method)(path, **auth(other))
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"
    assert HookSubscription.objects.filter(pk=hook_id).exists()


def test_the_list_filters_by_event_and_state(api_client, key):
    subscribe(api_client, key, event="order.created")
    gone = subscribe(api_client, key, event="order.updated").json()["id"]
    HookSubscription.objects.filter(pk=gone).update(active=False, disabled_reason="410")

    def events(query: str) -> list[str]:
        return [row["event"] for row in api_client.get(f"/api/v1/hooks{query}", **auth(key)).json()["results"]]

    assert sorted(events("")) == ["order.created", "order.updated"]
    assert events("?event=order.updated") == ["order.updated"]
    assert events("?active=true") == ["order.created"]
    assert api_client.get("/api/v1/hooks?event=nope", **auth(key)).status_code == 400


# --- The delivery log --------------------------------------------------------------------------------


def test_the_delivery_log_lists_a_hooks_deliveries_newest_first(api_client, key, tenant_a):
    hook = HookSubscription.objects.get(pk=subscribe(api_client, key).json()["id"])
    now = timezone.now()
    for n, state in enumerate([DeliveryStatus.SUCCEEDED, DeliveryStatus.RETRYING]):
        HookDelivery.objects.create(
            tenant=tenant_a,
            subscription=hook,
            event=hook.event,
            webhook_id=f"msg_{n}",
            payload={"n": n},
            status=state,
            attempts=1,
            response_code=200 if n == 0 else 503,
            response_ms=12,
            response_body="ok",
            created_at=now + timedelta(seconds=n),
        )

    rows = api_client.get(f"/api/v1/hooks/{hook.pk}/deliveries", **auth(key)).json()["results"]
    failed = api_client.get(f"/api/v1/hooks/{hook.pk}/deliveries?status=retrying", **auth(key)).json()["results"]

    assert [row["webhook_id"] for row in rows] == ["msg_1", "msg_0"]
    assert rows[1]["response_code"] == 200 and rows[1]["payload"] == {"n": 0}
    assert [row["webhook_id"] for row in failed] == ["msg_1"]


# --- Samples (Zapier's perform-list) -----------------------------------------------------------------


def test_samples_are_the_latest_real_orders_in_the_hook_shape(api_client, key, make_connection, make_order, tenant_a):
    shop = make_connection(tenant_a)
    orders = [make_order(shop, total=Decimal(n)) for n in range(1, 5)]

    body = api_client.get("/api/v1/hooks/samples/order.created", **auth(key)).json()

    assert [sample["data"]["id"] for sample in body] == [o.pk for o in reversed(orders)][:3]
    assert set(body[0]) == {"id", "type", "timestamp", "data"}
    assert body[0]["type"] == "order.created" and body[0]["data"]["total"] == "4.0000"


def test_samples_are_an_empty_list_without_data(api_client, key):
    for event in HookEvent.values:
        response = api_client.get(f"/api/v1/hooks/samples/{event}", **auth(key))
        if event == "campaign.sent":
            assert response.status_code == 403  # the key has no campaigns:read
            continue
        assert response.status_code == 200, event
        assert response.json() == [], event


def test_samples_of_fulfilled_orders_are_fulfilled_orders(api_client, key, make_connection, make_order, tenant_a):
    shop = make_connection(tenant_a)
    make_order(shop)
    done = make_order(shop, fulfillment_status=FulfillmentStatus.FULFILLED)

    body = api_client.get("/api/v1/hooks/samples/order.fulfilled?limit=10", **auth(key)).json()

    assert [sample["data"]["id"] for sample in body] == [done.pk]


def test_samples_can_take_a_subscriptions_template(api_client, key, make_connection, make_order, tenant_a):
    make_order(make_connection(tenant_a), number="A-1")
    hook = subscribe(api_client, key, payload_template={"no": "data.number", "kind": "type"}).json()["id"]

    body = api_client.get(f"/api/v1/hooks/samples/order.created?hook={hook}", **auth(key)).json()

    assert body == [{"no": "A-1", "kind": "order.created"}]


def test_samples_need_the_read_scope_of_the_events_data(api_client, tenant_a):
    raw = ApiKey.generate(tenant_a, "hooks only", scopes=["hooks:read"])[1]

    response = api_client.get("/api/v1/hooks/samples/customer.created", **auth(raw))

    assert response.status_code == 403
    assert error_of(response)["details"] == {"required_scope": "customers:read"}


def test_samples_of_an_unknown_event_are_a_404(api_client, key):
    assert api_client.get("/api/v1/hooks/samples/order.exploded", **auth(key)).status_code == 404


# --- Milestones --------------------------------------------------------------------------------------


def test_milestones_are_created_listed_and_deleted(api_client, key, tenant_a):
    created = api_client.post("/api/v1/milestones", {"kind": "order_count", "threshold": 1000}, **auth(key))
    revenue = api_client.post("/api/v1/milestones", {"kind": "revenue", "threshold": "50000"}, **auth(key))

    assert created.status_code == 201 and revenue.status_code == 201
    assert revenue.json()["currency"] == tenant_a.base_currency
    assert created.json()["reached_at"] is None
    listed = api_client.get("/api/v1/milestones", **auth(key)).json()["results"]
    assert {row["kind"] for row in listed} == {"order_count", "revenue"}
    assert api_client.delete(f"/api/v1/milestones/{created.json()['id']}", **auth(key)).status_code == 204
    assert Milestone.objects.count() == 1


def test_a_milestone_already_passed_is_refused(api_client, key, make_connection, make_order, tenant_a):
    shop = make_connection(tenant_a)
    make_order(shop)
    make_order(shop)

    response = api_client.post("/api/v1/milestones", {"kind": "order_count", "threshold": 2}, **auth(key))

    assert response.status_code == 400
    assert "Already reached" in error_of(response)["details"]["threshold"][0]


def test_an_order_count_milestone_is_a_whole_number(api_client, key):
    response = api_client.post("/api/v1/milestones", {"kind": "order_count", "threshold": "10.5"}, **auth(key))

    assert response.status_code == 400


def test_another_clients_milestones_are_404(api_client, key, tenant_b):
    theirs = Milestone.objects.create(tenant=tenant_b, kind="order_count", threshold=10)

    assert api_client.get(f"/api/v1/milestones/{theirs.pk}", **auth(key)).status_code == 404
    assert api_client.delete(f"/api/v1/milestones/{theirs.pk}", **auth(key)).status_code == 404
    assert Milestone.objects.filter(pk=theirs.pk).exists()
