"""End to end through the real pusher (integrations, registered at app load) and the Shopify
connector, with Shopify's GraphQL Admin API played by `responses` in its documented shapes (as in
tests/integrations/test_shopify_push.py): a partial fulfilment lands, a refusal is recorded with
Shopify's reason, and a worker that died after Shopify created the fulfilment is recovered by the
sweep without a second fulfilment, because the connector reads the order first."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import responses

from commerce import fulfilment as service
from commerce import pushes
from commerce.fulfilment import FulfilmentError, fulfil
from commerce.models import FulfillmentStatus, OrderLine
from commerce.models import FulfilmentPushStatus as Status
from integrations.pushes import ConnectorPusher
from tests.fakes.shopify_server import FakeClock

from .test_fulfilment import WorkerDied, run_queued

pytestmark = pytest.mark.django_db

ENDPOINT = "https://alpha-goods.myshopify.com/admin/api/2025-10/graphql.json"
ORDER = "gid://shopify/Order/5001"
LINE_A, LINE_B = "gid://shopify/LineItem/71", "gid://shopify/LineItem/72"
EXTENSIONS = {
    "cost": {
        "requestedQueryCost": 10,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990.0, "restoreRate": 100.0},
    }
}


class ShopifyAdmin:
    """Shopify's Admin API for one order: its fulfillment orders and the fulfilments created."""

    def __init__(self, api: responses.RequestsMock) -> None:
        self.fulfillments: list[dict] = []
        self.sent: list[dict] = []
        self.on_create = None  # what fulfillmentCreate does instead of succeeding
        self.remaining = {LINE_A: 2, LINE_B: 1}
        api.add_callback(responses.POST, ENDPOINT, callback=self.answer)

    def answer(self, request):
        body = json.loads(request.body)
        self.sent.append(body)
        if body["operationName"] == "HubFulfillmentOrders":
            return self.reply(self.order())
        if self.on_create is not None:
            return self.on_create(body)
        return self.reply(self.create(body))

    def reply(self, data: dict):
        return 200, {}, json.dumps({"data": data, "extensions": EXTENSIONS})

    def order(self) -> dict:
        items = [
            {"id": f"fol-{line[-2:]}", "remainingQuantity": left, "lineItem": {"id": line}}
            for line, left in self.remaining.items()
        ]
        return {
            "order": {
                "id": ORDER,
                "fulfillments": self.fulfillments,
                "fulfillmentOrders": {
                    "nodes": [
                        {
                            "id": "gid://shopify/FulfillmentOrder/1",
                            "status": "OPEN" if any(self.remaining.values()) else "CLOSED",
                            "supportedActions": [{"action": "CREATE_FULFILLMENT"}],
                            "lineItems": {"nodes": items},
                        }
                    ]
                },
            }
        }

    def create(self, body: dict) -> dict:
        fulfillment = body["variables"]["fulfillment"]
        created = {
            "id": f"gid://shopify/Fulfillment/{900 + len(self.fulfillments)}",
            "status": "SUCCESS",
            "trackingInfo": [fulfillment["trackingInfo"]],
        }
        self.fulfillments.append(created)
        for group in fulfillment["lineItemsByFulfillmentOrder"]:
            for item in group.get("fulfillmentOrderLineItems") or []:
                line = next(line for line in self.remaining if line.endswith(item["id"][-2:]))
                self.remaining[line] -= item["quantity"]
            if "fulfillmentOrderLineItems" not in group:
                self.remaining = dict.fromkeys(self.remaining, 0)
        return {"fulfillmentCreate": {"fulfillment": {"id": created["id"], "status": "SUCCESS"}, "userErrors": []}}

    def operations(self) -> list[str]:
        return [body["operationName"] for body in self.sent]


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def shopify():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        yield ShopifyAdmin(api)


@pytest.fixture
def order(make_connection, make_order, tenant_a):
    shop = make_connection(
        tenant_a, "shopify", credentials={"shop_domain": "alpha-goods.myshopify.com", "access_token": "shpat_x"}
    )
    order = make_order(shop, number="1001", external_id=ORDER)
    for external_id, sku, quantity in [(LINE_A, "TENT-1", 2), (LINE_B, "MAT-1", 1)]:
        OrderLine.objects.create(
            tenant=tenant_a,
            connection=shop,
            order=order,
            external_id=external_id,
            sku=sku,
            title=sku,
            quantity=quantity,
            unit_price=Decimal("10"),
            total=Decimal("10") * quantity,
        )
    return order


