"""A gateway of our own for the payments app's tests: a little bank that keeps charges and refunds
by idempotency key, as real gateways do, and answers by payment method token the way Stripe's test
tokens do. It never sends a request anywhere; the real gateway modules are never used here.

- `pm_card_visa` succeeds; `pm_card_chargeDeclined` is declined (an answer: status failed);
  `pm_card_authenticationRequired` requires action (with a client secret); `pm_paypal` requires the
  customer's approval (with an approval link).
- `bank.lose_answers(n)`: the next n calls do their work at the "gateway" and then time out, as
  when the answer is lost on the way back. `bank.refuse_next(error)`: the next call raises it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from integrations.connectors.base import CheckResult
from integrations.errors import BadResponse, IntegrationError, Unavailable
from payments.gateways.base import (
    ChargeRequest,
    Gateway,
    GatewayPayment,
    GatewayRefund,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from payments.money import to_minor

CLIENT_SECRET = "pi_fake_secret_do_not_log_0123456789"


@dataclass
class Charge:
    payment: GatewayPayment
    minor: int  # the amount as sent on the wire, in minor units
    request: ChargeRequest


@dataclass
class FakeBank:
    charges: dict[str, Charge] = field(default_factory=dict)  # by idempotency key
    refunds: dict[str, GatewayRefund] = field(default_factory=dict)  # by idempotency key
    captures: dict[str, GatewayPayment] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, idempotency key)
    refund_status: str = RefundStatus.SUCCEEDED
    check_result: CheckResult = field(default_factory=lambda: CheckResult(ok=True, message="Fake gateway, test mode."))
    _lost: int = 0
    _refusals: list[IntegrationError] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def lose_answers(self, n: int = 1) -> None:
        self._lost = n

    def refuse_next(self, error: IntegrationError) -> None:
        self._refusals.append(error)

    def by_id(self, gateway_id: str) -> Charge:
        return next(c for c in self.charges.values() if c.payment.gateway_id == gateway_id)

    def _before(self) -> None:
        if self._refusals:
            raise self._refusals.pop(0)

    def _after(self) -> None:
        if self._lost:
            self._lost -= 1
            raise Unavailable("The request timed out.", hint="The platform did not answer in time.")

    # --- operations ---

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        self.calls.append(("charge", request.idempotency_key))
        self._before()
        if request.idempotency_key not in self.charges:
            minor = to_minor(request.amount, request.currency)
            self.charges[request.idempotency_key] = Charge(self._answer(request), minor, request)
        self._after()
        return self.charges[request.idempotency_key].payment

    def _answer(self, request: ChargeRequest) -> GatewayPayment:
        gateway_id = f"pi_{next(self._ids):04d}"
        method = request.payment_method
        base = {"gateway_id": gateway_id, "amount": request.amount, "currency": request.currency}
        if method == "pm_card_chargeDeclined":
            return GatewayPayment(
                status=PaymentStatus.FAILED,
                failure_code="card_declined",
                failure_message="Your card was declined.",
                **base,
            )
        if method == "pm_card_authenticationRequired":
            return GatewayPayment(status=PaymentStatus.REQUIRES_ACTION, client_secret=CLIENT_SECRET, **base)
        if method == "pm_paypal":
            url = f"https://www.sandbox.paypal.com/checkoutnow?token={gateway_id}"
            return GatewayPayment(status=PaymentStatus.REQUIRES_ACTION, approval_url=url, **base)
        if not request.capture:
            return GatewayPayment(status=PaymentStatus.AUTHORIZED, amount_captured=Decimal("0"), **base)
        return GatewayPayment(
            status=PaymentStatus.SUCCEEDED,
            amount_captured=request.amount,
            extra={"charge_id": f"ch_{gateway_id[3:]}"},
            raw={"id": gateway_id, "object": "payment_intent"},
            **base,
        )

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        self.calls.append(("capture", idempotency_key))
        self._before()
        if idempotency_key not in self.captures:
            charge = self.by_id(gateway_id)
            taken = charge.request.amount if amount is None else amount
            charge.payment = GatewayPayment(
                status=PaymentStatus.SUCCEEDED,
                gateway_id=gateway_id,
                amount=charge.request.amount,
                currency=charge.request.currency,
                amount_captured=taken,
            )
            self.captures[idempotency_key] = charge.payment
        self._after()
        return self.captures[idempotency_key]

    def refund(self, request: RefundRequest) -> GatewayRefund:
        self.calls.append(("refund", request.idempotency_key))
        self._before()
        if request.idempotency_key not in self.refunds:
            charge = self.by_id(request.gateway_payment_id)
            refunded = sum((r.amount for r in self.refunds_of(request.gateway_payment_id)), Decimal("0"))
            if request.amount > (charge.payment.amount_captured or Decimal("0")) - refunded:
                raise BadResponse("The gateway answered 400: the refund exceeds the charge.", status=400)
            self.refunds[request.idempotency_key] = GatewayRefund(
                status=self.refund_status,
                gateway_id=f"re_{next(self._ids):04d}",
                amount=request.amount,
                raw={"payment": request.gateway_payment_id},
            )
        self._after()
        return self.refunds[request.idempotency_key]

    def refunds_of(self, gateway_id: str) -> list[GatewayRefund]:
        return [r for r in self.refunds.values() if r.raw.get("payment") == gateway_id]


BANK = FakeBank()


class FakeGateway(Gateway):
    platform = "fake"

    def charge(self, request: ChargeRequest) -> GatewayPayment:
        return BANK.charge(request)

    def capture(self, gateway_id: str, amount: Decimal | None, idempotency_key: str) -> GatewayPayment:
        return BANK.capture(gateway_id, amount, idempotency_key)

    def refund(self, request: RefundRequest) -> GatewayRefund:
        return BANK.refund(request)

    def retrieve(self, gateway_id: str) -> GatewayPayment:
        return BANK.by_id(gateway_id).payment

    def check(self) -> CheckResult:
        if self.connection.platform == "stripe":
            self.credential("secret_key")  # a missing credential fails the check, as a real gateway's would
        return BANK.check_result
