"""Amazon's finances stream: financial events → fees and event groups → settlements (mapping, on the
documented examples), and reading them against `responses`: windows, NextToken pages, watermarks
with their overlap, a spent allowance, a missing role, and the operations' usage plans."""

from __future__ import annotations

import copy
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from commerce.models import FeeType, SettlementStatus
from commerce.records import FeeRecord, SettlementRecord
from integrations.connectors import amazon_config
from integrations.connectors.amazon import AmazonConnector
from integrations.connectors.amazon_client import OPERATIONS, Operation
from integrations.connectors.amazon_finances import fee_payloads, map_fee, map_finance, map_settlement
from integrations.connectors.amazon_mapping import HUB
from integrations.connectors.amazon_streams import LOOKBACK
from integrations.connectors.base import Failed
from integrations.http import HttpClient
from integrations.platforms import spec_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "amazon"
MODELS = ROOT / "tests" / "contracts" / "amazon-sp-api"
NA = "https://sellingpartnerapi-na.amazon.com"
LWA = "https://api.amazon.com/auth/o2/token"
EVENTS = "/finances/v0/financialEvents"
GROUPS = "/finances/v0/financialEventGroups"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
END = NOW - timedelta(minutes=3)
ORDER = "123-4567890-1234567"
CREDENTIALS = {
    "lwa_client_id": "amzn1.application-oa2-client.0123456789abcdef",
    "lwa_client_secret": "amzn1.oa2-cs.v1.secret",
    "refresh_token": "Atzr|refresh-token",
    "seller_id": "A3TH9S8BH6GOGM",
    "region": "NA",
    "marketplace_ids": "ATVPDKIKX0DER",
}
# Plans roomy enough that no budget waits: the fake clock of these tests never moves.
ROOMY = {name: Operation(name, op.path, 1000.0, 1000) for name, op in OPERATIONS.items()}
D = Decimal


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def events(name: str = "financial_events.json") -> dict:
    return load(name)["payload"]["FinancialEvents"]


def fees_of(financial_events: dict) -> list[FeeRecord]:
    return [map_fee(payload) for payload in fee_payloads(financial_events)]


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(amazon_config, "now", lambda: NOW)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, LWA, json={"access_token": "Atza|first", "expires_in": 3600})
        yield mock


@pytest.fixture
def amazon(make_connection, tenant_a):
    def make(operations=ROOMY) -> AmazonConnector:
        connection = make_connection(tenant_a, "amazon", credentials=CREDENTIALS)
        return AmazonConnector(connection, client=HttpClient(sleep=lambda seconds: None), operations=operations)

    return make


def calls(api, path: str) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(c.request.url).query).items()}
        for c in api.calls
        if urlsplit(c.request.url).path == path
    ]


def no_groups(api):
    api.add(responses.GET, NA + GROUPS, json={"payload": {"FinancialEventGroupList": []}})


def no_events(api):
    api.add(responses.GET, NA + EVENTS, json={"payload": {"FinancialEvents": {}}})


def group(group_id: str, start: datetime, processing: str = "Closed", transfer: str = "Succeeded") -> dict:
    return {
        "FinancialEventGroupId": group_id,
        "ProcessingStatus": processing,
        "FundTransferStatus": transfer,
        "OriginalTotal": {"CurrencyCode": "USD", "CurrencyAmount": 120.5},
        "FinancialEventGroupStart": iso(start),
    }


def read(connector, cursor=None, full=False):
    return list(connector.read("finances", cursor, full=full))


def records(pages) -> list:
    return [record for page in pages for record in page.records]


# --- Fees ---------------------------------------------------------------------------------------------


def test_each_fee_of_a_shipment_is_one_record_positive_when_charged():
    shipment = {"ShipmentEventList": events()["ShipmentEventList"]}
    fees = {(f.sku, f.platform_type): f for f in fees_of(shipment)}
    assert {key: (f.type, f.amount) for key, f in fees.items()} == {
        ("", "FBAPerOrderFulfillmentFee"): (FeeType.FULFILMENT, D("1.0")),
        ("ECHO-DOT-4-CHARCOAL", "FBAPerUnitFulfillmentFee"): (FeeType.FULFILMENT, D("6.44")),
        ("ECHO-DOT-4-CHARCOAL", "Commission"): (FeeType.COMMISSION, D("15.0")),
        ("FIRE-TV-4K-2021", "FBAPerUnitFulfillmentFee"): (FeeType.FULFILMENT, D("3.22")),
        ("FIRE-TV-4K-2021", "Commission"): (FeeType.COMMISSION, D("7.5")),
    }
    commission = fees["ECHO-DOT-4-CHARCOAL", "Commission"]
    assert (commission.order_external_id, commission.currency, commission.event_type) == (ORDER, "USD", "Shipment")
    assert commission.posted_at == commission.updated_at == datetime(2024, 12, 26, 9, 15, 27, tzinfo=UTC)
    assert commission.raw["OrderItemId"] == "12345678901234"
    assert commission.raw["FeeAmount"] == {"CurrencyCode": "USD", "CurrencyAmount": -15.0}
    assert HUB not in commission.raw


