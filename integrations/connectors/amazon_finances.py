"""Amazon's `finances` stream: settlements and fees from Finances v0.

Settlements are financial event groups (listFinancialEventGroups): one per payout period, open
while Amazon adds to it, then closed and paid. Fees come from the financial events
(listFinancialEvents) of every kind that carries them: the fee lists of shipments, refunds,
guarantee claims and chargebacks (per order and per item), service fees, and the rest in
`FEE_LISTS`. A fee's amount is what the seller was charged (Amazon writes a charge as negative),
so a fee given back with a refund is negative. A fee of zero is not kept.

Both are read by date in windows of at most 179 days (`amazon_streams.financial_pages`, which the
refunds of the orders stream share), each window paged with its NextToken, from a watermark:

    {"settlements": iso, "events": iso}

Events: the end of the last window read to its end; the next read starts two days before it,
since Amazon says events of the last 48 hours may be missing. Settlements change until they are
paid, so their watermark is the start of the oldest one not paid yet (or the end of the read when
all are), less two days, and never more than `SETTLEMENT_HORIZON` back: a payout that never says
it was paid does not keep every read long.

Financial events have no ids. A fee is known by its event (kind, order or other id, posted time),
its item, the list it is in, its type and its place among fees of that type there, which Amazon
keeps when it answers again. Service fee events carry no date: theirs is a digest of the event,
and such a fee has no `posted_at`. Two identical events on one page are told apart by their place
on it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from commerce.models import FeeType, SettlementStatus
from commerce.records import FeeRecord, SettlementRecord

from ..errors import PermissionDenied
from . import amazon_config
from .amazon_client import BudgetSpent
from .amazon_mapping import HUB, money, time_of, without_hub
from .amazon_streams import LAG, LOOKBACK, financial_pages, param_time
from .base import Page

if TYPE_CHECKING:
    from commerce.records import Record

    from .amazon import AmazonConnector
    from .base import Failed

logger = logging.getLogger(__name__)

EVENTS_OVERLAP = timedelta(days=2)
SETTLEMENT_OVERLAP = timedelta(days=2)
SETTLEMENT_HORIZON = timedelta(days=90)
MAX_ID = 128  # commerce's external_id

# Amazon's fee types → ours. Finances v0 calls the referral fee "Commission"; "ReferralFee" is the
# name newer Amazon APIs give it.
FEE_TYPES = {
    "Commission": FeeType.COMMISSION,
    "RefundCommission": FeeType.COMMISSION,
    "ReferralFee": FeeType.REFERRAL,
    "FBAPerUnitFulfillmentFee": FeeType.FULFILMENT,
    "FBAPerOrderFulfillmentFee": FeeType.FULFILMENT,
    "FBAWeightBasedFee": FeeType.FULFILMENT,
    "FBAFulfillmentFee": FeeType.FULFILMENT,
    "FulfillmentFee": FeeType.FULFILMENT,
}
# A financial event group's transfer statuses that mean the money reached the seller ("TRANSFERED"
# is the spelling of the model's example).
PAID = {"succeeded", "transferred", "transfered", "completed"}

# The fields of an event (and of a shipment item) that name it, kept with each of its fees.
EVENT_FIELDS = (
    "AmazonOrderId",
    "SellerOrderId",
    "OrderId",
    "MarketplaceName",
    "MarketplaceId",
    "StoreName",
    "PostedDate",
    "postedDate",
    "TransactionPostedDate",
    "FeeReason",
    "FeeDescription",
    "SellerSKU",
    "SKU",
    "ASIN",
    "FnSKU",
    "CouponId",
    "PaymentEventId",
    "EnrollmentId",
    "dealId",
    "eventType",
    "ImagingRequestBillingItemID",
    "OriginalRemovalOrderId",
    "TransactionType",
)
# Where an event's key comes from, in this order: the first present names it.
KEY_FIELDS = (
    "AmazonOrderId",
    "SellerOrderId",
    "OrderId",
    "PaymentEventId",
    "CouponId",
    "EnrollmentId",
    "dealId",
    "ImagingRequestBillingItemID",
    "OriginalRemovalOrderId",
)
POSTED_FIELDS = ("PostedDate", "postedDate", "TransactionPostedDate")
ITEM_FIELDS = ("SellerSKU", "OrderItemId", "OrderAdjustmentItemId", "QuantityShipped", "RemovalShipmentItemId")

# One fee found in an event: (list it is in, the item's fields or {}, the fee as {FeeType, FeeAmount}).
Found = tuple[str, dict[str, Any], dict[str, Any]]


# --- Reading ----------------------------------------------------------------------------------------


class FinanceSweep:
    def __init__(self, connector: AmazonConnector, cursor: dict[str, Any]) -> None:
        self.connector = connector
        self.api = connector.api
        self.state = copy.deepcopy(cursor)

    def pages(self) -> Iterator[Page]:
        self.end = amazon_config.now() - LAG
        # Each operation has its own allowance: one spent does not keep the other from being read.
        for part in (self._settlements, self._fees):
            try:
                yield from part()
            except BudgetSpent as spent:
                logger.info("Stopping the finances of connection %s: %s", self.connector.cache_id, spent.message)
            except PermissionDenied:
                # As for refunds: the other streams still sync, and the connection's test names the role.
                logger.warning("Connection %s cannot read financial events: finances skipped", self.connector.cache_id)
                break
        # The cursor as it ends is committed even when nothing was read.
        yield self._page([])

    def _page(self, records: list[Record | Failed]) -> Page:
        return Page(records, copy.deepcopy(self.state))

    def _settlements(self) -> Iterator[Page]:
        watermark = time_of(self.state.get("settlements"))
        after = watermark - SETTLEMENT_OVERLAP if watermark else self.end - LOOKBACK
        unpaid: list[datetime] = []
        for payload, window_end in financial_pages(self.api, "listFinancialEventGroups", after, self.end):
            groups = [g for g in payload.get("FinancialEventGroupList") or [] if isinstance(g, dict)]
            records = self.connector.parse_all(
                "finances",
                [{**group, HUB: {"kind": "settlement"}} for group in groups],
                id_of=lambda p: p.get("FinancialEventGroupId"),
            )
            unpaid += [
                r.started_at
                for r in records
                if isinstance(r, SettlementRecord) and r.status != SettlementStatus.PAID and r.started_at
            ]
            if window_end is not None:
                oldest = min([window_end, *unpaid])
                self.state["settlements"] = param_time(max(oldest, self.end - SETTLEMENT_HORIZON))
            yield self._page(records)

    def _fees(self) -> Iterator[Page]:
        watermark = time_of(self.state.get("events"))
        after = watermark - EVENTS_OVERLAP if watermark else self.end - LOOKBACK
        for payload, window_end in financial_pages(self.api, "listFinancialEvents", after, self.end):
            records = self.connector.parse_all(
                "finances", fee_payloads(payload.get("FinancialEvents") or {}), id_of=lambda p: p[HUB]["id"]
            )
            if window_end is not None:
                self.state["events"] = param_time(window_end)
            yield self._page(records)


# --- Finding fees in events -------------------------------------------------------------------------


def _shipment_fees(event: dict[str, Any]) -> Iterator[Found]:
    for name in ("ShipmentFeeList", "ShipmentFeeAdjustmentList", "OrderFeeList", "OrderFeeAdjustmentList"):
        for fee in event.get(name) or []:
            yield name, {}, fee
    for item in [*(event.get("ShipmentItemList") or []), *(event.get("ShipmentItemAdjustmentList") or [])]:
        fields = {k: item[k] for k in ITEM_FIELDS if k in item}
        for name in ("ItemFeeList", "ItemFeeAdjustmentList"):
            for fee in item.get(name) or []:
                yield name, fields, fee


def _fee_list(key: str) -> Callable[[dict[str, Any]], Iterator[Found]]:
    def found(event: dict[str, Any]) -> Iterator[Found]:
        for fee in event.get(key) or []:
            yield key, {}, fee

    return found


def _fee_component(event: dict[str, Any]) -> Iterator[Found]:
    if event.get("FeeComponent"):
        yield "FeeComponent", {}, event["FeeComponent"]


def _deal_fee(event: dict[str, Any]) -> Iterator[Found]:
    if event.get("feeAmount"):
        yield "feeAmount", {}, {"FeeType": event.get("feeType") or "DealFee", "FeeAmount": event["feeAmount"]}


def _liquidation_fee(event: dict[str, Any]) -> Iterator[Found]:
    if event.get("LiquidationFeeAmount"):
        yield "LiquidationFeeAmount", {}, {"FeeType": "LiquidationFee", "FeeAmount": event["LiquidationFeeAmount"]}


def _removal_fees(event: dict[str, Any]) -> Iterator[Found]:
    for item in event.get("RemovalShipmentItemList") or []:
        if item.get("FeeAmount"):
            fields = {k: item[k] for k in ITEM_FIELDS if k in item}
            yield "RemovalShipmentItemList", fields, {"FeeType": "RemovalFee", "FeeAmount": item["FeeAmount"]}


# The lists of `FinancialEvents` that hold fees, and how to find them in one of their events.
FEE_LISTS: dict[str, Callable[[dict[str, Any]], Iterator[Found]]] = {
    "ShipmentEventList": _shipment_fees,
    "RefundEventList": _shipment_fees,
    "GuaranteeClaimEventList": _shipment_fees,
    "ChargebackEventList": _shipment_fees,
    "ServiceFeeEventList": _fee_list("FeeList"),
    "PayWithAmazonEventList": _fee_list("FeeList"),
    "RentalTransactionEventList": _fee_list("RentalFeeList"),
    "ImagingServicesFeeEventList": _fee_list("FeeList"),
    "TrialShipmentEventList": _fee_list("FeeList"),
    "CouponPaymentEventList": _fee_component,
    "SellerReviewEnrollmentPaymentEventList": _fee_component,
    "SellerDealPaymentEventList": _deal_fee,
    "FBALiquidationEventList": _liquidation_fee,
    "RemovalShipmentEventList": _removal_fees,
}


def fee_payloads(events: dict[str, Any]) -> list[dict[str, Any]]:
    """One page's `FinancialEvents` as one payload per non-zero fee: the fee, the fields of its
    event and item, and under `_hub` its id, list and event kind, so that it maps on its own."""
    payloads: list[dict[str, Any]] = []
    seen_events: Counter[str] = Counter()
    for list_name, find in FEE_LISTS.items():
        for event in events.get(list_name) or []:
            if not isinstance(event, dict):
                continue
            kind = list_name.removesuffix("EventList")
            event_key = _event_key(kind, event)
            seen_events[event_key] += 1
            if seen_events[event_key] > 1:
                event_key += f"#{seen_events[event_key]}"
            fields = {k: event[k] for k in EVENT_FIELDS if k in event}
            seen_fees: Counter[tuple[str, str, str]] = Counter()
            for where, item, fee in find(event):
                if not isinstance(fee, dict) or _is_zero(fee):
                    continue
                fee_type = str(fee.get("FeeType") or "")
                item_key = str(item.get("OrderItemId") or item.get("OrderAdjustmentItemId") or "")
                item_key = item_key or str(item.get("RemovalShipmentItemId") or item.get("SellerSKU") or "-")
                seen_fees[item_key, where, fee_type] += 1
                fee_id = ":".join([event_key, item_key, where.removesuffix("List"), fee_type])
                payloads.append(
                    {
                        **fields,
                        **item,
                        "FeeType": fee_type,
                        "FeeAmount": fee.get("FeeAmount"),
                        HUB: {
                            "kind": "fee",
                            "id": _bounded(f"{fee_id}:{seen_fees[item_key, where, fee_type]}"),
                            "event": kind,
                        },
                    }
                )
    return payloads


def _is_zero(fee: dict[str, Any]) -> bool:
    try:
        return not money((fee.get("FeeAmount") or {}).get("CurrencyAmount"))
    except ValueError:
        return False  # kept, for `map_fee` to refuse and the sync to quarantine with its payload


def _event_key(kind: str, event: dict[str, Any]) -> str:
    name = next((str(event[k]) for k in KEY_FIELDS if event.get(k)), "-")
    try:
        posted = time_of(next((event[k] for k in POSTED_FIELDS if event.get(k)), None))
    except ValueError:
        posted = None
    if posted is not None:
        when = posted.strftime("%Y%m%dT%H%M%S")
    else:
        when = "undated-" + hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()[:16]
    return f"{kind}:{name}:{when}"


def _bounded(external_id: str) -> str:
    if len(external_id) <= MAX_ID:
        return external_id
    return f"{external_id[:60]}~{hashlib.sha256(external_id.encode()).hexdigest()[:40]}"


# --- Mapping ----------------------------------------------------------------------------------------


def map_finance(payload: dict[str, Any]) -> Record:
    kind = (payload.get(HUB) or {}).get("kind")
    if kind == "fee":
        return map_fee(payload)
    if kind == "settlement":
        return map_settlement(payload)
    raise ValueError(f"“{kind}” is not a kind of financial record")


def map_fee(payload: dict[str, Any]) -> FeeRecord:
    hub = payload[HUB]
    amount = payload.get("FeeAmount") or {}
    if not amount.get("CurrencyCode"):
        raise ValueError("a fee without a currency")
    posted = time_of(next((payload[k] for k in POSTED_FIELDS if payload.get(k)), None))
    fee_type = str(payload.get("FeeType") or "")
    return FeeRecord(
        external_id=hub["id"],
        # Amazon writes what it charges the seller as negative.
        amount=-money(amount.get("CurrencyAmount")),
        currency=amount["CurrencyCode"],
        type=FEE_TYPES.get(fee_type, FeeType.OTHER),
        platform_type=fee_type[:64],
        event_type=str(hub.get("event") or "")[:64],
        order_external_id=str(payload.get("AmazonOrderId") or ""),
        sku=str(payload.get("SellerSKU") or payload.get("SKU") or ""),
        posted_at=posted,
        updated_at=posted,
        raw=without_hub(payload),
    )


def map_settlement(payload: dict[str, Any]) -> SettlementRecord:
    total = payload.get("OriginalTotal") or payload.get("ConvertedTotal") or {}
    currency = total.get("CurrencyCode") or (payload.get("BeginningBalance") or {}).get("CurrencyCode") or ""
    return SettlementRecord(
        external_id=str(payload["FinancialEventGroupId"]),
        total=money(total.get("CurrencyAmount")),
        currency=currency,
        status=settlement_status(payload),
        started_at=time_of(payload.get("FinancialEventGroupStart")),
        ended_at=time_of(payload.get("FinancialEventGroupEnd")),
        transferred_at=time_of(payload.get("FundTransferDate")),
        raw=without_hub(payload),
    )


def settlement_status(group: dict[str, Any]) -> str:
    processing = str(group.get("ProcessingStatus") or "").lower()
    transfer = str(group.get("FundTransferStatus") or "").lower()
    if processing == "open":
        return SettlementStatus.OPEN
    if transfer in PAID:
        return SettlementStatus.PAID
    if transfer == "failed":
        return SettlementStatus.FAILED
    if processing in ("closed", "processed"):
        return SettlementStatus.CLOSED
    return SettlementStatus.UNKNOWN
