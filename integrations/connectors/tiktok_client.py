"""TikTok Shop Open API transport (version 202309): signing, signed calls, TikTok's error codes.

- Every call is signed (`sign`): hex HMAC-SHA256, keyed with the app secret, of the app secret, the
  path, the sorted query parameters (name then value; `sign` and `access_token` left out), the JSON
  body exactly as sent, and the app secret again. The query carries `app_key`, `timestamp` (unix
  seconds; TikTok refuses one more than five minutes off), `sign` and, for a shop's data,
  `shop_cipher`; the access token travels in the `x-tts-access-token` header.
- TikTok answers most errors with HTTP 200 and a non-zero `code`; `error_for` maps the codes of
  its common-errors table to the hub's errors, in TikTok's words and with its request id. Too many
  requests (36009002) and internal errors (36009003) are retried with backoff; a rate limit
  pauses the connection's `RateBudget` for every worker. HTTP 429 and 5xx are the client's.
- The access and refresh tokens: `tiktok_tokens`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import AuthError, BadResponse, IntegrationError, PermissionDenied, RateLimited, Unavailable
from ..http import HttpClient, RateBudget

logger = logging.getLogger(__name__)

API_URL = "https://open-api.tiktokglobalshop.com"
AUTH_URL = "https://auth.tiktok-shops.com"
TOKEN_PATH = "/api/v2/token/get"  # noqa: S105 (a path, not a password)
REFRESH_PATH = "/api/v2/token/refresh"
SHOPS_PATH = "/authorization/202309/shops"
UNSIGNED = frozenset({"sign", "access_token"})
MAX_BACKOFF = 30.0

HINT_RECONNECT = "Reconnect TikTok Shop: open the connection and authorise the shop again with Connect."
HINT_APP = "Check the app key and app secret (Partner Center → App & Service → your app)."
HINT_SCOPE = "Give the app the scope in Partner Center (App & Service → your app → Manage API), then reconnect."

# TikTok's common-errors table: 105001 the access token is invalid, 105002 it has expired; 105005
# the app lacks the endpoint's scope; 106001 the signature is wrong; 36009002 too many requests;
# 36009003 an internal error. 36009004 is "invalid parameter" for many causes, told apart by its
# message (an invalid `x-tts-access-token` header, an invalid `app_key`, a stale timestamp…).
TOKEN_REFUSED = {105001, 105002}
NO_SCOPE = {105005}
BAD_SIGNATURE = {106001}
TOO_MANY = {36009002}
INTERNAL = {36009003}
INVALID_PARAMETER = 36009004


def now() -> datetime:
    return datetime.now(UTC)  # looked up when called, so a test can move the clock


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def time_of(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def sign(app_secret: str, path: str, params: Mapping[str, Any], body: str | bytes = "") -> str:
    """TikTok's signature of one request. `body` is the body as sent, empty for a GET (and left out
    for multipart uploads, which the hub never sends)."""
    pairs = "".join(f"{name}{params[name]}" for name in sorted(params) if name not in UNSIGNED)
    text = body.decode() if isinstance(body, bytes) else body
    message = f"{app_secret}{path}{pairs}{text}{app_secret}"
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class TokenRefused(AuthError):
    """TikTok refused the access token (expired, invalid): a refreshed one may go through."""


def error_for(body: Mapping[str, Any], status: int | None = None) -> IntegrationError:
    """The hub's error for a TikTok answer whose `code` is not 0, in TikTok's words."""
    try:
        code = int(body.get("code"))
    except (TypeError, ValueError):
        code = -1
    message = str(body.get("message") or "no message").strip()[:300]
    request = f", request {body['request_id']}" if body.get("request_id") else ""
    said = f"TikTok Shop answered {code}: {message}{request}."
    lowered = message.lower()
    if code in TOKEN_REFUSED or (code == INVALID_PARAMETER and "access-token" in lowered.replace("_", "-")):
        return TokenRefused(said, hint=HINT_RECONNECT, status=status)
    if code in BAD_SIGNATURE or (code == INVALID_PARAMETER and "app_key" in lowered):
        return AuthError(said, hint=HINT_APP, status=status)
    if code in NO_SCOPE:
        return PermissionDenied(said, hint=HINT_SCOPE, status=status)
    if code in TOO_MANY:
        return RateLimited(said, hint="TikTok limits requests per app and shop; the sync slows down.", status=status)
    if code in INTERNAL:
        return Unavailable(said, hint="TikTok Shop failed on its side; the sync tries again later.", status=status)
    return BadResponse(said, status=status)


def answer(client: HttpClient, method: str, url: str, *, retry: bool = True, **kwargs: Any) -> dict[str, Any]:
    """TikTok's JSON object for one request, whatever its `code`. A failed HTTP status raises the
    client's error, reclassified by TikTok's code when the body carries one."""
    seen: list[Any] = []

    def keep(response: Any, *args: Any, **kw: Any) -> Any:
        seen.append(response)
        return response

    try:
        response = client.request(method, url, retry=retry, hooks={"response": keep}, **kwargs)
    except IntegrationError as error:
        body = _body(seen[-1]) if seen else None
        status = error.status
        if not isinstance(body, dict) or body.get("code") in (None, 0, "0"):
            if status == 401:
                raise TokenRefused(error.message, hint=HINT_RECONNECT, status=status) from error
            raise
        if status == 429 or (status or 0) >= 500:
            raise type(error)(f"{error.message} {error_for(body).message}", hint=error.hint, status=status) from error
        raise error_for(body, status) from error
    body = _body(response)
    if not isinstance(body, dict):
        raise BadResponse("TikTok Shop answered with malformed JSON.", status=response.status_code)
    return body


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# --- Calls ---------------------------------------------------------------------------------------


def signed_call(
    client: HttpClient,
    url: str,
    path: str,
    *,
    app_key: str,
    app_secret: str,
    token: str,
    method: str = "GET",
    query: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    shop_cipher: str | None = None,
    budget: RateBudget | None = None,
    retry: bool = True,
) -> dict[str, Any]:
    """Call `path` of the Open API at `url` and return the answer's `data`, or raise its error."""
    text = json.dumps(body, separators=(",", ":"), sort_keys=True) if body is not None else ""
    params = {name: str(value) for name, value in (query or {}).items() if value is not None}
    params["app_key"] = app_key
    if shop_cipher is not None:
        params["shop_cipher"] = shop_cipher
    headers = {"x-tts-access-token": token, "Content-Type": "application/json", "Accept": "application/json"}
    attempt = 0
    previous, client.budget = client.budget, budget
    try:
        while True:
            # Signed again for each attempt: the timestamp must stay within TikTok's five minutes.
            params["timestamp"] = str(int(now().timestamp()))
            params["sign"] = sign(app_secret, path, params, text)
            reply = answer(
                client,
                method,
                url.rstrip("/") + path,
                params=params,
                data=text.encode() if text else None,
                headers=headers,
                retry=retry,
            )
            if reply.get("code") in (0, "0"):
                data = reply.get("data")
                return data if isinstance(data, dict) else {}
            error = error_for(reply)
            if not isinstance(error, RateLimited | Unavailable) or not retry or attempt >= client.max_retries:
                raise error
            wait = random.uniform(0, min(MAX_BACKOFF, client.backoff * 2**attempt))  # noqa: S311 (jitter)
            logger.info("%s %s: %s; retry %d in %.1fs", method, path, error.message, attempt + 1, wait)
            if isinstance(error, RateLimited) and budget is not None:
                budget.pause(wait)  # every worker of the connection holds off; acquire() waits it out
            else:
                client.sleep(wait)
            attempt += 1
    finally:
        client.budget = previous