def test_a_zero_fee_and_events_without_fees_are_left_out():
    platform_types = {f.platform_type for f in fees_of(events())}
    assert "ShippingChargeback" not in platform_types  # 0.0 in the fixture
    assert all(f.event_type != "ProductAdsPayment" for f in fees_of(events()))


def test_fees_given_back_with_a_refund_are_negative_and_its_refund_fee_positive():
    refund = {"RefundEventList": events()["RefundEventList"]}
    assert {(f.platform_type, f.type, f.amount, f.event_type) for f in fees_of(refund)} == {
        ("Commission", FeeType.COMMISSION, D("-7.5"), "Refund"),
        ("RefundCommission", FeeType.COMMISSION, D("1.5"), "Refund"),
    }


def test_a_service_fee_is_undated_and_known_by_its_content():
    fee, *_ = fees_of({"ServiceFeeEventList": events()["ServiceFeeEventList"]})
    assert (fee.platform_type, fee.type, fee.amount, fee.order_external_id) == ("Subscription", "other", D("39.99"), "")
    assert fee.posted_at is None and fee.updated_at is None
    other_month = copy.deepcopy(events()["ServiceFeeEventList"])
    other_month[0]["FeeDescription"] = "Professional selling plan, February"
    (again,) = fees_of({"ServiceFeeEventList": events()["ServiceFeeEventList"]})
    (different,) = fees_of({"ServiceFeeEventList": other_month})
    assert again.external_id == fee.external_id != different.external_id


def test_fee_ids_are_unique_on_a_page_and_the_same_when_amazon_answers_again():
    first = [f.external_id for f in fees_of(events())]
    assert len(first) == len(set(first)) == 5 + 2 + 1
    assert [f.external_id for f in fees_of(copy.deepcopy(events()))] == first
    assert all(len(external_id) <= 128 for external_id in first)


def test_two_identical_events_on_a_page_are_two_sets_of_fees():
    shipment = events()["ShipmentEventList"][0]
    ids = {f.external_id for f in fees_of({"ShipmentEventList": [shipment, copy.deepcopy(shipment)]})}
    assert len(ids) == 10


def test_two_fees_of_one_type_on_one_item_are_told_apart_by_their_place():
    shipment = copy.deepcopy(events()["ShipmentEventList"][0])
    item = shipment["ShipmentItemList"][1]
    item["ItemFeeList"].append(copy.deepcopy(item["ItemFeeList"][1]))
    commissions = [f for f in fees_of({"ShipmentEventList": [shipment]}) if f.sku == "FIRE-TV-4K-2021"]
    assert len({f.external_id for f in commissions}) == 3


def test_a_fee_id_too_long_for_commerce_is_shortened_and_stays_unique():
    shipment = copy.deepcopy(events()["ShipmentEventList"][0])
    for n, fee in enumerate(shipment["ShipmentItemList"][0]["ItemFeeList"]):
        fee["FeeType"] = "VeryLongFeeTypeNameThatAmazonMightInventOneDay" * 2 + str(n)
    ids = [f.external_id for f in fees_of({"ShipmentEventList": [shipment]})]
    assert all(len(external_id) <= 128 for external_id in ids)
    assert len(set(ids)) == len(ids) == 5


def test_fees_of_the_other_event_kinds_are_found():
    found = fees_of(
        {
            "SellerDealPaymentEventList": [
                {
                    "postedDate": "2025-01-02T00:00:00Z",
                    "dealId": "DEAL-1",
                    "feeType": "RunLightningDealFee",
                    "feeAmount": {"CurrencyCode": "USD", "CurrencyAmount": -150.0},
                }
            ],
            "CouponPaymentEventList": [
                {
                    "PostedDate": "2025-01-03T00:00:00Z",
                    "CouponId": "COUPON-1",
                    "FeeComponent": {
                        "FeeType": "CouponRedemptionFee",
                        "FeeAmount": {"CurrencyCode": "USD", "CurrencyAmount": -0.6},
                    },
                }
            ],
            "FBALiquidationEventList": [
                {
                    "PostedDate": "2025-01-04T00:00:00Z",
                    "OriginalRemovalOrderId": "R-1",
                    "LiquidationFeeAmount": {"CurrencyCode": "USD", "CurrencyAmount": -2.0},
                }
            ],
        }
    )
    assert {(f.event_type, f.platform_type, f.amount) for f in found} == {
        ("SellerDealPayment", "RunLightningDealFee", D("150.0")),
        ("CouponPayment", "CouponRedemptionFee", D("0.6")),
        ("FBALiquidation", "LiquidationFee", D("2.0")),
    }


