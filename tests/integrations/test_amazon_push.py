"""Amazon shipment and stock pushes against Amazon's documented shapes (`responses`): the order read
first, confirmShipment with the package's items and Amazon's carrier code, partial shipments, an
earlier attempt that landed, FBA refused, Amazon's error bodies in the error, a 5xx never sent
twice, 429s and their rate headers, a refused token renewed once, and patchListingsItem with its
ACCEPTED and INVALID answers."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from commerce.carriers import CARRIERS
from commerce.pushes import FulfilmentPush, StockPush
from integrations.connectors import amazon_config
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.amazon_client import OPERATIONS
from integrations.errors import AuthError, BadResponse, ConfigurationError, NotFound, RateLimited
from integrations.http import HttpClient
from integrations.pushes import ConnectorPusher

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"
NA = "https://sellingpartnerapi-na.amazon.com"
LWA = "https://api.amazon.com/auth/o2/token"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
SELLER = "A3TH9S8BH6GOGM"
ORDER_ID = "114-9876543-1234567"  # getOrder's documented unshipped US order
ITEM, OTHER_ITEM = "11498765431234", "11498765431235"
GET_ORDER = f"/orders/2026-01-01/orders/{ORDER_ID}"
CONFIRM = f"/orders/v0/orders/{ORDER_ID}/shipmentConfirmation"
SKU = "GM-ZDPI-9B4E"  # the Listings Items examples' SKU
LISTING = f"/listings/2021-08-01/items/{SELLER}/{SKU}"
NOW = datetime(2025, 1, 15, 12, 0, 0, 123456, tzinfo=UTC)
CREDENTIALS = {
    "lwa_client_id": "amzn1.application-oa2-client.0123456789abcdef",
    "lwa_client_secret": "amzn1.oa2-cs.v1.secret",
    "refresh_token": "Atzr|refresh-token",
    "seller_id": SELLER,
    "region": "NA",
    "marketplace_ids": US,
}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(amazon_config, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def connection(make_connection, tenant_a):
    def make(**credentials):
        return make_connection(tenant_a, "amazon", credentials={**CREDENTIALS, **credentials})

    return make


@pytest.fixture
def amazon(connection):
    def make(**credentials) -> AmazonConnector:
        return AmazonConnector(connection(**credentials), client=HttpClient(sleep=lambda s: None))

    return make


def token(api, access: str = "Atza|first"):
    api.add(responses.POST, LWA, json={"access_token": access, "token_type": "bearer", "expires_in": 3600})


def calls(api, path: str, method: str | None = None):
    return [
        c for c in api.calls if urlsplit(c.request.url).path == path and (method is None or c.request.method == method)
    ]


def query(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def sent(call) -> dict:
    return json.loads(call.request.body)


def order(*items: tuple[str, int, int], status="UNSHIPPED", fulfilled_by="MERCHANT", packages=()) -> dict:
    """getOrder's documented unshipped order, with these (item id, ordered, left to ship) items."""
    body = load("get_order_unshipped.json")
    template = body["order"]["orderItems"][0]
    body["order"]["orderItems"] = [
        {
            **copy.deepcopy(template),
            "orderItemId": item_id,
            "quantityOrdered": ordered,
            "fulfillment": {"quantityFulfilled": ordered - left, "quantityUnfulfilled": left},
        }
        for item_id, ordered, left in items or [(ITEM, 1, 1)]
    ]
    body["order"]["fulfillment"].update(fulfillmentStatus=status, fulfilledBy=fulfilled_by)
    if packages:
        body["order"]["packages"] = list(packages)
    return body


def package(reference: str, tracking: str, *items: tuple[str, int]) -> dict:
    return {
        "packageReferenceId": reference,
        "packageStatus": {"status": "SHIPPED"},
        "carrier": "UPS",
        "trackingNumber": tracking,
        "packageItems": [{"orderItemId": i, "quantity": q} for i, q in items],
    }


def push(**kwargs) -> FulfilmentPush:
    defaults = {
        "tenant_id": 1,
        "connection_id": 1,
        "order_external_id": ORDER_ID,
        "tracking_number": "1Z999AA10123456784",
        "carrier": "ups",
    }
    return FulfilmentPush(**{**defaults, **kwargs})


def confirmed(api, status: int = 204, **kwargs):
    api.add(responses.POST, NA + CONFIRM, status=status, **kwargs)


# --- Shipments -----------------------------------------------------------------------------------------


