"""Shopify fulfilment and stock pushes, against Shopify's documented GraphQL shapes (`responses`):
fulfillment orders read first, `fulfillmentCreate` with tracking, partial lines, an earlier attempt
that landed, refusals, and `inventorySetQuantities`."""

from __future__ import annotations

import json

import pytest
import responses

from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors.shopify import ShopifyConnector
from integrations.errors import BadResponse, ConfigurationError, NotFound, Unavailable
from tests.fakes.shopify_server import FakeClock

SHOP = "https://alpha-goods.myshopify.com"
ENDPOINT = f"{SHOP}/admin/api/2025-10/graphql.json"
ORDER = "gid://shopify/Order/5001"
LINE_A, LINE_B = "gid://shopify/LineItem/71", "gid://shopify/LineItem/72"
EXTENSIONS = {
    "cost": {
        "requestedQueryCost": 10,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990.0, "restoreRate": 100.0},
    }
}


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


@pytest.fixture
def connector(make_connection, tenant_a, clock) -> ShopifyConnector:
    connection = make_connection(
        tenant_a, credentials={"shop_domain": "alpha-goods.myshopify.com", "access_token": "shpat_x"}
    )
    return ShopifyConnector(connection, sleep=clock.sleep)


class FakeAdmin:
    """Answers each GraphQL operation by name from `answers`; records what was sent."""

    def __init__(self, api: responses.RequestsMock, answers: dict) -> None:
        self.answers = answers
        self.sent: list[dict] = []
        api.add_callback(responses.POST, ENDPOINT, callback=self.answer)

    def answer(self, request):
        body = json.loads(request.body)
        self.sent.append(body)
        answer = self.answers[body["operationName"]]
        if isinstance(answer, tuple):
            return answer
        return 200, {}, json.dumps({"data": answer, "extensions": EXTENSIONS})

    def operations(self) -> list[str]:
        return [body["operationName"] for body in self.sent]

    def variables(self, operation: str) -> dict:
        return next(body["variables"] for body in self.sent if body["operationName"] == operation)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def fulfillment_orders(*orders, fulfillments=()) -> dict:
    return {"order": {"id": ORDER, "fulfillments": list(fulfillments), "fulfillmentOrders": {"nodes": list(orders)}}}


def fo(fo_id: str, *items, status="OPEN", actions=("CREATE_FULFILLMENT",)) -> dict:
    return {
        "id": fo_id,
        "status": status,
        "supportedActions": [{"action": a} for a in actions],
        "lineItems": {"nodes": [{"id": i, "remainingQuantity": q, "lineItem": {"id": line}} for i, line, q in items]},
    }


def push(**kwargs) -> FulfilmentPush:
    defaults = {
        "tenant_id": 1,
        "connection_id": 1,
        "order_external_id": ORDER,
        "tracking_number": "1Z999AA10123456784",
        "carrier": "ups",
    }
    return FulfilmentPush(**{**defaults, **kwargs})


CREATED = {
    "fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/900", "status": "SUCCESS"}, "userErrors": []}
}


def test_every_remaining_line_is_fulfilled_with_tracking(api, connector):
    admin = FakeAdmin(
        api,
        {
            "HubFulfillmentOrders": fulfillment_orders(fo("gid://shopify/FulfillmentOrder/1", ("fol-1", LINE_A, 2))),
            "HubFulfillmentCreate": CREATED,
        },
    )
    assert (
        connector.fulfil(push(tracking_url="https://t.example/1Z", notify_customer=True))
        == "gid://shopify/Fulfillment/900"
    )
    assert admin.operations() == ["HubFulfillmentOrders", "HubFulfillmentCreate"]
    assert admin.variables("HubFulfillmentCreate") == {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}],
            "notifyCustomer": True,
            "trackingInfo": {"number": "1Z999AA10123456784", "company": "UPS", "url": "https://t.example/1Z"},
        }
    }


