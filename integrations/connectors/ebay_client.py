"""eBay transport: environments, the identity (OAuth token) endpoint, shared access tokens, requests.

- Production and sandbox have their own hosts (api.* for the APIs and the token endpoint, auth.*
  for the consent page), keys and RuName; a connection's base URL override serves the APIs and the
  token endpoint (a test server, a proxy).
- A user access token lasts two hours. It is minted from the seller's refresh token (about 18
  months) and kept in the cache until a minute before it expires, so every worker of a connection
  shares it; only one worker at a time mints (a lock taken with `cache.add`, the others wait for its
  token), as `amazon_client.LwaTokens` does for Amazon.
- A 401 from an API gets a fresh token once; refused again, the authorisation is gone and the
  seller must connect again. A 403 is a scope the seller did not grant, not a stale token.
- eBay says why it refused a request in an `errors` list; `ebay_errors` puts its words in the
  error's message (the connector's `Hints.describe`).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import requests

from ..errors import AuthError, BadResponse, ConfigurationError, IntegrationError
from ..http import HttpClient
from ..tokens import SharedToken, lifetime_of

logger = logging.getLogger(__name__)

ENVIRONMENTS = {
    "production": ("https://api.ebay.com", "https://auth.ebay.com"),
    "sandbox": ("https://api.sandbox.ebay.com", "https://auth.sandbox.ebay.com"),
}
TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 (a path, not a password)
SCOPES = (
    "https://api.ebay.com/oauth/api_scope",
    "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
    "https://api.ebay.com/oauth/api_scope/sell.inventory",
)
RECONNECT = "eBay refused the seller's authorisation (expired or revoked): reconnect with eBay."
HINT_RECONNECT = "Connect the connection to eBay again (its Connect button) and sign in as the seller."
HINT_CLIENT = (
    "Check the App ID and Cert ID (developer portal → Application Keys): they must be the keys of the connection's "
    "environment, production or sandbox."
)
JSON = {"Accept": "application/json"}


def now() -> datetime:
    return datetime.now(UTC)  # looked up when called, so a test can move the clock


def environment(credentials: dict[str, Any]) -> str:
    value = str(credentials.get("environment") or "production").strip().lower()
    if value not in ENVIRONMENTS:
        raise ConfigurationError(f"“{value}” is not an eBay environment.", hint="Use production or sandbox.")
    return value


def api_url(credentials: dict[str, Any], override: str = "") -> str:
    return override.strip().rstrip("/") or ENVIRONMENTS[environment(credentials)][0]


def identity_request(
    client: HttpClient,
    url: str,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    *,
    retry: bool,
    refused: str = RECONNECT,
) -> dict[str, Any]:
    """POST a grant to eBay's token endpoint (Basic auth with the app's keys); its JSON answer.

    eBay answers a refresh token or code that is expired, revoked, used or another app's with 400
    `invalid_grant`, scopes beyond the consent with 400 `invalid_scope`, and wrong keys with 401
    `invalid_client`: each is an `AuthError` that says what to do (`refused` for a refused grant)."""
    said: list[dict[str, Any]] = []

    def observe(response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            said.append(body if isinstance(body, dict) else {})
        return response

    previous, client.budget = client.budget, None  # the token endpoint is not an API call
    try:
        body = client.json(
            "POST",
            url,
            data=form,
            auth=(client_id, client_secret),
            headers=JSON,
            retry=retry,
            hooks={"response": observe},
        )
    except IntegrationError as error:
        answer = said[-1] if said else {}
        code = str(answer.get("error") or "")
        detail = str(answer.get("error_description") or "").rstrip(". ")
        words = f" eBay answered {code}{': ' + detail if detail else ''}." if code else ""
        if code == "invalid_client" or error.status == 401:
            raise AuthError(f"eBay refused the app's keys.{words}", hint=HINT_CLIENT, status=401) from error
        if code == "invalid_scope":
            raise AuthError(f"eBay refused the scopes asked for.{words}", hint=HINT_RECONNECT, status=400) from error
        if code == "invalid_grant" or error.status == 400:
            raise AuthError(f"{refused}{words}", hint=HINT_RECONNECT, status=400) from error
        raise
    finally:
        client.budget = previous
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise BadResponse("eBay's token endpoint answered without an access token.")
    return body


class EbayTokens(SharedToken):
    """One connection's user access tokens, shared by its workers through the cache."""

    label = "eBay token"

    def __init__(
        self, client: HttpClient, url: str, client_id: str, client_secret: str, refresh_token: str, cache_id: str
    ) -> None:
        # Keyed by the endpoint, app and refresh token too: a sandbox switch or a new consent never
        # uses the old one's token.
        digest = hashlib.sha256(f"{url}\n{client_id}\n{refresh_token}".encode()).hexdigest()[:16]
        super().__init__(client, f"ebay:token:{cache_id}:{digest}")
        self.url = url
        self.keys = (client_id, client_secret)
        self.form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": " ".join(SCOPES)}

    def mint(self, retry: bool) -> tuple[str, int]:
        body = identity_request(self.client, self.url, *self.keys, self.form, retry=retry)
        return body["access_token"], lifetime_of(body, 7200)


class EbayApi:
    """Requests to eBay's REST APIs with the connection's shared access token."""

    def __init__(self, client: HttpClient, base_url: str, tokens: EbayTokens) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens

    def get(self, path: str, params: dict[str, Any] | None = None, *, retry: bool = True) -> Any:
        return decoded(self.send("GET", path, params=params or {}, retry=retry))

    def send(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> requests.Response:
        """The 2xx answer to a request; `retry=False` for one that must never be sent twice blindly
        (a create). A 401 is sent again once with a new token: eBay refused it before doing anything."""
        url = self.base_url + path
        token = self.tokens.get(retry=retry)
        try:
            return self._send(method, url, token, retry, kwargs)
        except AuthError:
            logger.info("eBay refused the access token for %s; renewing it once", path)
        token = self.tokens.refresh(token, retry=retry)
        try:
            return self._send(method, url, token, retry, kwargs)
        except AuthError as error:
            raise AuthError(RECONNECT, hint=HINT_RECONNECT, status=error.status) from error

    def _send(self, method: str, url: str, token: str, retry: bool, kwargs: dict[str, Any]) -> requests.Response:
        headers = {**JSON, "Authorization": f"Bearer {token}"}
        return self.client.request(method, url, headers=headers, retry=retry, **kwargs)


def decoded(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise BadResponse("The platform answered with malformed JSON.", status=response.status_code) from exc


def ebay_errors(response: Any) -> str:
    """eBay's own words for a refused request (its `errors` list), for the error message: the
    connector's `Hints.describe`."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return error_words(body.get("errors") if isinstance(body, dict) else None)


def error_words(items: Any) -> str:
    """`errorId: longMessage` (or `message`) of the first few of eBay's errors."""
    if not isinstance(items, list):
        return ""
    parts = [
        f"{item.get('errorId', '')}: {item.get('longMessage') or item.get('message') or ''}".strip(": ")
        for item in items[:3]
        if isinstance(item, dict)
    ]
    return "; ".join(part for part in parts if part)[:500]