def authorised_shops(client: HttpClient, url: str, **auth: Any) -> list[dict[str, Any]]:
    """The shops that authorised the app (`cipher`, `id`, `name`, `region`, `seller_type`)."""
    data = signed_call(client, url, SHOPS_PATH, **auth)
    shops = data.get("shops")
    if not isinstance(shops, list):
        raise BadResponse("TikTok Shop's answer about the authorised shops has no list of shops.")
    return [shop for shop in shops if isinstance(shop, dict) and shop.get("cipher")]


def choose_shop(shops: list[dict[str, Any]], shop_id: str = "") -> dict[str, Any]:
    """The shop a connection syncs: the one with `shop_id` when it is set, else the first."""
    if not shops:
        raise AuthError("No TikTok Shop shop has authorised the app.", hint=HINT_RECONNECT)
    if shop_id:
        for shop in shops:
            if str(shop.get("id")) == shop_id:
                return shop
        names = ", ".join(f"{s.get('name') or '?'} ({s.get('id')})" for s in shops)
        raise AuthError(f"Shop {shop_id} has not authorised the app; these have: {names}.", hint=HINT_RECONNECT)
    return shops[0]


def shop_credentials(shop: Mapping[str, Any]) -> dict[str, str]:
    return {
        "shop_cipher": str(shop.get("cipher") or ""),
        "shop_id": str(shop.get("id") or ""),
        "shop_name": str(shop.get("name") or ""),
        "region": str(shop.get("region") or ""),
    }