def test_a_fee_without_a_currency_is_quarantined_with_its_payload(amazon):
    shipment = copy.deepcopy(events()["ShipmentEventList"][0])
    del shipment["ShipmentFeeList"][0]["FeeAmount"]["CurrencyCode"]
    parsed = amazon().parse_all(
        "finances", fee_payloads({"ShipmentEventList": [shipment]}), id_of=lambda p: p[HUB]["id"]
    )
    (failed,) = [r for r in parsed if isinstance(r, Failed)]
    assert "currency" in failed.error and failed.external_id.startswith(f"Shipment:{ORDER}:")
    # The quarantined payload maps again on its own once it is right.
    failed.payload["FeeAmount"]["CurrencyCode"] = "USD"
    assert map_finance(failed.payload).amount == D("1.0")


# --- Settlements --------------------------------------------------------------------------------------


def test_the_documented_event_group_is_a_paid_settlement():
    (payload,) = load("financial_event_groups.json")["payload"]["FinancialEventGroupList"]
    settlement = map_settlement(payload)
    assert (settlement.external_id, settlement.total, settlement.currency) == ("1", D("10.34"), "USD")
    assert settlement.status == SettlementStatus.PAID  # "TRANSFERED", as the model's example spells it
    moment = datetime(2020, 2, 7, 14, 38, 42, 128000, tzinfo=UTC)
    assert settlement.started_at == settlement.ended_at == settlement.transferred_at == moment
    assert settlement.raw == payload


@pytest.mark.parametrize(
    ("processing", "transfer", "status"),
    [
        ("Open", "Unknown", SettlementStatus.OPEN),
        ("Closed", "Succeeded", SettlementStatus.PAID),
        ("Closed", "Initiated", SettlementStatus.CLOSED),
        ("Closed", "Failed", SettlementStatus.FAILED),
        ("", "", SettlementStatus.UNKNOWN),
    ],
)
def test_settlement_statuses(processing, transfer, status):
    assert map_settlement(group("G", NOW, processing, transfer)).status == status


def test_an_open_settlement_without_a_total_has_the_currency_of_its_balance():
    payload = {"FinancialEventGroupId": "G", "ProcessingStatus": "Open"}
    payload["BeginningBalance"] = {"CurrencyCode": "EUR", "CurrencyAmount": 3.5}
    settlement = map_settlement(payload)
    assert (settlement.total, settlement.currency, settlement.ended_at) == (D("0"), "EUR", None)


# --- Reading ------------------------------------------------------------------------------------------


def test_the_stream_is_in_the_catalogue_and_the_connector():
    assert "finances" in spec_for("amazon").streams
    assert "finances" in AmazonConnector.streams


def test_a_first_read_sweeps_two_years_of_settlements_then_events_in_windows_of_179_days(amazon, api):
    no_groups(api)
    no_events(api)
    pages = read(amazon())
    for path, after_key, before_key in (
        (GROUPS, "FinancialEventGroupStartedAfter", "FinancialEventGroupStartedBefore"),
        (EVENTS, "PostedAfter", "PostedBefore"),
    ):
        windows = [(q[after_key], q[before_key]) for q in calls(api, path)]
        assert windows[0][0] == iso(END - LOOKBACK)
        assert windows[-1][1] == iso(END)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
        spans = [datetime.fromisoformat(b) - datetime.fromisoformat(a) for a, b in windows]
        assert max(spans) == timedelta(days=179) and len(windows) == 5
        assert all(q["MaxResultsPerPage"] == "100" for q in calls(api, path))
    assert pages[-1].cursor == {"settlements": iso(END), "events": iso(END)}


def test_events_follow_next_token_with_the_same_arguments_and_the_watermark_moves_at_the_window_end(amazon, api):
    no_groups(api)
    first_page = {"NextToken": "page-2", "FinancialEvents": {"ShipmentEventList": events()["ShipmentEventList"]}}
    api.add(responses.GET, NA + EVENTS, json={"payload": first_page})
    api.add(
        responses.GET,
        NA + EVENTS,
        json={"payload": {"FinancialEvents": {"RefundEventList": events()["RefundEventList"]}}},
    )
    cursor = {"settlements": iso(NOW - timedelta(days=1)), "events": iso(NOW - timedelta(days=1))}
    pages = read(amazon(), cursor=cursor)
    first, second = calls(api, EVENTS)
    assert "NextToken" not in first and second["NextToken"] == "page-2"
    assert {k: v for k, v in second.items() if k != "NextToken"} == first
    fee_pages = [p for p in pages if any(isinstance(r, FeeRecord) for r in p.records)]
    assert [len(p.records) for p in fee_pages] == [5, 2]
    # While the window pages, the watermark stays where it was; page tokens are never stored.
    assert fee_pages[0].cursor["events"] == cursor["events"]
    assert "page-2" not in json.dumps(fee_pages[0].cursor)
    assert fee_pages[1].cursor["events"] == iso(END)


