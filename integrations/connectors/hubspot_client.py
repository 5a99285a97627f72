"""HubSpot transport: the API host, the two ways a connection authenticates, shared OAuth access
tokens, and HubSpot's own words for a refused request.

- A private app's access token (`access_token`) is sent as it is (Bearer). It does not expire; it
  is refused (401) once the app is deleted or its token rotated.
- A connection made with Connect has the app's `client_id` and `client_secret` and the account's
  `refresh_token`. Access tokens (30 minutes) are minted from the refresh token at /oauth/v1/token
  and shared by the connection's workers through the cache (`integrations.tokens.SharedToken`); a
  401 gets a new one once. When a connection has both, OAuth is used.
- HubSpot explains a refusal in `message` and `category`. A 403 for a scope the token lacks has
  `category: MISSING_SCOPES` and the scopes in `errors[].context.requiredGranularScopes` (older
  answers: `requiredScopes`), which `MissingScopes` names.
- The connection's base URL override replaces https://api.hubapi.com (a test server, a proxy).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import requests
from django.conf import settings

from ..errors import AuthError, BadResponse, ConfigurationError, IntegrationError, PermissionDenied
from ..http import HttpClient
from ..oauth.base import TokenClient
from ..tokens import SharedToken, lifetime_of

logger = logging.getLogger(__name__)

API_URL = "https://api.hubapi.com"
TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 (a path, not a password)
OAUTH_CREDENTIALS = ("client_id", "client_secret", "refresh_token")
LABELS = {"client_id": "client ID", "client_secret": "client secret", "refresh_token": "refresh token"}
JSON = {"Accept": "application/json"}

HINT_PRIVATE_APP = (
    "Copy the private app's access token again: HubSpot → Settings → Integrations → Private apps → the app → Auth."
)
HINT_RECONNECT = "Connect the connection to HubSpot again (its Connect button), signed in to the account."
PRIVATE_APP_REFUSED = (
    "HubSpot refused the private app's access token: it is wrong, or the app was deleted or its token rotated."
)
OAUTH_REFUSED = "HubSpot refused the connection's authorisation: the app was uninstalled or its access revoked."


def api_url(override: str = "") -> str:
    return (override or "").strip().rstrip("/") or API_URL


def auth_mode(credentials: dict[str, Any]) -> str:
    """ "oauth" when the connection has the OAuth trio, "private_app" when it has an access token;
    a ConfigurationError that says what is missing otherwise."""
    present = [name for name in OAUTH_CREDENTIALS if str(credentials.get(name) or "").strip()]
    if len(present) == len(OAUTH_CREDENTIALS):
        return "oauth"
    if str(credentials.get("access_token") or "").strip():
        return "private_app"
    if present:
        missing = ", ".join(LABELS[name] for name in OAUTH_CREDENTIALS if name not in present)
        only_connect = "refresh_token" not in present and len(present) == len(OAUTH_CREDENTIALS) - 1
        raise ConfigurationError(
            f"The connection has part of HubSpot's OAuth credentials: its {missing} is missing.",
            hint="Connect the connection to HubSpot (its Connect button)."
            if only_connect
            else "Fill in the app's client ID and secret, then Connect.",
        )
    raise ConfigurationError(
        "The connection has neither a HubSpot private app access token nor OAuth credentials.",
        hint="Paste a private app's access token, or fill in the app's client ID and secret and use Connect.",
    )


class MissingScopes(PermissionDenied):
    """A 403 for scopes the token was not granted; `scopes` are HubSpot's names for them."""

    def __init__(self, message: str, *, scopes: list[str], hint: str = "", status: int | None = 403) -> None:
        super().__init__(message, hint=hint, status=status)
        self.scopes = scopes


