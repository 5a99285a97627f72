"""Authorize.Net's transactions in the hub's terms (see authorize_net.py for the requests)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from integrations.errors import BadResponse

from .base import GatewayPayment, GatewayRefund, PaymentStatus, RefundStatus

MASKED = re.compile(r"X{4}\d{4}")
STATUSES = {
    "authorizedPendingCapture": PaymentStatus.AUTHORIZED,
    "capturedPendingSettlement": PaymentStatus.SUCCEEDED,
    "pendingSettlement": PaymentStatus.SUCCEEDED,
    "pendingFinalSettlement": PaymentStatus.SUCCEEDED,
    "updatingSettlement": PaymentStatus.SUCCEEDED,
    "settledSuccessfully": PaymentStatus.SUCCEEDED,
    "chargebackReversal": PaymentStatus.SUCCEEDED,
    "FDSPendingReview": PaymentStatus.PROCESSING,
    "FDSAuthorizedPendingReview": PaymentStatus.PROCESSING,
    "underReview": PaymentStatus.PROCESSING,
    "declined": PaymentStatus.FAILED,
    "failedReview": PaymentStatus.FAILED,
    "generalError": PaymentStatus.FAILED,
    "settlementError": PaymentStatus.FAILED,
    "voided": PaymentStatus.CANCELED,
    "expired": PaymentStatus.CANCELED,
    "chargeback": PaymentStatus.DISPUTED,
}
REFUND_STATUSES = {
    "refundPendingSettlement": RefundStatus.SUCCEEDED,
    "refundSettledSuccessfully": RefundStatus.SUCCEEDED,
}


def order(ref: str, description: str) -> dict[str, str]:
    return {"invoiceNumber": ref, "description": description[:255]} if description else {"invoiceNumber": ref}


def decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def trans_id(response: dict[str, Any]) -> str:
    value = str(response.get("transId") or "")
    return "" if value.strip("0") == "" else value


def card_extra(account: Any) -> dict[str, str]:
    """The masked card number ("XXXX1111") a refund needs, and nothing else of the card."""
    return {"account_number": str(account)} if MASKED.fullmatch(str(account or "")) else {}


def reason_of(response: dict[str, Any]) -> tuple[str, str]:
    """The reason code and text of a transaction's outcome (its first error, else its first message)."""
    for key, code, text in (("errors", "errorCode", "errorText"), ("messages", "code", "description")):
        items = response.get(key)
        items = items.get(key[:-1]) if isinstance(items, dict) else items  # {"error": [...]} in some answers
        first = items[0] if isinstance(items, list) and items else items
        if isinstance(first, dict) and first.get(code):
            return str(first[code]), str(first.get(text) or "").strip()
    return "", ""


def to_payment(details: dict[str, Any]) -> GatewayPayment:
    """A getTransactionDetails transaction."""
    status = STATUSES.get(str(details.get("transactionStatus")), PaymentStatus.PROCESSING)
    payment = GatewayPayment(
        status=status,
        gateway_id=str(details.get("transId")),
        amount=decimal(details.get("authAmount")),
        amount_captured=decimal(details.get("settleAmount")) if status == PaymentStatus.SUCCEEDED else None,
        extra=card_extra(((details.get("payment") or {}).get("creditCard") or {}).get("cardNumber")),
        raw=details,
    )
    if status == PaymentStatus.FAILED:
        payment.failure_code = str(details.get("responseReasonCode") or "")
        payment.failure_message = str(details.get("responseReasonDescription") or "")
    return payment


def to_refund(details: dict[str, Any]) -> GatewayRefund:
    """A refund transaction read back (the original of a duplicate refund request)."""
    if details.get("transactionType") != "refundTransaction":
        raise BadResponse(f"Authorize.Net transaction {details.get('transId')} is not a refund.")
    return GatewayRefund(
        status=REFUND_STATUSES.get(str(details.get("transactionStatus")), RefundStatus.FAILED),
        gateway_id=str(details.get("transId")),
        amount=decimal(details.get("settleAmount")),
        raw=details,
    )