def test_an_unshipped_order_is_confirmed_with_every_item_left_and_amazons_carrier_code(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order((ITEM, 1, 1), (OTHER_ITEM, 2, 2)))
    confirmed(api)
    assert amazon().fulfil(push(carrier="royal_mail")) == f"{ORDER_ID}:1"
    [read] = calls(api, GET_ORDER)
    assert query(read)["includedData"] == "FULFILLMENT,PACKAGES"
    [post] = calls(api, CONFIRM)
    assert post.request.headers["x-amz-access-token"] == "Atza|first"
    assert sent(post) == {
        "marketplaceId": US,
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "Royal Mail",
            "trackingNumber": "1Z999AA10123456784",
            "shipDate": "2025-01-15T12:00:00Z",
            "orderItems": [{"orderItemId": ITEM, "quantity": 1}, {"orderItemId": OTHER_ITEM, "quantity": 2}],
        },
    }


def test_a_partial_shipment_confirms_only_the_pushed_items_and_quantities(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order((ITEM, 1, 1), (OTHER_ITEM, 2, 2)))
    confirmed(api)
    amazon().fulfil(push(lines=((OTHER_ITEM, 1),)))
    assert sent(calls(api, CONFIRM)[0])["packageDetail"]["orderItems"] == [{"orderItemId": OTHER_ITEM, "quantity": 1}]


def test_the_next_package_of_a_partly_shipped_order_takes_what_is_left_under_a_new_reference(amazon, api):
    token(api)
    first = package("1", "1ZFIRST", (OTHER_ITEM, 1))
    api.add(
        responses.GET,
        NA + GET_ORDER,
        json=order((ITEM, 1, 1), (OTHER_ITEM, 2, 1), status="PARTIALLY_SHIPPED", packages=[first]),
    )
    confirmed(api)
    assert amazon().fulfil(push()) == f"{ORDER_ID}:2"
    detail = sent(calls(api, CONFIRM)[0])["packageDetail"]
    assert detail["packageReferenceId"] == "2"
    assert detail["orderItems"] == [{"orderItemId": ITEM, "quantity": 1}, {"orderItemId": OTHER_ITEM, "quantity": 1}]


def test_more_than_amazon_has_left_to_ship_is_refused_before_sending(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order((ITEM, 3, 1)))
    with pytest.raises(BadResponse, match=r"11498765431234 \(2, 1 left to ship\)"):
        amazon().fulfil(push(lines=((ITEM, 2),)))
    assert not calls(api, CONFIRM)


def test_an_item_the_order_does_not_have_is_refused(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    with pytest.raises(NotFound, match=f"Amazon order {ORDER_ID} has no item 999"):
        amazon().fulfil(push(lines=(("999", 1),)))
    assert not calls(api, CONFIRM)


def test_an_fba_order_is_refused_because_amazon_ships_it(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order(fulfilled_by="AMAZON"))
    with pytest.raises(BadResponse, match=r"fulfilled by Amazon \(FBA\): Amazon ships it") as refused:
        amazon().fulfil(push())
    assert refused.value.permanent
    assert "seller-fulfilled" in refused.value.hint
    assert not calls(api, CONFIRM)


def test_an_order_already_shipped_with_this_tracking_number_sends_nothing(amazon, api):
    token(api)
    api.add(responses.GET, NA + "/orders/2026-01-01/orders/202-1234567-8901234", json=load("get_order.json"))
    landed = push(order_external_id="202-1234567-8901234", tracking_number="RR123456789GB", carrier="royal_mail")
    assert amazon().fulfil(landed) == "202-1234567-8901234:UK-PKG-2024-001"
    assert [c.request.method for c in api.calls if "sellingpartnerapi" in c.request.url] == ["GET"]


def test_an_order_shipped_with_another_tracking_number_is_refused_and_names_it(amazon, api):
    token(api)
    api.add(responses.GET, NA + "/orders/2026-01-01/orders/202-1234567-8901234", json=load("get_order.json"))
    with pytest.raises(BadResponse, match="is already shipped: it cannot be shipped") as refused:
        amazon().fulfil(push(order_external_id="202-1234567-8901234"))
    assert "RR123456789GB" in refused.value.hint


@pytest.mark.parametrize(
    ("status", "reason"), [("CANCELLED", "is cancelled"), ("PENDING", "has not authorised its payment")]
)
def test_an_order_amazon_will_not_ship_is_refused_before_sending(amazon, api, status, reason):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order(status=status))
    with pytest.raises(BadResponse, match=reason):
        amazon().fulfil(push())
    assert not calls(api, CONFIRM)