class HubSpotTokens(SharedToken):
    """One connection's OAuth access tokens, minted from its refresh token, shared by its workers."""

    label = "HubSpot access token"

    def __init__(self, url: str, client_id: str, client_secret: str, refresh_token: str, cache_id: str, *, sleep=None):
        # Keyed by the endpoint, app and refresh token too: a new consent never uses the old one's token.
        digest = hashlib.sha256(f"{url}\n{client_id}\n{refresh_token}".encode()).hexdigest()[:16]
        # The token endpoint is not an API call: no rate budget; its refusals are AuthErrors.
        client = TokenClient("HubSpot", allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        if sleep is not None:
            client.sleep = sleep
        super().__init__(client, f"hubspot:token:{cache_id}:{digest}")
        self.url = url
        self.form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }

    def mint(self, retry: bool) -> tuple[str, int]:
        try:
            body = self.client.json("POST", self.url, data=self.form, headers=JSON, retry=retry)
        except AuthError as error:
            raise AuthError(f"{OAUTH_REFUSED} {error.message}", hint=HINT_RECONNECT, status=error.status) from error
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("HubSpot's token endpoint answered without an access token.")
        # HubSpot keeps the refresh token when it mints (it answers the same one), so nothing is saved.
        return token, lifetime_of(body, 1800)


class HubSpotApi:
    """Requests to HubSpot's APIs with the connection's token."""

    def __init__(self, client: HttpClient, base_url: str, *, token: str = "", tokens: HubSpotTokens | None = None):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.tokens = tokens

    @property
    def mode(self) -> str:
        return "oauth" if self.tokens is not None else "private_app"

    def json(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        response = self.send(method, path, retry=retry, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse("HubSpot answered with malformed JSON.", status=response.status_code) from exc

    def send(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> requests.Response:
        """The 2xx answer. With OAuth a 401 is sent again once with a new token: HubSpot refused the
        stale one before doing anything."""
        url = self.base_url + path
        if self.tokens is None:
            try:
                return self._send(method, url, self.token, retry, kwargs)
            except AuthError as error:
                raise AuthError(PRIVATE_APP_REFUSED, hint=HINT_PRIVATE_APP, status=error.status) from error
        token = self.tokens.get(retry=retry)
        try:
            return self._send(method, url, token, retry, kwargs)
        except AuthError:
            logger.info("HubSpot refused the access token for %s; renewing it once", path)
        token = self.tokens.refresh(token, retry=retry)
        try:
            return self._send(method, url, token, retry, kwargs)
        except AuthError as error:
            raise AuthError(OAUTH_REFUSED, hint=HINT_RECONNECT, status=error.status) from error

    def _send(self, method: str, url: str, token: str, retry: bool, kwargs: dict[str, Any]) -> requests.Response:
        refusals: list[Any] = []

        def observe(response: requests.Response, *args: Any, **kw: Any) -> requests.Response:
            if response.status_code == 403:
                refusals.append(body_of(response))
            return response

        headers = {**JSON, **kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        rest = {key: value for key, value in kwargs.items() if key != "headers"}
        try:
            return self.client.request(method, url, headers=headers, retry=retry, hooks={"response": observe}, **rest)
        except PermissionDenied as error:
            scopes = missing_scopes(refusals[-1] if refusals else None)
            if not scopes:
                raise
            where = (
                "Add it to the private app (HubSpot → Settings → Integrations → Private apps → the app → Scopes)."
                if self.tokens is None
                else "Add it to the app's scopes in HubSpot, then connect again (Connect)."
            )
            raise MissingScopes(
                f"HubSpot's token lacks the scope this needs: {' or '.join(scopes)}.",
                scopes=scopes,
                hint=where,
                status=error.status,
            ) from error


def body_of(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def missing_scopes(body: Any) -> list[str]:
    """The scopes a MISSING_SCOPES answer names, wherever in the body it puts them."""
    if not isinstance(body, dict):
        return []
    contexts = [body.get("context")]
    contexts += [item.get("context") for item in body.get("errors") or [] if isinstance(item, dict)]
    scopes: list[str] = []
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
            value = context.get(key)
            for scope in value if isinstance(value, list) else [value] if value else []:
                if str(scope) not in scopes:
                    scopes.append(str(scope))
    return scopes


def hubspot_message(response: Any) -> str:
    """HubSpot's `message` for a refused request, for the error's text (the connector's
    `Hints.describe`); the scopes it lacks when it says."""
    body = body_of(response)
    if not isinstance(body, dict):
        return ""
    message = re.sub(r"\s+", " ", str(body.get("message") or "")).strip()
    scopes = missing_scopes(body)
    return f"{message} (needs {' or '.join(scopes)})" if scopes else message


def error_reason(error: IntegrationError) -> str:
    """A refusal's words for a person: the message without our status prefix."""
    return re.sub(r"^The platform answered \d+ [^:]*: ", "", error.message)
