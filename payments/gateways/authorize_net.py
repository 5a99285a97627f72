"""Authorize.Net: card payments taken with Accept.js tokens, over its JSON API (authorize_net_api.py).

- charge is createTransactionRequest: authCaptureTransaction, or authOnlyTransaction to authorise
  only, with the Accept.js payment nonce as opaque data (a card number is refused before anything
  is sent) and the amount as a decimal string in the currency given.
- Authorize.Net has no idempotency key. The hub's key becomes a stable 20-character reference,
  sent as refId and as the order's invoice number, and every create asks for the longest duplicate
  window (8 hours). The same request again within it (a retry after a timeout) is answered
  "duplicate transaction" (reason 11) with the original's transaction id; the answer is then that
  original, once its invoice number shows it is this very request. Another payment of the same
  amount on the same card has another invoice number, so it is never taken for a duplicate.
- responseCode 1 is approved, 2 declined and 4 held for review: answers. 3 is an error, an answer
  too when it is about the card (expired, invalid number), otherwise an error.
- A refund names the card by the masked number ("XXXX1111") the charge kept in `extra`.
  Authorize.Net refunds only settled transactions (it settles nightly): before then, a refund of
  the whole amount voids the transaction instead; a refund in part has to wait.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from functools import cached_property
from typing import Any

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, ConfigurationError, IntegrationError

from ..money import to_decimal_string
from .authorize_net_api import ENVIRONMENTS, PATH, AuthorizeNetApi, refuse, short_ref
from .authorize_net_mapping import MASKED, card_extra, decimal, order, reason_of, to_payment, to_refund, trans_id
from .base import ChargeRequest, Gateway, GatewayPayment, GatewayRefund, PaymentStatus, RefundRequest, RefundStatus

ACCEPT = "COMMON.ACCEPT.INAPP.PAYMENT"
DUPLICATE_WINDOW = {"setting": {"settingName": "duplicateWindow", "settingValue": "28800"}}  # the longest, 8 h
DUPLICATE = "11"
UNSETTLED_REFUND = "54"  # the referenced transaction does not meet the criteria for issuing a credit
# Reasons of responseCode 3 that are about the card, so a failed payment rather than an error.
CARD_ERRORS = {"6", "7", "8", "17", "28", "37", "78", "315", "316", "317"}
# Every currency Authorize.Net settles in has two decimals; a capture is not told which one it is in.
TWO_DECIMALS = "USD"
CARD_NUMBER = re.compile(r"\d{12,19}")
UNSETTLED = {"authorizedPendingCapture", "capturedPendingSettlement", "FDSPendingReview", "FDSAuthorizedPendingReview"}


class AuthorizeNetGateway(Gateway):
    platform = "authorize_net"

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        if CARD_NUMBER.fullmatch(re.sub(r"[\s-]", "", request.payment_method)):
            raise ConfigurationError(
                "The payment method looks like a card number: Authorize.Net is sent only Accept.js payment tokens.",
                hint="Take the card with Accept.js in the browser and send its opaque data value.",
            )
        ref = short_ref(request.idempotency_key)
        transaction: dict[str, Any] = {
            "transactionType": "authCaptureTransaction" if request.capture else "authOnlyTransaction",
            "amount": to_decimal_string(request.amount, request.currency),
            "currencyCode": request.currency.upper(),
            "payment": {"opaqueData": {"dataDescriptor": ACCEPT, "dataValue": request.payment_method}},
            "order": order(ref, request.description),
        }
        if "@" in request.customer:
            transaction["customer"] = {"email": request.customer[:255]}
        elif 0 < len(request.customer) <= 20:  # a longer id does not fit Authorize.Net's
            transaction["customer"] = {"id": request.customer}
        transaction["transactionSettings"] = DUPLICATE_WINDOW
        response = self._transaction(ref, transaction)
        code, (reason, text) = response["responseCode"], reason_of(response)
        if code == "3" and reason == DUPLICATE:
            original = to_payment(self._original(response, ref))
            original.currency = request.currency.upper()  # transaction details do not say
            return original
        if code == "3" and reason not in CARD_ERRORS:
            raise BadResponse(f"Authorize.Net refused the payment ({reason}: {text.rstrip('.')}).")
        status = {
            "1": PaymentStatus.SUCCEEDED if request.capture else PaymentStatus.AUTHORIZED,
            "4": PaymentStatus.PROCESSING,
        }
        payment = GatewayPayment(
            status=status.get(code, PaymentStatus.FAILED),
            gateway_id=trans_id(response),
            amount=request.amount,
            currency=request.currency.upper(),
            extra=card_extra(response.get("accountNumber")),
            raw=response,
        )
        if payment.status == PaymentStatus.SUCCEEDED:
            payment.amount_captured = request.amount
        if payment.status == PaymentStatus.FAILED:
            payment.failure_code, payment.failure_message = reason, text
        return payment

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        transaction: dict[str, Any] = {"transactionType": "priorAuthCaptureTransaction"}
        if amount is not None:
            transaction["amount"] = to_decimal_string(amount, TWO_DECIMALS)
        transaction["refTransId"] = gateway_id
        response = self._transaction(short_ref(idempotency_key), transaction)
        # The transaction as it is now: captured by this request, or by an earlier one whose
        # answer was lost (Authorize.Net then refuses this one: already captured, or a duplicate).
        payment = self.retrieve(gateway_id)
        if payment.status == PaymentStatus.SUCCEEDED or response["responseCode"] == "1":
            return payment
        reason, text = reason_of(response)
        raise BadResponse(f"Authorize.Net refused the capture ({reason}: {text.rstrip('.')}).")

    def refund(self, request: RefundRequest) -> GatewayRefund:
        account = str(request.payment_extra.get("account_number") or "")
        if not MASKED.fullmatch(account):
            account = str(self.retrieve(request.gateway_payment_id).extra.get("account_number") or "")
        if not account:
            raise ConfigurationError(
                f"Authorize.Net names no card for transaction {request.gateway_payment_id}, and a refund needs one.",
                hint="Refund it in the Merchant Interface.",
            )
        ref = short_ref(request.idempotency_key)
        transaction = {
            "transactionType": "refundTransaction",
            "amount": to_decimal_string(request.amount, request.currency),
            "currencyCode": request.currency.upper(),
            "payment": {"creditCard": {"cardNumber": account, "expirationDate": "XXXX"}},
            "refTransId": request.gateway_payment_id,
            "order": order(ref, request.reason),
            "transactionSettings": DUPLICATE_WINDOW,
        }
        response = self._transaction(ref, transaction)
        code, (reason, text) = response["responseCode"], reason_of(response)
        if code == "3" and reason == DUPLICATE:
            return to_refund(self._original(response, ref))
        if code == "3" and reason == UNSETTLED_REFUND:
            return self._void_instead(request, ref, text)
        if code in {"1", "4"}:
            status = RefundStatus.SUCCEEDED if code == "1" else RefundStatus.PENDING
            return GatewayRefund(status=status, gateway_id=trans_id(response), amount=request.amount, raw=response)
        if code == "2":
            return GatewayRefund(
                status=RefundStatus.FAILED,
                gateway_id=trans_id(response),
                amount=request.amount,
                failure_code=reason,
                failure_message=text,
                raw=response,
            )
        raise BadResponse(f"Authorize.Net refused the refund ({reason}: {text.rstrip('.')}).")

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        return to_payment(self._details(gateway_id))

    def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            self.api.call("authenticateTestRequest", {}, retry=False)
            environment = self.environment
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=int((time.monotonic() - started) * 1000))
        warnings = []
        if not str(self.credentials.get("signature_key") or "").strip():
            warnings.append("There is no signature key: Authorize.Net's webhooks to the hub cannot be verified.")
        return CheckResult(
            ok=True,
            message=f"Authorize.Net ({environment}) accepted the API login ID and transaction key.",
            warnings=warnings,
            latency_ms=int((time.monotonic() - started) * 1000),
            details={"environment": environment, "live": environment == "production"},
        )

    # --- Requests ---

    @property
    def environment(self) -> str:
        value = str(self.credentials.get("environment") or "production").strip().lower()
        if value not in ENVIRONMENTS:
            raise ConfigurationError(
                f"“{value}” is not an Authorize.Net environment.", hint="Use production or sandbox."
            )
        return value

    @cached_property
    def api(self) -> AuthorizeNetApi:
        base = (self.connection.base_url or "").strip().rstrip("/") or ENVIRONMENTS[self.environment]
        return AuthorizeNetApi(
            self.client, base + PATH, self.credential("api_login_id"), self.credential("transaction_key")
        )

    def _transaction(self, ref: str, transaction: dict[str, Any]) -> dict[str, Any]:
        """The transactionResponse of a createTransactionRequest; a refusal of the request itself
        (credentials, a malformed request) is raised."""
        data = self.api.send("createTransactionRequest", {"refId": ref, "transactionRequest": transaction})
        response = data.get("transactionResponse")
        if isinstance(response, dict) and str(response.get("responseCode") or "") in {"1", "2", "3", "4"}:
            return {**response, "responseCode": str(response["responseCode"])}
        refuse(data)
        raise BadResponse("Authorize.Net answered without the transaction's outcome.")

    def _details(self, trans_id_: str) -> dict[str, Any]:
        transaction = self.api.call("getTransactionDetailsRequest", {"transId": trans_id_}).get("transaction")
        if not isinstance(transaction, dict) or not transaction.get("transId"):
            raise BadResponse(f"Authorize.Net answered without transaction {trans_id_}.")
        return transaction

    def _original(self, response: dict[str, Any], ref: str) -> dict[str, Any]:
        """The transaction a duplicate answer names, once it is shown to be this request's."""
        original = trans_id(response)
        if not original:
            raise BadResponse("Authorize.Net refused the request as a duplicate of one it did not name (reason 11).")
        details = self._details(original)
        if (details.get("order") or {}).get("invoiceNumber") != ref:
            raise BadResponse(
                f"Authorize.Net refused the request as a duplicate of transaction {original}, another one."
            )
        return details

    def _void_instead(self, request: RefundRequest, ref: str, refused: str) -> GatewayRefund:
        """A refund Authorize.Net refused because the payment has not settled: the whole amount is
        given back by voiding the payment (once: a voided payment is not voided again)."""
        original = self._details(request.gateway_payment_id)
        state = original.get("transactionStatus")
        if state != "voided":
            if state not in UNSETTLED:
                raise BadResponse(f"Authorize.Net refused the refund ({UNSETTLED_REFUND}: {refused.rstrip('.')}).")
            if request.amount != (decimal(original.get("settleAmount")) or decimal(original.get("authAmount"))):
                raise BadResponse(
                    "Authorize.Net refunds a payment once it has settled (overnight); until then only the whole "
                    "amount can be given back, by cancelling the payment.",
                    hint="Refund the whole amount now, or this part once the payment has settled.",
                )
            void = {"transactionType": "voidTransaction", "refTransId": request.gateway_payment_id}
            response = self._transaction(ref, void)
            if self._details(request.gateway_payment_id).get("transactionStatus") != "voided":
                reason, text = reason_of(response)
                raise BadResponse(f"Authorize.Net refused to cancel the payment ({reason}: {text.rstrip('.')}).")
        return GatewayRefund(
            RefundStatus.SUCCEEDED, request.gateway_payment_id, request.amount, raw={"voided": True, **original}
        )