def test_an_unknown_carrier_is_refused_with_the_carriers_amazon_accepts(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    with pytest.raises(ConfigurationError, match="pony_express") as refused:
        amazon().fulfil(push(carrier="pony_express"))
    assert "Royal Mail" in refused.value.hint and "Yamato Transport" in refused.value.hint
    assert not calls(api, CONFIRM)


def test_every_hub_carrier_has_an_amazon_carrier_code(connection):
    shop = connection()
    assert set(ConnectorPusher().carriers(shop.tenant_id, shop.pk)) == set(CARRIERS)


def test_amazons_own_words_come_with_a_refused_confirmation(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=400, json=load("confirm_shipment_invalid_carrier.json"))
    with pytest.raises(BadResponse) as refused:
        amazon().fulfil(push())
    assert refused.value.permanent and refused.value.status == 400
    assert "InvalidInput: Invalid carrierCode. (Royal Mail is not a carrier of the US marketplace" in str(refused.value)
    assert len(calls(api, CONFIRM)) == 1


def test_amazons_documented_refusal_of_a_confirmation_is_permanent(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=400, json=load("confirm_shipment_invalid_input.json"))
    with pytest.raises(BadResponse, match="Invalid Input: Invalid Input"):
        amazon().fulfil(push())


def test_a_5xx_on_the_confirmation_is_not_sent_again_and_the_next_attempt_finds_it_landed(connection, api):
    shop = connection()
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=503, json={"errors": [{"code": "ServiceUnavailable", "message": "Retry later."}]})
    landed = order(status="SHIPPED", packages=[package("1", "1Z999AA10123456784", (ITEM, 1))])
    api.add(responses.GET, NA + GET_ORDER, json=landed)
    pusher = ConnectorPusher()
    first = pusher.fulfil(push(tenant_id=shop.tenant_id, connection_id=shop.pk))
    assert (first.ok, first.retryable) == (False, True)
    assert "503" in first.message
    assert len(calls(api, CONFIRM)) == 1
    second = pusher.fulfil(push(tenant_id=shop.tenant_id, connection_id=shop.pk))
    assert (second.ok, second.remote_id) == (True, f"{ORDER_ID}:1")
    assert len(calls(api, CONFIRM)) == 1


def test_a_429_on_the_confirmation_is_not_sent_again_and_slows_the_operation_to_amazons_rate(amazon, api):
    token(api)
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=429, json=load("error_quota_exceeded.json"), headers={"x-amzn-RateLimit-Limit": "0.5"})
    connector = amazon()
    with pytest.raises(RateLimited) as limited:
        connector.fulfil(push())
    assert not limited.value.permanent
    assert len(calls(api, CONFIRM)) == 1
    budget = connector.api.budget("confirmShipment")
    assert (budget.rate, budget.window) == (0.5, 20.0)
    assert connector.api.budget("getOrder").rate == 0.5


def test_an_expired_token_is_renewed_once_and_the_confirmation_goes_through(amazon, api):
    token(api, "Atza|expired")
    token(api, "Atza|fresh")
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=403, json=load("error_unauthorized.json"))
    confirmed(api)
    assert amazon().fulfil(push()) == f"{ORDER_ID}:1"
    assert [c.request.headers["x-amz-access-token"] for c in calls(api, CONFIRM)] == ["Atza|expired", "Atza|fresh"]
    assert len(calls(api, "/auth/o2/token")) == 2


def test_a_token_refused_again_after_renewing_is_not_sent_a_third_time(amazon, api):
    token(api, "Atza|expired")
    token(api, "Atza|fresh")
    api.add(responses.GET, NA + GET_ORDER, json=order())
    confirmed(api, status=401, json=load("error_unauthorized.json"))
    with pytest.raises(AuthError, match="re-authorise the app in Seller Central"):
        amazon().fulfil(push())
    assert len(calls(api, CONFIRM)) == 2


# --- Stock ---------------------------------------------------------------------------------------------


def stock(**kwargs) -> StockPush:
    return StockPush(**{"tenant_id": 1, "connection_id": 1, "sku": SKU, "quantity": 7, **kwargs})


NOT_FOUND = {"errors": [{"code": "NOT_FOUND", "message": "Requested item was not found."}]}


def listing(api, *, channel: str = "DEFAULT", status: int = 200, path: str = LISTING):
    body = load("listings_item.json")
    body["fulfillmentAvailability"] = [{"fulfillmentChannelCode": channel, "quantity": 100}]
    api.add(responses.GET, NA + path, json=body if status == 200 else NOT_FOUND, status=status)


def patched(api, body=None, *, status: int = 200, headers=None, path: str = LISTING):
    answer = body if body is not None else load("listings_submission_accepted.json")
    api.add(responses.PATCH, NA + path, json=answer, status=status, headers=headers)


PATCH_BODY = {
    "productType": "PRODUCT",
    "patches": [
        {
            "op": "replace",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
        }
    ],
}


def test_a_seller_fulfilled_listing_gets_its_quantity_in_each_marketplace(amazon, api):
    token(api)
    listing(api)
    patched(api)
    assert amazon(marketplace_ids=f"{US},{CA}").set_stock(stock()) == SKU
    reads, patches = calls(api, LISTING, "GET"), calls(api, LISTING, "PATCH")
    assert [query(c)["marketplaceIds"] for c in reads] == [US, CA]
    assert query(reads[0])["includedData"] == "summaries,fulfillmentAvailability"
    assert [query(c)["marketplaceIds"] for c in patches] == [US, CA]
    assert all(sent(c) == PATCH_BODY for c in patches)


