"""Salesforce's access tokens, minted from the connection's refresh token and shared by its workers.

- `POST {login host}/services/oauth2/token` with grant_type=refresh_token, the connected app's
  consumer key and secret. The answer names the org's `instance_url`, where every API request goes;
  it is saved to the credentials whenever it changes (an org moved to another instance).
- The token is kept in the cache with its instance URL (`SharedToken`: one worker mints, the others
  wait for it). Salesforce does not say how long one lasts (the org's session timeout: two hours by
  default, 15 minutes at the least), so one is kept for 15 minutes, and a 401 gets a new one once.
- A connected app with refresh token rotation issues a new refresh token with each access token:
  it is saved at once, and a worker whose refresh token was refused tries the stored one once.
- A refused refresh token (`invalid_grant`: expired, revoked, the user deactivated) is an
  AuthError asking to reconnect, which marks the connection as needing reauthorisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import requests

from ..errors import AuthError, BadResponse, IntegrationError
from ..http import HttpClient, validate_public_url
from ..tokens import SharedToken, lifetime_of
from .salesforce_client import HINT_CLIENT, HINT_RECONNECT, JSON, RECONNECT, response_body
from .tiktok_tokens import save_credentials

if TYPE_CHECKING:
    from ..models import Connection

logger = logging.getLogger(__name__)

SESSION_SECONDS = 16 * 60  # kept 15 minutes: SharedToken drops a token a minute before it lapses


@dataclass(frozen=True)
class Session:
    """An access token and the instance it is good for, cached together as one string."""

    access_token: str
    instance_url: str

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, value: str) -> Session:
        data = json.loads(value)
        return cls(data["access_token"], data["instance_url"])


def request_token(client: HttpClient, url: str, form: dict[str, str], *, retry: bool) -> dict[str, Any]:
    """POST a grant to Salesforce's token endpoint; its JSON answer, or an AuthError that says what to do.

    Salesforce answers a refresh token that is expired or revoked (or whose user is inactive) with
    400 `invalid_grant`, and unknown keys with 400 `invalid_client_id` or `invalid_client`."""
    said: list[Any] = []

    def observe(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if response.status_code >= 400:
            said.append(response_body(response))
        return response

    previous, client.budget = client.budget, None  # the token endpoint is not counted as an API request
    try:
        body = client.json("POST", url, data=form, headers=JSON, retry=retry, hooks={"response": observe})
    except IntegrationError as error:
        answer = said[-1] if said and isinstance(said[-1], dict) else {}
        code = str(answer.get("error") or "")
        detail = str(answer.get("error_description") or "").rstrip(". ")
        words = f" Salesforce answered {code}{': ' + detail if detail else ''}." if code else ""
        if code in {"invalid_client_id", "invalid_client"}:
            raise AuthError(
                f"Salesforce refused the connected app's keys.{words}", hint=HINT_CLIENT, status=400
            ) from error
        if code == "invalid_grant" or error.status in {400, 401}:
            raise AuthError(f"{RECONNECT}{words}", hint=HINT_RECONNECT, status=error.status) from error
        raise
    finally:
        client.budget = previous
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise BadResponse("Salesforce's token endpoint answered without an access token.")
    return body


def instance_of(body: dict[str, Any]) -> str:
    value = str(body.get("instance_url") or "").strip().rstrip("/")
    if not value:
        raise BadResponse("Salesforce's token endpoint answered without the org's instance URL.")
    return validate_public_url(value)


class SalesforceTokens(SharedToken):
    """One connection's access tokens (with its instance URL), shared by its workers through the cache."""

    label = "Salesforce token"

    def __init__(self, connection: Connection, client: HttpClient, url: str, cache_id: str) -> None:
        credentials = connection.credentials or {}
        # Keyed by the login host, app and refresh token too: a sandbox switch or a new consent (maybe
        # for another org) never uses the old one's token.
        seed = f"{url}\n{credentials.get('client_id')}\n{credentials.get('refresh_token')}"
        super().__init__(client, f"salesforce:token:{cache_id}:{hashlib.sha256(seed.encode()).hexdigest()[:16]}")
        self.connection = connection
        self.url = url

    def session(self, *, retry: bool = True) -> Session:
        return Session.loads(self.get(retry=retry))

    def refresh_session(self, stale: Session, *, retry: bool = True) -> Session:
        return Session.loads(self.refresh(stale.dumps(), retry=retry))

    def mint(self, retry: bool) -> tuple[str, int]:
        credentials = self.connection.credentials or {}
        try:
            body = self._grant(credentials, retry)
        except AuthError:
            # With refresh token rotation another worker may have spent this refresh token and saved
            # its successor: refused, the stored one is tried once.
            stored = self._stored_refresh_token()
            if not stored or stored == credentials.get("refresh_token"):
                raise
            credentials = {**credentials, "refresh_token": stored}
            self.connection.credentials = credentials
            body = self._grant(credentials, retry)
        instance_url = instance_of(body)
        updates = {}
        if instance_url != str(credentials.get("instance_url") or "").rstrip("/"):
            updates["instance_url"] = instance_url
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != credentials.get("refresh_token"):
            updates["refresh_token"] = rotated
        if updates:
            save_credentials(self.connection, updates)
            logger.info(
                "Saved Salesforce's new %s for connection %s", " and ".join(sorted(updates)), self.connection.pk
            )
        return Session(body["access_token"], instance_url).dumps(), lifetime_of(body, SESSION_SECONDS)

    def _grant(self, credentials: dict[str, Any], retry: bool) -> dict[str, Any]:
        refresh_token = str(credentials.get("refresh_token") or "").strip()
        if not refresh_token:
            raise AuthError(
                "The connection has no Salesforce refresh token: connect it to Salesforce.", hint=HINT_RECONNECT
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": str(credentials.get("client_id") or ""),
            "client_secret": str(credentials.get("client_secret") or ""),
        }
        return request_token(self.client, self.url, form, retry=retry)

    def _stored_refresh_token(self) -> str:
        connection = self.connection
        if not connection.pk:
            return ""
        stored = (
            type(connection)
            .objects.for_tenant(connection.tenant_id)
            .filter(pk=connection.pk)
            .values_list("credentials", flat=True)
            .first()
        )
        return str((stored or {}).get("refresh_token") or "")
