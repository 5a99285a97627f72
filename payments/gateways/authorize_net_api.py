"""Authorize.Net's JSON API: one address for every request, the credentials inside each body.

- Production and sandbox have their own hosts; the connection's base URL overrides both.
- A request is `{"<name>Request": {"merchantAuthentication": {...}, ...}}`. Authorize.Net reads the
  JSON as it reads its XML, so elements must come in its schema's order (dicts keep the order
  they are written in); refId, invoiceNumber and customer id take at most 20 characters.
- Every answer is HTTP 200 and starts with a UTF-8 byte order mark; whether the request was done
  is `messages.resultCode` (Ok or Error, with codes such as E00007 for wrong credentials). A
  transaction's own outcome is in `transactionResponse` (see authorize_net.py).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from integrations.errors import AuthError, BadResponse, NotFound, Unavailable
from integrations.http import HttpClient

ENVIRONMENTS = {"production": "https://api.authorize.net", "sandbox": "https://apitest.authorize.net"}
PATH = "/xml/v1/request.api"
HINT_KEYS = (
    "Check the API login ID and transaction key (Merchant Interface → Account → Settings → API Credentials & Keys): "
    "the sandbox and production have their own, and a new transaction key replaces the old one."
)
AUTH_CODES = {"E00005", "E00007", "E00008"}  # key invalid, authentication failed, account or user inactive
NOT_FOUND_CODES = {"E00040"}  # the record cannot be found
RETRY_CODES = {"E00001"}  # an unexpected system error: try again


def short_ref(key: str) -> str:
    """A stable 20-character reference for an idempotency key (refId and invoiceNumber take 20)."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def first_message(data: dict[str, Any]) -> tuple[str, str]:
    """The code and text of the first of Authorize.Net's `messages` (a list, or one object)."""
    messages = (data.get("messages") or {}).get("message") if isinstance(data.get("messages"), dict) else None
    first = messages[0] if isinstance(messages, list) and messages else messages
    if not isinstance(first, dict):
        return "", ""
    return str(first.get("code") or ""), str(first.get("text") or "").strip()


class AuthorizeNetApi:
    def __init__(self, client: HttpClient, url: str, login_id: str, transaction_key: str) -> None:
        self.client = client
        self.url = url
        self.authentication = {"name": login_id, "transactionKey": transaction_key}

    def send(self, name: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """The answer to `<name>` (e.g. createTransactionRequest), whatever its result code."""
        payload = {name: {"merchantAuthentication": self.authentication, **body}}
        response = self.client.request("POST", self.url, json=payload, retry=retry)
        try:
            data = json.loads(response.content.decode("utf-8-sig"), parse_float=Decimal)
        except ValueError as exc:
            raise BadResponse("Authorize.Net answered with malformed JSON.", status=response.status_code) from exc
        if not isinstance(data, dict):
            raise BadResponse("Authorize.Net answered something other than an object.")
        return data

    def call(self, name: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """The answer to a request that must succeed: an Error result is raised."""
        data = self.send(name, body, retry=retry)
        refuse(data)
        return data


def refuse(data: dict[str, Any]) -> None:
    """Raise the error an answer whose result code is Error stands for."""
    if (data.get("messages") or {}).get("resultCode") == "Ok":
        return
    code, text = first_message(data)
    words = f"{code}: {text.rstrip('.')}" if code else "no reason given"
    if code in AUTH_CODES:
        raise AuthError(f"Authorize.Net refused the API login ID and transaction key ({words}).", hint=HINT_KEYS)
    if code in NOT_FOUND_CODES:
        raise NotFound(f"Authorize.Net has no such record ({words}).")
    if code in RETRY_CODES:
        raise Unavailable(f"Authorize.Net could not process the request ({words}).")
    raise BadResponse(f"Authorize.Net refused the request ({words}).")