def test_a_partial_fulfilment_sends_the_chosen_lines_from_the_fulfillment_orders_holding_them(api, connector):
    admin = FakeAdmin(
        api,
        {
            "HubFulfillmentOrders": fulfillment_orders(
                fo("gid://shopify/FulfillmentOrder/1", ("fol-1", LINE_A, 3)),
                fo("gid://shopify/FulfillmentOrder/2", ("fol-2", LINE_B, 1)),
                fo("gid://shopify/FulfillmentOrder/3", ("fol-3", LINE_A, 5), status="CLOSED"),
            ),
            "HubFulfillmentCreate": CREATED,
        },
    )
    connector.fulfil(push(lines=((LINE_A, 2), (LINE_B, 1)), carrier="royal_mail"))
    sent = admin.variables("HubFulfillmentCreate")["fulfillment"]
    assert sent["lineItemsByFulfillmentOrder"] == [
        {
            "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1",
            "fulfillmentOrderLineItems": [{"id": "fol-1", "quantity": 2}],
        },
        {
            "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/2",
            "fulfillmentOrderLineItems": [{"id": "fol-2", "quantity": 1}],
        },
    ]
    assert sent["trackingInfo"]["company"] == "Royal Mail"


def test_more_than_shopify_has_left_is_refused_before_sending(api, connector):
    admin = FakeAdmin(api, {"HubFulfillmentOrders": fulfillment_orders(fo("fo-1", ("fol-1", LINE_A, 1)))})
    with pytest.raises(BadResponse, match="1 more than Shopify has left"):
        connector.fulfil(push(lines=((LINE_A, 2),)))
    assert admin.operations() == ["HubFulfillmentOrders"]


def test_an_earlier_attempt_that_landed_is_not_created_twice(api, connector):
    landed = {
        "id": "gid://shopify/Fulfillment/777",
        "status": "SUCCESS",
        "trackingInfo": [{"number": "1Z999AA10123456784", "company": "UPS"}],
    }
    admin = FakeAdmin(api, {"HubFulfillmentOrders": fulfillment_orders(fulfillments=[landed])})
    assert connector.fulfil(push()) == "gid://shopify/Fulfillment/777"
    assert admin.operations() == ["HubFulfillmentOrders"]


def test_shopifys_refusal_is_reported_with_its_reason(api, connector):
    refused = {
        "fulfillmentCreate": {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillment"], "message": "Tracking number is invalid"}],
        }
    }
    FakeAdmin(
        api,
        {"HubFulfillmentOrders": fulfillment_orders(fo("fo-1", ("fol-1", LINE_A, 1))), "HubFulfillmentCreate": refused},
    )
    with pytest.raises(BadResponse, match="Tracking number is invalid") as error:
        connector.fulfil(push())
    assert error.value.permanent


@pytest.mark.parametrize(
    ("orders", "message"),
    [
        ([fo("fo-1", ("fol-1", LINE_A, 0), status="CLOSED")], "nothing left to fulfil"),
        ([fo("fo-1", ("fol-1", LINE_A, 1), status="ON_HOLD", actions=("RELEASE_HOLD",))], "nothing left to fulfil"),
    ],
)
def test_an_order_with_nothing_open_is_refused(api, connector, orders, message):
    FakeAdmin(api, {"HubFulfillmentOrders": fulfillment_orders(*orders)})
    with pytest.raises(BadResponse, match=message):
        connector.fulfil(push())


def test_an_order_shopify_does_not_know(api, connector):
    FakeAdmin(api, {"HubFulfillmentOrders": {"order": None}})
    with pytest.raises(NotFound):
        connector.fulfil(push())


def test_an_unknown_carrier_is_refused_with_shopifys_list(api, connector):
    FakeAdmin(api, {"HubFulfillmentOrders": fulfillment_orders(fo("fo-1", ("fol-1", LINE_A, 1)))})
    with pytest.raises(ConfigurationError) as refused:
        connector.fulfil(push(carrier="pony_express"))
    assert "UPS" in str(refused.value) and "Royal Mail" in str(refused.value)


