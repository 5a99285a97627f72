"""A local Authorize.Net for tests: its JSON API (every request a POST to /xml/v1/request.api) on a
threaded http.server on 127.0.0.1, with requests and answers shaped like the JSON examples of
Authorize.Net's API reference.

Requests: createTransactionRequest (authCaptureTransaction, authOnlyTransaction,
priorAuthCaptureTransaction, refundTransaction, voidTransaction), getTransactionDetailsRequest and
authenticateTestRequest. Like Authorize.Net it:

- answers every request 200, with JSON that starts with a UTF-8 byte order mark, the outcome in
  `messages.resultCode` (Error with E00007 for credentials it does not know, E00003 for a request
  off its schema, E00040 for a transaction it does not have);
- reads the JSON as its XML schema: elements must come in the schema's order, refId and
  invoiceNumber take at most 20 characters, an amount is a positive decimal;
- takes a card only as Accept.js opaque data it issued (`nonce()`), each nonce usable once
  (E00114 when used again), never a card number;
- answers like the sandbox for its test card 4222222222222, where the whole dollars of the amount
  are the response reason code: 2.00 is declined (2), 8.00 an expired card (3), 252.00 or 253.00
  held for review (4); any other card and amount is approved;
- recognises the same transaction again within the duplicate window (120 s, or the request's
  duplicateWindow setting) by its type, amount, card, invoice number and customer: response code
  3, reason 11, naming the original (transId, authCode, AVS and CVV results) only when the request
  set duplicateWindow, as Authorize.Net documents;
- captures an authorisation once (311 "already captured" afterwards), for at most its amount (47);
  refunds only settled transactions (54 before), against the card's last four digits, for at most
  what settled (55); voids what has not settled.

    with FakeAuthorizeNet() as anet:
        connection = make_connection(tenant, "authorize_net", credentials=anet.credentials(), base_url=anet.url)
        token = anet.nonce()              # an Accept.js payment nonce for 4111111111111111
        anet.stall(1, seconds=1.0)        # the next request is carried out, its answer sent late
        anet.settle()                     # the nightly batch: captured transactions settle
        anet.advance(seconds=121)         # the fake's clock, for the duplicate window
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOGIN_ID = "5KP3u95bQpv"
TRANSACTION_KEY = "346HZ32z3fP4hTG2"
PATH = "/xml/v1/request.api"
ACCEPT = "COMMON.ACCEPT.INAPP.PAYMENT"
TEST_CARD = "4222222222222"  # the sandbox's card whose amount picks the response reason
DEFAULT_WINDOW = 120
# Schema order of the elements the fake reads (AnetApiSchema.xsd).
ORDER = {
    "createTransactionRequest": ["merchantAuthentication", "clientId", "refId", "transactionRequest"],
    "getTransactionDetailsRequest": ["merchantAuthentication", "clientId", "refId", "transId"],
    "authenticateTestRequest": ["merchantAuthentication", "clientId", "refId"],
    "transactionRequest": [
        "transactionType",
        "amount",
        "currencyCode",
        "payment",
        "profile",
        "solution",
        "callId",
        "terminalNumber",
        "authCode",
        "refTransId",
        "splitTenderId",
        "order",
        "lineItems",
        "tax",
        "duty",
        "shipping",
        "taxExempt",
        "poNumber",
        "customer",
        "billTo",
        "shipTo",
        "customerIP",
        "cardholderAuthentication",
        "retail",
        "employeeId",
        "transactionSettings",
        "userFields",
    ],
    "order": ["invoiceNumber", "description"],
    "customer": ["type", "id", "email"],
    "creditCard": ["cardNumber", "expirationDate", "cardCode"],
    "opaqueData": ["dataDescriptor", "dataValue", "dataKey"],
}
MAX_LENGTH = {"refId": 20, "invoiceNumber": 20, "id": 20, "description": 255, "email": 255}
APPROVED = "This transaction has been approved."
# Reason code → (response code, text) for the test card.
REASONS = {
    2: ("2", "This transaction has been declined."),
    3: ("2", "This transaction has been declined."),
    4: ("2", "This transaction has been declined."),
    8: ("3", "The credit card has expired."),
    27: ("2", "The transaction has been declined because of an AVS mismatch."),
    44: ("2", "This transaction has been declined."),
    65: ("2", "This transaction has been declined."),
    252: ("4", "Your order has been received. Thank you for your business!"),
    253: ("4", "Your order has been received. Thank you for your business!"),
}
AMOUNT_TOO_HIGH = "The amount requested for settlement cannot be greater than the original amount authorized."
CREDITS_EXCEED = "The sum of credits against the referenced transaction would exceed original debit amount."
REVIEW_STATUS = {"authCaptureTransaction": "FDSPendingReview", "authOnlyTransaction": "FDSAuthorizedPendingReview"}


class Refused(Exception):
    """A request refused as a whole (resultCode Error), with Authorize.Net's code and text."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


