"""The Zapier flow end to end, through the API and the task queue to a real receiver on 127.0.0.1:
subscribe, a change commits, the receiver gets a payload that verifies with the `standardwebhooks`
package and has the samples' shape, unsubscribe, and nothing more arrives."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from commerce.models import Order
from commerce.signals import records_written
from tenants.models import ApiKey
from tests.fakes.hook_receiver import PUBLIC_IP, HookReceiver, fake_dns, run_queued_tasks
from webhooks.models import DeliveryStatus, HookDelivery, HookSubscription

pytestmark = pytest.mark.django_db

SCOPES = ["hooks:read", "hooks:write", "orders:read"]


@pytest.fixture
def receiver(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with HookReceiver().running() as server:
        yield server


@pytest.fixture
def key(tenant_a) -> dict:
    raw = ApiKey.generate(tenant_a, "zapier", scopes=SCOPES)[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def new_order(make_connection, make_order, tenant_a, django_capture_on_commit_callbacks):
    """A sync page writes one order and commits; returns the order."""
    shop = make_connection(tenant_a)

    def write(**fields) -> Order:
        with django_capture_on_commit_callbacks(execute=True):
            order = make_order(shop, **fields)
            records_written.send(
                sender=Order,
                tenant_id=tenant_a.pk,
                connection_id=shop.pk,
                stream="orders",
                created=[order.pk],
                updated=[],
            )
        return order

    return write


def test_subscribe_trigger_verify_unsubscribe(api_client, key, receiver, new_order):
    subscribed = api_client.post(
        "/api/v1/hooks", {"target_url": receiver.url, "event": "order.created"}, format="json", **key
    )
    assert subscribed.status_code == 201
    hook_id, secret = subscribed.json()["id"], subscribed.json()["secret"]

    order = new_order(number="A-100")
    run_queued_tasks()

    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "order.created"
    assert payload["data"]["id"] == order.pk and payload["data"]["number"] == "A-100"
    assert payload["id"] == request.headers["webhook-id"]

    samples = api_client.get("/api/v1/hooks/samples/order.created", **key).json()
    assert set(samples[0]) == set(payload)
    assert samples[0]["data"] == payload["data"]  # the same object, in the same shape
    assert samples[0]["type"] == payload["type"]

    log = api_client.get(f"/api/v1/hooks/{hook_id}/deliveries", **key).json()["results"]
    assert [(row["status"], row["attempts"], row["response_code"]) for row in log] == [("succeeded", 1, 200)]
    assert log[0]["webhook_id"] == request.headers["webhook-id"]

    assert api_client.delete(f"/api/v1/hooks/{hook_id}", **key).status_code == 204
    new_order(number="A-101")
    run_queued_tasks()

    assert len(receiver.requests) == 1
    assert not HookDelivery.objects.exists()


def test_a_template_set_when_subscribing_shapes_what_arrives(api_client, key, receiver, new_order):
    template = {"order_number": "data.number", "amount": "data.total", "event": "type"}
    body = {"target_url": receiver.url, "event": "order.created", "payload_template": template}
    secret = api_client.post("/api/v1/hooks", body, format="json", **key).json()["secret"]

    new_order(number="A-7")
    run_queued_tasks()

    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers) == {
        "order_number": "A-7",
        "amount": "10.0000",
        "event": "order.created",
    }


def test_a_zap_that_answers_410_is_unsubscribed(api_client, key, receiver, new_order):
    hook_id = api_client.post(
        "/api/v1/hooks", {"target_url": receiver.url, "event": "order.created"}, format="json", **key
    ).json()["id"]
    receiver.plan(410)

    new_order()
    run_queued_tasks()
    new_order()
    run_queued_tasks()

    assert len(receiver.requests) == 1
    listed = api_client.get(f"/api/v1/hooks/{hook_id}", **key).json()
    assert listed["active"] is False and "410" in listed["disabled_reason"]
    assert HookDelivery.objects.get().status == DeliveryStatus.FAILED


def test_a_name_rebound_to_loopback_after_subscribing_gets_nothing(
    api_client, key, receiver, new_order, settings, monkeypatch
):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    dns = fake_dns(monkeypatch, {"zap.example.org": PUBLIC_IP})
    url = f"https://zap.example.org:{receiver.port}/hook"
    assert (
        api_client.post(
            "/api/v1/hooks", {"target_url": url, "event": "order.created"}, format="json", **key
        ).status_code
        == 201
    )

    dns["zap.example.org"] = "127.0.0.1"  # the attacker's name now points inside
    new_order()
    run_queued_tasks()

    assert receiver.requests == []
    delivery = HookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "127.0.0.1, a private or loopback address" in delivery.error
    assert HookSubscription.objects.get().failing_since is not None
