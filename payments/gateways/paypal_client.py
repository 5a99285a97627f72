"""PayPal transport: live and sandbox hosts, the app access token, requests, PayPal's error body.

- Live (api-m.paypal.com) or sandbox (api-m.sandbox.paypal.com) by the `environment` credential;
  the connection's base URL overrides both (a test server, a Prism mock).
- An app access token from the OAuth 2 client-credentials grant (`POST /v1/oauth2/token`, Basic
  auth with the client ID and secret) lasts about nine hours. The connection's workers share it
  through the cache (`SharedToken`); a 401 from an API replaces it once.
- Every POST carries `PayPal-Request-Id` (the hub's idempotency key), so the HTTP layer's retries
  after a timeout or a 5xx return the first answer instead of acting twice, and `Prefer:
  return=representation`, so an answer carries amounts, captures and processor responses.
- PayPal says why it refused a request in `{name, message, details: [{issue, description}],
  debug_id}`: `PayPalError`, a `BadResponse`, carries those, and the gateway reads a decline from
  its `issue`. The token endpoint answers OAuth's `{error, error_description}` instead.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import quote

import requests

from integrations.errors import AuthError, BadResponse, ConfigurationError, IntegrationError
from integrations.http import Hints, HttpClient
from integrations.tokens import SharedToken, lifetime_of

logger = logging.getLogger(__name__)

ENVIRONMENTS = {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"}
TOKEN_PATH = "/v1/oauth2/token"  # noqa: S105 (a path, not a password)
KEYS_REFUSED = "PayPal refused the client id/secret"
HINT_KEYS = (
    "Check the client ID and secret (developer.paypal.com → Apps & Credentials): they must be the app's "
    "credentials for the connection's environment, live or sandbox."
)
JSON = {"Accept": "application/json"}


def environment(credentials: dict[str, Any]) -> str:
    value = str(credentials.get("environment") or "").strip().lower()
    value = {"production": "live"}.get(value, value)
    if value not in ENVIRONMENTS:
        raise ConfigurationError(f"“{value}” is not a PayPal environment.", hint="Use live or sandbox.")
    return value


def api_url(credentials: dict[str, Any], override: str = "") -> str:
    return override.strip().rstrip("/") or ENVIRONMENTS[environment(credentials)]


def hints() -> Hints:
    return Hints(
        by_status={
            401: HINT_KEYS,
            403: "The PayPal app may not do this: check its features in the developer dashboard.",
            404: "PayPal has no such order or payment in this environment (live or sandbox).",
            429: "PayPal is limiting this app's requests; they are sent again later.",
        },
        timeout="PayPal did not answer in time.",
        connection="PayPal could not be reached.",
        describe=describe,
    )


class PayPalError(BadResponse):
    """A request PayPal refused, with its error `name`, the first detail's `issue` and
    `description`, and the `debug_id` PayPal's support asks for."""

    def __init__(
        self, message: str, *, hint: str = "", status: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, hint=hint, status=status)
        body = body or {}
        detail = next((d for d in body.get("details") or [] if isinstance(d, dict)), {})
        self.name = str(body.get("name") or "")
        self.issue = str(detail.get("issue") or "")
        self.description = str(detail.get("description") or body.get("message") or "")
        self.debug_id = str(body.get("debug_id") or "")
        self.body = body


def error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def describe(response: requests.Response) -> str:
    """PayPal's own words for a refused request, for the error's message (the client's
    `Hints.describe`): `NAME: ISSUE: description (field) [debug id]`, or OAuth's error."""
    body = error_body(response)
    if body.get("error"):
        return ": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
    details = [d for d in body.get("details") or [] if isinstance(d, dict)][:3]
    said = [
        ": ".join(str(p) for p in (d.get("issue"), d.get("description")) if p)
        + (f" ({d['field']})" if d.get("field") else "")
        for d in details
    ]
    words = "; ".join(s for s in said if s) or str(body.get("message") or "")
    text = ": ".join(p for p in (str(body.get("name") or ""), words) if p)
    return f"{text} [debug id {body['debug_id']}]" if text and body.get("debug_id") else text


class PayPalToken(SharedToken):
    """One connection's app access token, shared by its workers through the cache."""

    label = "PayPal access token"

    def __init__(self, client: HttpClient, base_url: str, client_id: str, client_secret: str, cache_id: str) -> None:
        # Keyed by the host and client ID too: a sandbox switch or another app never reuses the old token.
        digest = hashlib.sha256(f"{base_url}\n{client_id}".encode()).hexdigest()[:16]
        super().__init__(client, f"paypal:token:{cache_id}:{digest}")
        self.url = base_url + TOKEN_PATH
        self.keys = (client_id, client_secret)

    def mint(self, retry: bool) -> tuple[str, int]:
        body = self.request(retry)
        return body["access_token"], lifetime_of(body, 32400)

    def request(self, retry: bool) -> dict[str, Any]:
        """PayPal's answer to the grant: the token, its lifetime, the app id and the scopes."""
        data = {"grant_type": "client_credentials"}
        refused: list[requests.Response] = []
        options = {"data": data, "auth": self.keys, "headers": JSON, "hooks": {"response": _keep(refused)}}
        try:
            body = self.client.json("POST", self.url, retry=retry, **options)
        except IntegrationError as error:
            # Wrong keys are 401 invalid_client; a malformed Basic header can be a 400.
            if isinstance(error, AuthError) or error.status == 400:
                words = describe(refused[-1]) if refused else ""
                message = f"{KEYS_REFUSED} ({error.status}{' ' + words if words else ''})."
                raise AuthError(message, hint=HINT_KEYS, status=error.status) from error
            raise
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise BadResponse("PayPal's token endpoint answered without an access token.")
        return body


class PayPalApi:
    """Requests to PayPal's REST APIs with the connection's shared app token."""

    def __init__(self, client: HttpClient, base_url: str, tokens: PayPalToken) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens

    def get(self, path: str) -> dict[str, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """A POST PayPal performs once per `request_id`, so it is safely sent again after a timeout."""
        headers = {"PayPal-Request-Id": request_id, "Prefer": "return=representation"}
        return self.call("POST", path, json=body, headers=headers)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        token = self.tokens.get()
        try:
            return self._send(method, path, token, kwargs)
        except AuthError:
            logger.info("PayPal refused the access token for %s %s; minting a new one once", method, path)
        token = self.tokens.refresh(token)
        return self._send(method, path, token, kwargs)

    def _send(self, method: str, path: str, token: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        headers = {**JSON, **kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        refused: list[requests.Response] = []
        options = {**kwargs, "headers": headers, "hooks": {"response": _keep(refused)}}
        try:
            response = self.client.request(method, self.base_url + path, **options)
        except BadResponse as error:
            if not refused or type(error) is not BadResponse:
                raise
            body = error_body(refused[-1])
            raise PayPalError(error.message, hint=error.hint, status=error.status, body=body) from error
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            raise BadResponse("PayPal answered with malformed JSON.", status=response.status_code) from exc
        if not isinstance(body, dict):
            raise BadResponse("PayPal answered with something other than a JSON object.", status=response.status_code)
        return body


def _keep(refused: list[requests.Response]):
    """A response hook that keeps the error answers, whose body says why (the client only maps the status)."""

    def observe(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if response.status_code >= 400:
            refused.append(response)
        return response

    return observe


def segment(value: str) -> str:
    """An id from PayPal or the hub as one path segment, whatever it contains."""
    return quote(str(value), safe="")
