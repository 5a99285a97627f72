"""The receiving endpoint: verification, store-first, duplicates, and bad input never a 500."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from django_q.models import OrmQ

from integrations.models import HUB_WEBHOOK_SECRET, Connection
from webhooks.models import EventStatus, WebhookEvent

from .conftest import HUB_SECRET, SHOPIFY_SECRET, WOO_SECRET, shopify_signature, signed_generic

ORDER = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "updated_at": "2026-11-20T10:00:00-05:00",
    "total_price": "10.00",
}


def test_a_signed_delivery_is_stored_and_acknowledged(shop, deliver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(shop, ORDER, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert response.status_code == 200
    assert response.json() == {"status": "received", "events": 1}
    event = WebhookEvent.objects.get()
    assert (event.tenant_id, event.connection_id, event.provider) == (shop.tenant_id, shop.pk, "shopify")
    assert event.event_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event.topic == "orders/updated"
    assert event.resource_id == ORDER["admin_graphql_api_id"]
    assert event.resource_updated_at.isoformat() == "2026-11-20T15:00:00+00:00"
    assert event.status == EventStatus.RECEIVED and event.signature_valid
    assert json.loads(event.body) == ORDER
    assert event.headers["x-shopify-topic"] == "orders/updated"
    # Processing is queued for the task cluster, not done in the request.
    assert OrmQ.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("tampered body", {"body": json.dumps({**ORDER, "total_price": "0.01"}).encode(), "signature": None}),
        ("wrong secret", {"signature": shopify_signature(json.dumps(ORDER).encode(), "not-the-secret")}),
        ("missing header", {"signature": ""}),
    ],
)
def test_a_bad_signature_is_refused_kept_and_never_processed(
    shop, deliver, case, kwargs, django_capture_on_commit_callbacks
):
    if case == "tampered body":
        # Signed over the original body, delivered with another one.
        kwargs["signature"] = shopify_signature(json.dumps(ORDER).encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(shop, ORDER, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    event = WebhookEvent.objects.get()
    assert event.status == EventStatus.REJECTED and not event.signature_valid
    assert event.error  # the reason, for the log
    assert event.body  # kept for inspection
    assert OrmQ.objects.count() == 0


def test_the_reason_for_a_refusal_is_logged(shop, deliver, caplog):
    with caplog.at_level("WARNING", logger="webhooks.views"):
        deliver(shop, ORDER, signature="bm90IGl0")
    assert "X-Shopify-Hmac-Sha256 does not match" in caplog.text
    assert SHOPIFY_SECRET not in caplog.text


def test_a_connection_without_a_secret_refuses_with_a_clear_reason(tenant_a, make_connection, deliver):
    bare = make_connection(tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", "access_token": "x"})
    response = deliver(bare, ORDER)
    assert response.status_code == 401
    assert "no webhook_secret or client_secret" in response.json()["error"]["message"]


def test_duplicate_deliveries_store_one_event_and_count_the_rest(shop, deliver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(10):
            assert deliver(shop, ORDER, webhook_id="same-id").status_code == 200
    event = WebhookEvent.objects.get()
    assert event.duplicates == 9 and event.last_duplicate_at is not None
    assert OrmQ.objects.count() == 1  # processed once
    assert deliver(shop, ORDER, webhook_id="same-id").json()["status"] == "duplicate"


def test_a_forged_delivery_does_not_block_the_real_one(shop, deliver):
    assert deliver(shop, ORDER, webhook_id="id-1", signature="Zm9yZ2Vk").status_code == 401
    assert deliver(shop, ORDER, webhook_id="id-1").status_code == 200
    assert WebhookEvent.objects.filter(status=EventStatus.RECEIVED, event_id="id-1").count() == 1


def test_the_same_event_id_on_two_connections_is_two_events(shop, tenant_b, make_connection, deliver):
    other = make_connection(
        tenant_b, "shopify", credentials={"shop_domain": "b.myshopify.com", "client_secret": SHOPIFY_SECRET}
    )
    deliver(shop, ORDER, webhook_id="shared")
    deliver(other, ORDER, webhook_id="shared")
    assert WebhookEvent.objects.filter(event_id="shared").count() == 2
    assert set(WebhookEvent.objects.values_list("tenant_id", flat=True)) == {shop.tenant_id, other.tenant_id}


def test_shopify_event_id_identifies_a_delivery_together_with_its_topic(shop, deliver):
    deliver(shop, ORDER, webhook_id="", topic="orders/create", HTTP_X_SHOPIFY_EVENT_ID="98880550-7158-44d4")
    deliver(shop, ORDER, webhook_id="", topic="orders/paid", HTTP_X_SHOPIFY_EVENT_ID="98880550-7158-44d4")
    deliver(shop, ORDER, webhook_id="", topic="orders/paid", HTTP_X_SHOPIFY_EVENT_ID="98880550-7158-44d4")
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == [
        "orders/create:98880550-7158-44d4",
        "orders/paid:98880550-7158-44d4",
    ]


def test_the_old_secret_verifies_for_an_hour_after_rotation(shop, deliver):
    shop = Connection.objects.get(pk=shop.pk)
    shop.credentials = {**shop.credentials, "client_secret": "shpss_rotated_secret_0002"}
    shop.save()
    old = deliver(shop, ORDER, webhook_id="signed-with-old")
    assert old.status_code == 200
    new_body = json.dumps(ORDER).encode()
    new = deliver(
        shop, ORDER, webhook_id="signed-with-new", signature=shopify_signature(new_body, "shpss_rotated_secret_0002")
    )
    assert new.status_code == 200
    # An hour later the old one no longer verifies.
    later = timezone.now() + timedelta(hours=1, minutes=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("integrations.models.datetime", _FrozenDatetime(later))
        assert deliver(shop, ORDER, webhook_id="too-late").status_code == 401


class _FrozenDatetime:
    """Stands in for `datetime` in integrations.models: `now()` is fixed, the rest passes through."""

    def __init__(self, moment):
        self.moment = moment

    def now(self, tz=None):
        return self.moment

    def __getattr__(self, name):
        from datetime import datetime

        return getattr(datetime, name)


def test_unknown_connection_provider_mismatch_and_wrong_method(shop, woo):
    client = Client()
    body = json.dumps(ORDER).encode()
    assert client.post(f"/webhooks/shopify/{woo.uuid}/", body, content_type="application/json").status_code == 404
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/webhooks/shopify/{unknown}/", body, content_type="application/json").status_code == 404
    assert client.post(f"/webhooks/nosuch/{shop.uuid}/", body, content_type="application/json").status_code == 404
    response = client.get(f"/webhooks/shopify/{shop.uuid}/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert WebhookEvent.objects.count() == 0


@override_settings(WEBHOOK_MAX_BODY_BYTES=1000)
def test_an_oversized_body_is_refused_with_413(shop, deliver):
    big = {**ORDER, "note": "x" * 2000}
    response = deliver(shop, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert WebhookEvent.objects.count() == 0


def test_a_wrong_content_type_is_refused_with_415(shop):
    body = json.dumps(ORDER).encode()
    response = Client().post(
        f"/webhooks/shopify/{shop.uuid}/",
        body,
        content_type="text/plain",
        HTTP_X_SHOPIFY_TOPIC="orders/updated",
        HTTP_X_SHOPIFY_HMAC_SHA256=shopify_signature(body),
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b"\xff\xfe\x00", b"", b'"a string"', b"null"],
    ids=["broken", "array", "binary", "empty", "string", "null"],
)
def test_a_signed_but_malformed_body_is_a_400_kept_for_inspection(shop, deliver, body):
    response = deliver(shop, None, body=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"
    if body:
        assert WebhookEvent.objects.get().status == EventStatus.REJECTED


def test_a_missing_topic_is_a_400(shop, deliver):
    response = deliver(shop, ORDER, topic="")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_SHOPIFY_HMAC_SHA256": "%%%not-base64%%%"},
        {"HTTP_X_SHOPIFY_HMAC_SHA256": "é" * 50},
        {"CONTENT_LENGTH": "abc"},
    ],
)
def test_garbage_headers_never_make_a_500(shop, headers):
    body = json.dumps(ORDER).encode()
    response = Client().post(
        f"/webhooks/shopify/{shop.uuid}/", body, content_type="application/json", HTTP_X_SHOPIFY_TOPIC="x", **headers
    )
    assert response.status_code in (400, 401)


def test_stored_headers_never_hold_credentials(shop, deliver):
    deliver(shop, ORDER, HTTP_AUTHORIZATION="Bearer secret-token-123", HTTP_COOKIE="sessionid=abc")
    headers = WebhookEvent.objects.get().headers
    assert headers["authorization"] == "[redacted]"
    assert headers["cookie"] == "[redacted]"


def test_the_headers_a_receiver_sees_are_request_headers_with_lower_cased_names():
    from django.http.request import HttpHeaders

    from webhooks.views import _headers

    meta = {
        "CONTENT_TYPE": "application/json; charset=utf-8",
        "CONTENT_LENGTH": "12",
        "HTTP_X_SHOPIFY_HMAC_SHA256": "c2ln",
        "HTTP_X_WC_WEBHOOK_SIGNATURE": "",
        "HTTP_USER_AGENT": "Shopify-Captain-Hook",
        "HTTP_TWILIO_SIGNATURE_": "odd",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "hub.example.com",
        "QUERY_STRING": "a=1",
        "wsgi.url_scheme": "https",
    }
    expected = {name.lower(): value for name, value in HttpHeaders(meta).items()}
    assert _headers(meta) == expected
    assert _headers(meta)["content-type"] == "application/json; charset=utf-8"
    assert "remote-addr" not in _headers(meta)


def test_the_acknowledgement_does_not_wait_for_processing(shop, deliver, monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("processing must not run in the request")

    monkeypatch.setattr("webhooks.processing.process", explode)
    assert deliver(shop, ORDER).status_code == 200


# --- WooCommerce ----------------------------------------------------------------------------------


def _woo_post(connection, payload, *, topic="order.updated", secret=WOO_SECRET, **extra):
    body = json.dumps(payload).encode()
    return Client().post(
        f"/webhooks/woocommerce/{connection.uuid}/",
        body,
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC=topic,
        HTTP_X_WC_WEBHOOK_SIGNATURE=shopify_signature(body, secret),
        HTTP_X_WC_WEBHOOK_DELIVERY_ID="d-1",
        **extra,
    )


def test_woocommerce_ping_on_creation_is_answered_and_not_stored(woo):
    response = Client().post(
        f"/webhooks/woocommerce/{woo.uuid}/", "webhook_id=42", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 0


def test_woocommerce_delivery_is_verified_and_deduplicated_by_version(woo):
    order = {"id": 727, "date_modified_gmt": "2026-11-20T10:00:00", "status": "processing"}
    assert _woo_post(woo, order).status_code == 200
    assert _woo_post(woo, order).status_code == 200  # a retry: same version
    assert _woo_post(woo, {**order, "date_modified_gmt": "2026-11-20T10:05:00"}).status_code == 200
    events = list(WebhookEvent.objects.order_by("received_at", "pk"))
    assert [e.event_id for e in events] == [
        "order.updated:727:2026-11-20T10:00:00",
        "order.updated:727:2026-11-20T10:05:00",
    ]
    assert events[0].duplicates == 1
    assert _woo_post(woo, order, secret="wrong").status_code == 401


# --- Generic third-party -------------------------------------------------------------------------


@pytest.fixture
def erp(tenant_a, make_connection):
    return make_connection(
        tenant_a, "shopify", credentials={"shop_domain": "a.myshopify.com", HUB_WEBHOOK_SECRET: HUB_SECRET}
    )


def test_generic_hook_verifies_timestamped_signature(erp):
    client = Client()
    response = signed_generic(client, erp, {"id": "evt-1", "event": "sync.requested"}, service="erp")
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.provider, event.service, event.topic, event.event_id) == (
        "third-party",
        "erp",
        "sync.requested",
        "evt-1",
    )


def test_generic_hook_refuses_stale_and_unsigned(erp):
    client = Client()
    stale = signed_generic(client, erp, {"id": "evt-2", "event": "x"}, stamp=int(time.time()) - 3600)
    assert stale.status_code == 401 and "too far from now" in stale.json()["error"]["message"]
    unsigned = client.post(f"/webhooks/third-party/erp/{erp.uuid}/", b"{}", content_type="application/json")
    assert unsigned.status_code == 401
    assert WebhookEvent.objects.filter(status=EventStatus.REJECTED).count() == 2


def test_a_flood_of_deliveries_is_all_stored(shop, deliver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(1000):
            assert deliver(shop, {**ORDER, "id": n}, webhook_id=f"flood-{n}").status_code == 200
    assert WebhookEvent.objects.filter(status=EventStatus.RECEIVED).count() == 1000
    # One drain task takes them all (webhooks.queue): the flood did not put 1,000 rows in the queue.
    assert [q.task["func"] for q in OrmQ.objects.all()] == ["webhooks.tasks.drain"]