def test_the_mutation_is_not_resent_by_the_http_client_after_a_5xx(api, connector):
    admin = FakeAdmin(
        api,
        {
            "HubFulfillmentOrders": fulfillment_orders(fo("fo-1", ("fol-1", LINE_A, 1))),
            "HubFulfillmentCreate": (503, {}, "unavailable"),
        },
    )
    with pytest.raises(Unavailable) as error:
        connector.fulfil(push())
    assert not error.value.permanent  # the hub retries later, reading the order first
    assert admin.operations().count("HubFulfillmentCreate") == 1


# --- Stock ----------------------------------------------------------------------------------------


def variants(*nodes) -> dict:
    return {"productVariants": {"nodes": list(nodes)}}


VARIANT = {
    "id": "gid://shopify/ProductVariant/1",
    "sku": "TOTE-NAT",
    "inventoryItem": {"id": "gid://shopify/InventoryItem/11", "tracked": True},
}
SET_OK = {
    "inventorySetQuantities": {
        "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/5"},
        "userErrors": [],
    }
}


def stock(**kwargs) -> StockPush:
    return StockPush(**{"tenant_id": 1, "connection_id": 1, "sku": "TOTE-NAT", "quantity": 7, **kwargs})


def test_stock_is_set_at_the_primary_location(api, connector):
    admin = FakeAdmin(
        api,
        {
            "HubVariantBySku": variants(VARIANT),
            "HubPrimaryLocation": {"location": {"id": "gid://shopify/Location/1", "name": "Main"}},
            "HubInventorySet": SET_OK,
        },
    )
    assert connector.set_stock(stock()) == "gid://shopify/InventoryItem/11"
    assert admin.variables("HubVariantBySku") == {"query": 'sku:"TOTE-NAT"'}
    assert admin.variables("HubInventorySet") == {
        "input": {
            "name": "available",
            "reason": "correction",
            "ignoreCompareQuantity": True,
            "quantities": [
                {
                    "inventoryItemId": "gid://shopify/InventoryItem/11",
                    "locationId": "gid://shopify/Location/1",
                    "quantity": 7,
                }
            ],
        }
    }


def test_stock_at_a_given_location_does_not_ask_for_the_primary_one(api, connector):
    admin = FakeAdmin(api, {"HubVariantBySku": variants(VARIANT), "HubInventorySet": SET_OK})
    connector.set_stock(stock(location_id="gid://shopify/Location/2"))
    assert admin.operations() == ["HubVariantBySku", "HubInventorySet"]


@pytest.mark.parametrize(
    ("found", "error", "message"),
    [
        ([], NotFound, "no variant with the SKU"),
        ([{**VARIANT, "sku": "TOTE-NAT-2"}], NotFound, "no variant with the SKU"),  # a search hit, not this SKU
        ([VARIANT, {**VARIANT, "id": "gid://shopify/ProductVariant/2"}], BadResponse, "Several Shopify variants"),
        ([{**VARIANT, "inventoryItem": {"id": "x", "tracked": False}}], BadResponse, "does not track stock"),
    ],
)
def test_a_sku_shopify_cannot_take_stock_for(api, connector, found, error, message):
    FakeAdmin(api, {"HubVariantBySku": variants(*found)})
    with pytest.raises(error, match=message):
        connector.set_stock(stock())


def test_shopifys_refusal_of_a_stock_level(api, connector):
    refused = {
        "inventorySetQuantities": {
            "inventoryAdjustmentGroup": None,
            "userErrors": [
                {"field": ["input"], "message": "The quantity can't be negative", "code": "INVALID_QUANTITY_NEGATIVE"}
            ],
        }
    }
    FakeAdmin(api, {"HubVariantBySku": variants(VARIANT), "HubInventorySet": refused})
    with pytest.raises(BadResponse, match="can't be negative"):
        connector.set_stock(stock(quantity=-1, location_id="gid://shopify/Location/1"))
