"""Clocks that disagree. A Stripe delivery signed ten minutes before or after the hub's clock,
beyond WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS (five minutes), is refused with a 401 and kept as
rejected, never processed; one within the tolerance either way is taken. And the platform's own
clock orders an order's versions: deliveries that arrive out of order (and twice) end in the newest
version, by the platform's updated time, whatever order they were processed in."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from commerce.models import Order
from webhooks import processing
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db

STRIPE_SECRET = "whsec_faults_0a1b2c3d4e"
MINUTE = 60


def stripe_event(n: int) -> bytes:
    """An event shaped as Stripe documents it (docs.stripe.com/api/events/object)."""
    event = {
        "id": f"evt_faults_{n:04d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": {"id": f"cus_faults_{n:04d}", "object": "customer", "email": f"c{n}@example.com"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.updated",
    }
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("skew", "answer"),
    [
        pytest.param(-10 * MINUTE, 401, id="ten minutes behind"),
        pytest.param(+10 * MINUTE, 401, id="ten minutes ahead"),
        pytest.param(-4 * MINUTE, 200, id="four minutes behind"),
        pytest.param(+4 * MINUTE, 200, id="four minutes ahead"),
    ],
)
def test_a_stripe_signature_is_taken_only_within_the_tolerance_of_the_hubs_clock(
    client, make_connection, tenant_a, settings, skew, answer
):
    assert settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS == 5 * MINUTE
    stripe_connection = make_connection(
        tenant_a, "stripe", credentials={"secret_key": "sk_test_faults", "webhook_secret": STRIPE_SECRET}
    )
    body = stripe_event(1)
    signature = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, int(time.time()) + skew)

    response = client.post(
        f"/webhooks/stripe/{stripe_connection.uuid}/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )

    assert response.status_code == answer, response.content
    [event] = WebhookEvent.objects.filter(connection=stripe_connection)
    if answer == 401:
        assert (event.signature_valid, event.status, event.event_id) == (False, EventStatus.REJECTED, "")
        assert ("stale or replayed" if skew < 0 else "ahead of the hub's clock") in event.error
        assert response.json()["error"]["code"] == "invalid_signature"
        assert processing.waiting() == []  # a refused delivery is never processed
    else:
        assert (event.signature_valid, event.status, event.event_id) == (True, EventStatus.RECEIVED, "evt_faults_0001")


def test_out_of_order_and_repeated_deliveries_end_in_the_newest_version(client, woo, platform):
    created = platform.create()  # order 2000, pending
    order_id = created["id"]
    paid = platform.update(order_id, "processing")
    held = platform.update(order_id, "on-hold")
    done = platform.update(order_id, "completed")
    arrivals = [
        ("order.updated", done),
        ("order.updated", paid),
        ("order.created", created),
        ("order.updated", held),
        ("order.updated", done),  # delivered again
        ("order.updated", paid),  # delivered again
    ]

    for topic, payload in arrivals:
        body, headers = platform.delivery(topic, payload)
        response = client.post(
            f"/webhooks/woocommerce/{woo.uuid}/", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 200, response.content
    processing.drain(30)

    events = WebhookEvent.objects.filter(connection=woo).order_by("pk")
    assert [(e.topic, e.status, e.duplicates) for e in events] == [
        ("order.updated", EventStatus.PROCESSED, 1),
        ("order.updated", EventStatus.PROCESSED, 1),
        ("order.created", EventStatus.PROCESSED, 0),
        ("order.updated", EventStatus.PROCESSED, 0),
    ]
    assert [e.outcome for e in events] == [
        f"order {order_id} created",
        *[f"order {order_id} left alone: stored copy is as new or newer"] * 3,
    ]
    [order] = Order.objects.filter(connection=woo)
    assert order.external_id == str(order_id)
    assert (order.status, order.raw["status"]) == ("completed", "completed")
    assert order.platform_updated_at.strftime("%Y-%m-%dT%H:%M:%S") == done["date_modified_gmt"]