def test_the_real_pusher_is_the_one_registered():
    assert isinstance(pushes.pusher(), ConnectorPusher)


def test_a_partial_fulfilment_lands_in_shopify_and_the_rest_follows(order, shopify, django_capture_on_commit_callbacks):
    tent = order.lines.get(sku="TENT-1")
    with django_capture_on_commit_callbacks(execute=True):
        made = fulfil(order, "1Z999AA10123456784", "ups", [(tent.pk, 1)], notify_customer=True)
    run_queued()

    made.refresh_from_db()
    assert (made.status, made.remote_id) == (Status.PUSHED, "gid://shopify/Fulfillment/900")
    create = next(body for body in shopify.sent if body["operationName"] == "HubFulfillmentCreate")
    assert create["variables"]["fulfillment"] == {
        "lineItemsByFulfillmentOrder": [
            {
                "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1",
                "fulfillmentOrderLineItems": [{"id": "fol-71", "quantity": 1}],
            }
        ],
        "notifyCustomer": True,
        "trackingInfo": {
            "number": "1Z999AA10123456784",
            "company": "UPS",
            "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        },
    }
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.PARTIAL

    with django_capture_on_commit_callbacks(execute=True):
        fulfil(order, "1Z999AA10123456785", "UPS", notify_customer=False)
    run_queued()
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED
    assert shopify.remaining == {LINE_A: 0, LINE_B: 0} and len(shopify.fulfillments) == 2


def test_a_carrier_shopify_does_not_list_is_refused_before_anything_is_sent(order, shopify):
    with pytest.raises(FulfilmentError, match=r"Unknown carrier “Pony Express”\. Accepted: UPS, USPS, FedEx"):
        fulfil(order, "1Z", "Pony Express")
    assert shopify.sent == []


def test_shopifys_refusal_is_recorded_and_the_order_stays_unfulfilled(
    order, shopify, django_capture_on_commit_callbacks
):
    refused = {
        "fulfillmentCreate": {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillment"], "message": "Tracking number is invalid"}],
        }
    }
    shopify.on_create = lambda body: shopify.reply(refused)
    with django_capture_on_commit_callbacks(execute=True):
        made = fulfil(order, "BAD", "ups")
    run_queued()

    made.refresh_from_db()
    assert made.status == Status.FAILED
    assert made.last_error == "Shopify refused the fulfilment: Tracking number is invalid"
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.UNFULFILLED


def test_a_5xx_is_retried_later_reading_the_order_first(order, shopify, django_capture_on_commit_callbacks):
    shopify.on_create = lambda body: (503, {}, "unavailable")
    with django_capture_on_commit_callbacks(execute=True):
        made = fulfil(order, "1Z1", "ups")
    run_queued()
    made.refresh_from_db()
    assert made.status == Status.RETRYING and shopify.operations().count("HubFulfillmentCreate") == 1

    shopify.on_create = None
    service.sweep(now=made.next_attempt_at + timedelta(seconds=1))
    made.refresh_from_db()
    assert made.status == Status.PUSHED
    assert shopify.operations() == ["HubFulfillmentOrders", "HubFulfillmentCreate"] * 2


def test_a_worker_that_died_after_shopify_created_it_is_recovered_without_a_second_fulfilment(
    order, shopify, django_capture_on_commit_callbacks
):
    def created_then_died(body):
        shopify.create(body)
        raise WorkerDied

    shopify.on_create = created_then_died
    with django_capture_on_commit_callbacks(execute=True):
        made = fulfil(order, "1Z999AA10123456784", "ups")
    with pytest.raises(WorkerDied):
        run_queued()
    made.refresh_from_db()
    assert made.status == Status.PUSHING

    shopify.on_create = None
    service.sweep(now=made.locked_until + timedelta(seconds=1))

    made.refresh_from_db()
    assert (made.status, made.attempts, made.remote_id) == (Status.PUSHED, 2, "gid://shopify/Fulfillment/900")
    assert len(shopify.fulfillments) == 1
    assert shopify.operations() == ["HubFulfillmentOrders", "HubFulfillmentCreate", "HubFulfillmentOrders"]
    order.refresh_from_db()
    assert order.fulfillment_status == FulfillmentStatus.FULFILLED