def test_an_incremental_read_starts_two_days_before_each_watermark(amazon, api):
    no_groups(api)
    no_events(api)
    cursor = {"settlements": iso(NOW - timedelta(days=5)), "events": iso(NOW - timedelta(hours=1))}
    read(amazon(), cursor=cursor)
    assert [q["FinancialEventGroupStartedAfter"] for q in calls(api, GROUPS)] == [iso(NOW - timedelta(days=7))]
    assert [q["PostedAfter"] for q in calls(api, EVENTS)] == [iso(NOW - timedelta(days=2, hours=1))]


def test_a_full_read_ignores_the_cursor(amazon, api):
    no_groups(api)
    no_events(api)
    read(amazon(), cursor={"settlements": iso(NOW), "events": iso(NOW)}, full=True)
    assert calls(api, EVENTS)[0]["PostedAfter"] == iso(END - LOOKBACK)


def test_the_settlement_watermark_waits_at_the_oldest_settlement_not_paid_yet(amazon, api):
    unpaid = NOW - timedelta(days=20)
    groups = [group("PAID", NOW - timedelta(days=34)), group("CLOSED", unpaid, transfer="Initiated")]
    groups.append(group("OPEN", NOW - timedelta(days=6), processing="Open", transfer="Unknown"))
    api.add(responses.GET, NA + GROUPS, json={"payload": {"FinancialEventGroupList": groups}})
    no_events(api)
    pages = read(amazon(), cursor={"settlements": iso(NOW - timedelta(days=40)), "events": iso(NOW)})
    settlements = {r.external_id: r for r in records(pages) if isinstance(r, SettlementRecord)}
    assert {k: s.status for k, s in settlements.items()} == {"PAID": "paid", "CLOSED": "closed", "OPEN": "open"}
    assert pages[-1].cursor["settlements"] == iso(unpaid)


def test_a_settlement_never_marked_paid_holds_the_watermark_back_90_days_at_most(amazon, api):
    stuck = group("STUCK", NOW - timedelta(days=150), transfer="Unknown")
    api.add(responses.GET, NA + GROUPS, json={"payload": {"FinancialEventGroupList": [stuck]}})
    no_events(api)
    pages = read(amazon(), cursor={"settlements": iso(NOW - timedelta(days=160)), "events": iso(NOW)})
    assert pages[-1].cursor["settlements"] == iso(END - timedelta(days=90))


def test_a_spent_events_allowance_still_reads_settlements_and_keeps_the_events_watermark(amazon, api):
    no_groups(api)
    tight = {
        **ROOMY,
        "listFinancialEvents": Operation("listFinancialEvents", OPERATIONS["listFinancialEvents"].path, 1e-6, 1),
    }
    connector = amazon(operations=tight)
    connector.api.budget("listFinancialEvents").acquire()
    cursor = {"settlements": iso(NOW - timedelta(days=1)), "events": iso(NOW - timedelta(days=1))}
    pages = read(connector, cursor=cursor)
    assert calls(api, GROUPS) and not calls(api, EVENTS)
    assert pages[-1].cursor == {"settlements": iso(END), "events": cursor["events"]}


def test_without_the_finance_role_the_stream_ends_quietly_where_it_was(amazon, api):
    api.add(responses.GET, NA + GROUPS, json=load("error_unauthorized.json"), status=403)
    cursor = {"settlements": iso(NOW - timedelta(days=1)), "events": iso(NOW - timedelta(days=1))}
    pages = read(amazon(), cursor=cursor)
    assert records(pages) == [] and pages[-1].cursor == cursor
    assert not calls(api, EVENTS)


# --- Usage plans --------------------------------------------------------------------------------------


def usage_plans() -> dict[str, tuple[float, int]]:
    """Each operation's default rate and burst, from the usage plan table of its description."""
    plans = {}
    for model in MODELS.glob("*.json"):
        for item in json.loads(model.read_text()).get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                table = re.search(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|", operation.get("description", ""))
                if table:
                    plans[operation["operationId"]] = (float(table[1]), int(table[2]))
    return plans


def test_every_operation_has_the_usage_plan_of_its_vendor_model():
    plans = usage_plans()
    assert {"listFinancialEvents", "listFinancialEventGroups"} <= set(plans)
    for name, operation in OPERATIONS.items():
        if name in plans:  # the Sellers and Listings Items models are not among the copies
            assert (operation.rate, operation.burst) == plans[name], name
    assert set(OPERATIONS) - set(plans) == {"getMarketplaceParticipations", "getListingsItem", "patchListingsItem"}