def test_a_location_sets_the_quantity_in_that_marketplace_only(amazon, api):
    token(api)
    listing(api)
    patched(api)
    amazon(marketplace_ids=f"{US},{CA}").set_stock(stock(location_id=CA))
    assert [query(c)["marketplaceIds"] for c in calls(api, LISTING)] == [CA, CA]


def test_a_location_that_is_no_marketplace_of_the_connection_is_refused_before_sending(amazon, api):
    with pytest.raises(ConfigurationError, match="not a marketplace of this Amazon connection") as refused:
        amazon().set_stock(stock(location_id="A1F83G8C2ARO7P"))
    assert US in refused.value.hint
    assert not api.calls


def test_a_marketplace_without_the_listing_is_skipped(amazon, api):
    token(api)
    listing(api, status=404)
    listing(api)
    patched(api)
    amazon(marketplace_ids=f"{US},{CA}").set_stock(stock())
    assert [query(c)["marketplaceIds"] for c in calls(api, LISTING, "PATCH")] == [CA]


def test_a_sku_amazon_has_no_listing_for_is_not_found(amazon, api):
    token(api)
    listing(api, status=404)
    with pytest.raises(NotFound, match=f"no listing with the SKU “{SKU}”"):
        amazon().set_stock(stock())
    assert not calls(api, LISTING, "PATCH")


def test_fba_stock_is_refused_and_nothing_is_patched(amazon, api):
    token(api)
    listing(api)
    listing(api, channel="AMAZON_NA")
    with pytest.raises(BadResponse, match=r"fulfilled by Amazon \(FBA\) in CA: Amazon counts its stock") as refused:
        amazon(marketplace_ids=f"{US},{CA}").set_stock(stock())
    assert "seller-fulfilled" in refused.value.hint
    assert not calls(api, LISTING, "PATCH")


def test_an_invalid_submission_carries_amazons_issues(amazon, api):
    token(api)
    listing(api)
    patched(api, load("listings_submission_invalid.json"))
    with pytest.raises(BadResponse) as refused:
        amazon().set_stock(stock())
    assert (
        str(refused.value) == f"Amazon refused the stock level for “{SKU}” in US: 90000900: The attributes are invalid."
    )
    assert refused.value.permanent


def test_an_accepted_submission_with_warnings_is_a_success(amazon, api):
    token(api)
    listing(api)
    warning = {"code": "18027", "message": "Check the main image.", "severity": "WARNING", "categories": []}
    patched(api, {**load("listings_submission_accepted.json"), "issues": [warning]})
    assert amazon().set_stock(stock()) == SKU


def test_a_quantity_below_zero_is_sent_as_zero(amazon, api):
    token(api)
    listing(api)
    patched(api)
    amazon().set_stock(stock(quantity=-3))
    [patch] = calls(api, LISTING, "PATCH")
    assert sent(patch)["patches"][0]["value"] == [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}]


def test_a_sku_with_a_slash_and_a_space_is_encoded_in_the_path(amazon, api):
    token(api)
    path = f"/listings/2021-08-01/items/{SELLER}/TOTE%2FNAT%201"
    listing(api, path=path)
    patched(api, path=path)
    assert amazon().set_stock(stock(sku="TOTE/NAT 1")) == "TOTE/NAT 1"
    assert len(calls(api, path)) == 2


def test_a_patch_answered_429_waits_and_goes_again_at_the_rate_amazon_reports(amazon, api):
    token(api)
    listing(api)
    patched(api, load("error_quota_exceeded.json"), status=429, headers={"x-amzn-RateLimit-Limit": "2.0"})
    patched(api)
    connector = amazon()
    assert connector.set_stock(stock()) == SKU
    assert len(calls(api, LISTING, "PATCH")) == 2
    budget = connector.api.budget("patchListingsItem")
    assert (budget.rate, budget.burst) == (2.0, 5)


def test_without_a_seller_id_nothing_is_sent(amazon, api):
    with pytest.raises(ConfigurationError, match="Seller ID"):
        amazon(seller_id="").set_stock(stock())
    assert not api.calls


def test_the_push_operations_have_the_usage_plans_and_methods_amazon_documents():
    plans = {name: (op.method, op.rate, op.burst) for name, op in OPERATIONS.items()}
    assert plans["confirmShipment"] == ("POST", 2.0, 10)
    assert plans["getListingsItem"] == ("GET", 5.0, 10)
    assert plans["patchListingsItem"] == ("PATCH", 5.0, 5)