class Failed(Exception):
    """A transaction request answered with response code 3 (an error) and a reason."""

    def __init__(self, reason: str, text: str, **answer: Any) -> None:
        super().__init__(text)
        self.reason = reason
        self.answer = answer


@dataclass
class Transaction:
    trans_id: str
    kind: str
    status: str
    amount: Decimal
    card: str
    submitted: datetime
    response_code: str
    reason_code: int
    reason_text: str
    invoice: str = ""
    description: str = ""
    customer: dict[str, str] = field(default_factory=dict)
    ref_trans_id: str = ""
    settle_amount: Decimal = Decimal("0")
    refunded: Decimal = Decimal("0")
    auth_code: str = ""
    duplicate_key: tuple = ()
    window: int = DEFAULT_WINDOW

    @property
    def masked(self) -> str:
        return "XXXX" + self.card[-4:]

    @property
    def card_type(self) -> str:
        return {"4": "Visa", "5": "MasterCard", "3": "AmericanExpress", "6": "Discover"}.get(self.card[:1], "Visa")


class FakeAuthorizeNet:
    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        self.lock = threading.RLock()
        self.transactions: dict[str, Transaction] = {}
        self.requests: list[dict[str, Any]] = []  # every request body, as sent
        self._nonces: dict[str, tuple[str, bool]] = {}  # nonce → (card number, used)
        self._next_id = 60012345670
        self._stalls: list[float] = []
        self._server: ThreadingHTTPServer | None = None

    # --- Life ---

    def __enter__(self) -> FakeAuthorizeNet:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @staticmethod
    def credentials(**extra: str) -> dict[str, str]:
        return {
            "api_login_id": LOGIN_ID,
            "transaction_key": TRANSACTION_KEY,
            "signature_key": "56E529FE5A2E9D4E0A6A9A9F1A2B3C4D",
            "environment": "sandbox",
            **extra,
        }

    # --- What a test arranges ---

    def nonce(self, card: str = "4111111111111111") -> str:
        """An Accept.js payment nonce (opaque data value) for `card`, as Accept.js hands the browser."""
        value = base64.b64encode(json.dumps({"code": "50_2_0600", "token": secrets.token_hex(16)}).encode()).decode()
        with self.lock:
            self._nonces[value] = (card, False)
        return value

    def stall(self, count: int = 1, *, seconds: float = 1.0) -> None:
        """The next `count` requests are carried out, and answered only after `seconds`."""
        with self.lock:
            self._stalls += [seconds] * count

    def advance(self, *, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)

    def settle(self) -> None:
        """The nightly batch: what was captured or refunded settles."""
        with self.lock:
            for transaction in self.transactions.values():
                if transaction.status == "capturedPendingSettlement":
                    transaction.status = "settledSuccessfully"
                elif transaction.status == "refundPendingSettlement":
                    transaction.status = "refundSettledSuccessfully"

    def made(self, kind: str | None = None) -> list[Transaction]:
        with self.lock:
            return [t for t in self.transactions.values() if kind is None or t.kind == kind]

    # --- Serving ---

    def handle(self, handler: _Handler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.command != "POST" or handler.path != PATH:
            return handler.answer(404, b"Not Found", "text/plain")
        try:
            body = json.loads(raw, parse_float=Decimal)
            [(name, request)] = body.items()
        except (ValueError, AttributeError):
            return handler.answer(200, bom(refused_answer("E00003", "An error occurred while parsing the request.")))
        with self.lock:
            self.requests.append(body)
            delay = self._stalls.pop(0) if self._stalls else 0.0
            answer = self._answer(name, request)
        if delay:
            time.sleep(delay)  # carried out already: only the answer is late
        handler.answer(200, bom(answer))

    def _answer(self, name: str, request: Any) -> dict[str, Any]:
        serve = {
            "createTransactionRequest": self._create,
            "getTransactionDetailsRequest": self._details,
            "authenticateTestRequest": lambda request: {},
        }.get(name)
        if serve is None:
            return refused_answer("E00004", "The name of the requested API method is invalid.")
        try:
            check_order(name, request)
            auth = request.get("merchantAuthentication") or {}
            if (auth.get("name"), auth.get("transactionKey")) != (LOGIN_ID, TRANSACTION_KEY):
                raise Refused("E00007", "User authentication failed due to invalid authentication values.")
            answer = serve(request)
        except Refused as refusal:
            answer = refused_answer(refusal.code, str(refusal))
        # Authorize.Net's order: the answer's own elements, the request's refId, then the messages.
        result = {key: value for key, value in answer.items() if key != "messages"}
        if isinstance(request, dict) and "refId" in request:
            result["refId"] = request["refId"]
        result["messages"] = answer.get("messages") or ok()
        return result

    def _create(self, request: dict[str, Any]) -> dict[str, Any]:
        transaction = request.get("transactionRequest") or {}
        kind = transaction.get("transactionType")
        handlers = {
            "authCaptureTransaction": self._authorise,
            "authOnlyTransaction": self._authorise,
            "priorAuthCaptureTransaction": self._capture,
            "refundTransaction": self._refund,
            "voidTransaction": self._void,
        }
        if kind not in handlers:
            raise Refused("E00003", f"The transactionType '{kind}' is invalid.")
        try:
            response = handlers[kind](transaction)
        except Failed as failure:
            response = {
                "responseCode": "3",
                "authCode": "",
                "avsResultCode": "P",
                "cvvResultCode": "",
                "transId": "0",
                **failure.answer,
                "errors": [{"errorCode": failure.reason, "errorText": str(failure)}],
            }
        answer: dict[str, Any] = {"transactionResponse": response}
        if response["responseCode"] in {"2", "3"}:
            answer["messages"] = error_messages("E00027", "The transaction was unsuccessful.")
        return answer

    # --- Transactions ---

    def _authorise(self, transaction: dict[str, Any]) -> dict[str, Any]:
        amount = amount_of(transaction)
        opaque = (transaction.get("payment") or {}).get("opaqueData") or {}
        if "creditCard" in (transaction.get("payment") or {}):
            raise Refused("E00003", "The hub's fake takes cards only as Accept.js opaque data.")
        value = opaque.get("dataValue")
        if opaque.get("dataDescriptor") != ACCEPT or value not in self._nonces:
            raise Refused("E00114", "Invalid OTS Token.")
        card, used = self._nonces[value]
        kind = transaction["transactionType"]
        settings = settings_of(transaction)
        order = transaction.get("order") or {}
        customer = transaction.get("customer") or {}
        key = (kind, amount, card, order.get("invoiceNumber", ""), customer.get("id", ""), customer.get("email", ""))
        self._duplicate(key, settings)
        if used:
            raise Refused("E00114", "Invalid OTS Token.")
        self._nonces[value] = (card, True)
        code, reason, text = "1", 1, APPROVED
        if card == TEST_CARD and amount == amount.to_integral_value() and int(amount) in REASONS:
            reason = int(amount)
            code, text = REASONS[reason]
        status = {
            "1": "capturedPendingSettlement" if kind == "authCaptureTransaction" else "authorizedPendingCapture",
            "2": "declined",
            "3": "generalError",
            "4": REVIEW_STATUS[kind],
        }[code]
        made = self._record(
            kind, status, amount, card, code, reason, text, invoice=order.get("invoiceNumber", ""), key=key
        )
        made.description, made.customer = order.get("description", ""), customer
        made.window = int(settings.get("duplicateWindow", DEFAULT_WINDOW))
        made.auth_code = secrets.token_hex(3).upper() if code in {"1", "4"} else ""
        if status == "capturedPendingSettlement":
            made.settle_amount = amount
        return self._response(made)

    def _capture(self, transaction: dict[str, Any]) -> dict[str, Any]:
        original = self._referenced(transaction)
        if original.kind != "authOnlyTransaction":
            raise Failed("16", "The transaction cannot be found.")
        if original.status != "authorizedPendingCapture":
            raise Failed("311", "This transaction has already been captured.", transId=original.trans_id)
        amount = amount_of(transaction, required=False) or original.amount
        if amount > original.amount:
            raise Failed("47", AMOUNT_TOO_HIGH)
        original.status, original.settle_amount = "capturedPendingSettlement", amount
        return {**self._response(original), "refTransID": original.trans_id}

    def _refund(self, transaction: dict[str, Any]) -> dict[str, Any]:
        amount = amount_of(transaction)
        original = self._referenced(transaction)
        card = ((transaction.get("payment") or {}).get("creditCard") or {}).get("cardNumber", "")
        order = transaction.get("order") or {}
        key = ("refundTransaction", amount, original.card, order.get("invoiceNumber", ""), "", "")
        self._duplicate(key, settings_of(transaction))
        if original.status != "settledSuccessfully" or str(card)[-4:] != original.card[-4:]:
            raise Failed("54", "The referenced transaction does not meet the criteria for issuing a credit.")
        if original.refunded + amount > original.settle_amount:
            raise Failed("55", CREDITS_EXCEED)
        original.refunded += amount
        made = self._record(
            "refundTransaction",
            "refundPendingSettlement",
            amount,
            original.card,
            "1",
            1,
            APPROVED,
            invoice=order.get("invoiceNumber", ""),
            key=key,
            ref=original.trans_id,
        )
        made.settle_amount = amount
        made.window = int(settings_of(transaction).get("duplicateWindow", DEFAULT_WINDOW))
        made.description = order.get("description", "")
        return {**self._response(made), "refTransID": original.trans_id}

    def _void(self, transaction: dict[str, Any]) -> dict[str, Any]:
        original = self._referenced(transaction)
        if original.status == "voided":
            raise Failed("310", "This transaction has already been voided.", transId=original.trans_id)
        if original.status not in {"authorizedPendingCapture", "capturedPendingSettlement", *REVIEW_STATUS.values()}:
            raise Failed("16", "The transaction cannot be found.")
        original.status, original.settle_amount = "voided", Decimal("0")
        return {**self._response(original), "refTransID": original.trans_id}

    def _referenced(self, transaction: dict[str, Any]) -> Transaction:
        found = self.transactions.get(str(transaction.get("refTransId") or ""))
        if found is None:
            raise Failed("16", "The transaction cannot be found.")
        return found

    def _duplicate(self, key: tuple, settings: dict[str, str]) -> None:
        window = int(settings.get("duplicateWindow", DEFAULT_WINDOW))
        for earlier in self.transactions.values():
            if earlier.duplicate_key == key and self.now - earlier.submitted < timedelta(seconds=window):
                named: dict[str, Any] = {}
                if "duplicateWindow" in settings:
                    named = {
                        "transId": earlier.trans_id,
                        "authCode": earlier.auth_code if earlier.response_code == "1" else "",
                        "avsResultCode": "Y",
                        "cvvResultCode": "P",
                    }
                raise Failed("11", "A duplicate transaction has been submitted.", **named)

    def _record(self, kind, status, amount, card, code, reason, text, *, invoice, key, ref="") -> Transaction:
        self._next_id += 1
        made = Transaction(
            trans_id=str(self._next_id),
            kind=kind,
            status=status,
            amount=amount,
            card=card,
            submitted=self.now,
            response_code=code,
            reason_code=reason,
            reason_text=text,
            invoice=invoice,
            duplicate_key=key,
            ref_trans_id=ref,
        )
        self.transactions[made.trans_id] = made
        return made

    def _response(self, made: Transaction) -> dict[str, Any]:
        response: dict[str, Any] = {
            "responseCode": made.response_code,
            "authCode": made.auth_code,
            "avsResultCode": "Y",
            "cvvResultCode": "P",
            "cavvResultCode": "2",
            "transId": made.trans_id,
            "refTransID": "",
            "transHash": "",
            "testRequest": "0",
            "accountNumber": made.masked,
            "accountType": made.card_type,
        }
        if made.response_code in {"1", "4"}:
            response["messages"] = [{"code": str(made.reason_code), "description": made.reason_text}]
        else:
            response["errors"] = [{"errorCode": str(made.reason_code), "errorText": made.reason_text}]
        response["transHashSha2"] = ""
        response["SupplementalDataQualificationIndicator"] = 0
        return response

    def _details(self, request: dict[str, Any]) -> dict[str, Any]:
        made = self.transactions.get(str(request.get("transId") or ""))
        if made is None:
            raise Refused("E00040", "The record cannot be found.")
        transaction: dict[str, Any] = {"transId": made.trans_id}
        if made.ref_trans_id:
            transaction["refTransId"] = made.ref_trans_id
        transaction.update(
            submitTimeUTC=made.submitted.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            submitTimeLocal=made.submitted.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            transactionType=made.kind,
            transactionStatus=made.status,
            responseCode=int(made.response_code),
            responseReasonCode=made.reason_code,
            responseReasonDescription="Approval" if made.response_code == "1" else made.reason_text,
            authCode=made.auth_code,
            AVSResponse="Y",
            cardCodeResponse="M",
            order={"invoiceNumber": made.invoice, "description": made.description},
            authAmount=float(made.amount),
            settleAmount=float(made.settle_amount),
            taxExempt=False,
            payment={"creditCard": {"cardNumber": made.masked, "expirationDate": "XXXX", "cardType": made.card_type}},
        )
        if made.customer:
            transaction["customer"] = {"type": "individual", **made.customer}
        transaction.update(recurringBilling=False, product="Card Not Present", marketType="eCommerce")
        return {"transaction": transaction}


def ok() -> dict[str, Any]:
    return {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}


def error_messages(code: str, text: str) -> dict[str, Any]:
    return {"resultCode": "Error", "message": [{"code": code, "text": text}]}


def refused_answer(code: str, text: str) -> dict[str, Any]:
    return {"messages": error_messages(code, text)}


def bom(answer: dict[str, Any]) -> bytes:
    return "\ufeff".encode() + json.dumps(answer, default=str).encode()


def check_order(name: str, element: Any) -> None:
    """Elements out of the schema's order, or unknown to it, are refused as Authorize.Net's XML
    reading refuses them (E00003); so are values longer than the schema allows."""
    if not isinstance(element, dict):
        return
    if name in ORDER:
        expected = ORDER[name]
        positions = []
        for key in element:
            if key not in expected:
                raise Refused("E00003", f"The element '{name}' has invalid child element '{key}'.")
            positions.append(expected.index(key))
        if positions != sorted(positions):
            raise Refused("E00003", f"The element '{name}' has its child elements out of order: {list(element)}.")
    for key, value in element.items():
        if isinstance(value, str) and len(value) > MAX_LENGTH.get(key, 10_000):
            raise Refused("E00003", f"The '{key}' element is invalid: the actual length is greater than the MaxLength.")
        if isinstance(value, dict):
            check_order(key, value)


def amount_of(transaction: dict[str, Any], *, required: bool = True) -> Decimal | None:
    value = transaction.get("amount")
    if value is None and not required:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Failed("5", "A valid amount is required.") from None
    if not isinstance(value, str | Decimal) or amount <= 0 or amount != amount.quantize(Decimal("0.0001")):
        raise Failed("5", "A valid amount is required.")
    return amount


def settings_of(transaction: dict[str, Any]) -> dict[str, str]:
    setting = (transaction.get("transactionSettings") or {}).get("setting") or []
    items = setting if isinstance(setting, list) else [setting]
    return {str(item.get("settingName")): str(item.get("settingValue")) for item in items if isinstance(item, dict)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAuthorizeNet

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake.handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
