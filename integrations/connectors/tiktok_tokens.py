"""TikTok Shop's access and refresh tokens, kept in the connection's encrypted credentials.

An access token lasts about a week, and a refresh (`GET {auth host}/api/v2/token/refresh`,
grant_type=refresh_token) returns a new refresh token as well, after which the old one may stop
working. So the tokens live in the credentials rather than in the cache, and are saved there as
soon as TikTok issues them. A token is refreshed half an hour before it expires, or once when
TikTok refuses it, by one worker at a time: a lock taken with `cache.add`, after which the
connection is read again from the database, because the worker that held the lock before may
have refreshed already (and spent the refresh token this one holds). A refresh TikTok refuses
raises an `AuthError` that asks to reconnect TikTok Shop, which the sync engine records as the
connection needing reauthorisation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ..errors import AuthError, BadResponse, IntegrationError, Unavailable
from ..http import HttpClient
from . import tiktok_client
from .tiktok_client import HINT_RECONNECT, REFRESH_PATH, answer, iso, time_of

if TYPE_CHECKING:
    from ..models import Connection

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=30)  # how long before its expiry an access token is refreshed
LOCK_SECONDS = 60  # longer than one refresh with its retries
LOCK_POLL = 0.5
LOCK_POLLS = 150  # 75 s: the lock of a worker that died expires while the others wait


def expiry(value: Any) -> datetime | None:
    """When a token TikTok issued expires. Its `*_expire_in` is a unix time (TikTok's examples); a
    number too small to be one is read as seconds from now rather than as a date in 1970."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    if number > 10**9:
        return datetime.fromtimestamp(number, UTC)
    return tiktok_client.now() + timedelta(seconds=number)


def token_credentials(body: Mapping[str, Any]) -> dict[str, str]:
    """The credentials a token answer (get or refresh) sets; AuthError in TikTok's words if refused."""
    if body.get("code") not in (0, "0"):
        message = str(body.get("message") or "no message").strip()[:300]
        raise AuthError(f"TikTok Shop refused the authorisation ({body.get('code')}): {message}", hint=HINT_RECONNECT)
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    access, refresh = data.get("access_token"), data.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise BadResponse("TikTok Shop's token answer has no access token or refresh token.")
    access_expiry = expiry(data.get("access_token_expire_in"))
    refresh_expiry = expiry(data.get("refresh_token_expire_in"))
    return {
        "access_token": access,
        "access_token_expires_at": iso(access_expiry) if access_expiry else "",
        "refresh_token": refresh,
        "refresh_token_expires_at": iso(refresh_expiry) if refresh_expiry else "",
    }


def request_token(client: HttpClient, url: str, params: dict[str, str], *, retry: bool = True) -> dict[str, str]:
    """GET a token endpoint of the auth host and return the credentials it sets."""
    previous, client.budget = client.budget, None  # the auth host is not the shop's Open API
    try:
        body = answer(client, "GET", url, params=params, headers={"Accept": "application/json"}, retry=retry)
    except IntegrationError as error:
        if error.status in (400, 401, 403):
            raise AuthError(f"TikTok Shop refused the token request: {error.message}", hint=HINT_RECONNECT) from error
        raise
    finally:
        client.budget = previous
    return token_credentials(body)


def save_credentials(connection: Connection, updates: Mapping[str, str]) -> dict[str, Any]:
    """Merge `updates` into the stored credentials and save them (encrypted), touching no other
    column. An unsaved connection (tested before it is saved) keeps them in memory."""
    merged = {**(connection.credentials or {}), **updates}
    if connection.pk:
        rows = type(connection).objects.for_tenant(connection.tenant_id).filter(pk=connection.pk)
        with transaction.atomic():
            stored = rows.select_for_update().values_list("credentials", flat=True).first()
            merged = {**(stored if stored is not None else connection.credentials or {}), **updates}
            rows.update(credentials=merged, updated_at=timezone.now())
    connection.credentials = merged
    return connection.credentials


class Tokens:
    """One connection's access token, refreshed by one worker at a time and saved to its credentials."""

    def __init__(
        self,
        connection: Connection,
        client: HttpClient,
        auth_url: str,
        *,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.connection = connection
        self.client = client
        self.auth_url = auth_url.rstrip("/")
        self.on_change = on_change
        key = str(connection.pk) if connection.pk else f"unsaved-{connection.uuid}"
        self.lock_key = f"tiktok:token-lock:{key}"

    @property
    def credentials(self) -> Mapping[str, Any]:
        return self.connection.credentials or {}

    def get(self, *, retry: bool = True) -> str:
        token = str(self.credentials.get("access_token") or "")
        if token and self._fresh(self.credentials):
            return token
        return self._renew(token or None, retry)

    def refresh(self, stale: str, *, retry: bool = True) -> str:
        """A token other than `stale`, which TikTok refused: another worker's newer one, or a new one."""
        return self._renew(stale, retry)

    def _fresh(self, credentials: Mapping[str, Any]) -> bool:
        expires = time_of(credentials.get("access_token_expires_at"))
        return expires is None or expires - tiktok_client.now() > REFRESH_MARGIN

    def _renew(self, stale: str | None, retry: bool) -> str:
        owner = uuid.uuid4().hex
        for _ in range(LOCK_POLLS):
            if cache.add(self.lock_key, owner, timeout=LOCK_SECONDS):
                try:
                    return self._stored(stale) or self._refresh(retry)
                finally:
                    if cache.get(self.lock_key) == owner:
                        cache.delete(self.lock_key)
            self.client.sleep(LOCK_POLL)
            if token := self._stored(stale):
                return token
        raise Unavailable(
            "Another worker kept refreshing this connection's TikTok Shop token for over a minute.",
            hint="The sync tries again later.",
        )

    def _stored(self, stale: str | None) -> str | None:
        """The stored token, when another worker saved one other than `stale` that is not about to
        expire. The connection's credentials are brought up to date either way."""
        if not self.connection.pk:
            return None
        stored = (
            type(self.connection)
            .objects.for_tenant(self.connection.tenant_id)
            .filter(pk=self.connection.pk)
            .values_list("credentials", flat=True)
            .first()
        )
        if stored is None:
            return None
        self._changed(stored)
        token = str(stored.get("access_token") or "")
        return token if token and token != stale and self._fresh(stored) else None

    def _refresh(self, retry: bool) -> str:
        refresh_token = str(self.credentials.get("refresh_token") or "").strip()
        if not refresh_token:
            raise AuthError(
                "The connection has no TikTok Shop refresh token: reconnect TikTok Shop.", hint=HINT_RECONNECT
            )
        lapsed = time_of(self.credentials.get("refresh_token_expires_at"))
        if lapsed is not None and lapsed <= tiktok_client.now():
            raise AuthError(
                f"The TikTok Shop refresh token expired on {lapsed.date()}: reconnect TikTok Shop.", hint=HINT_RECONNECT
            )
        params = {
            "app_key": str(self.credentials.get("app_key") or ""),
            "app_secret": str(self.credentials.get("app_secret") or ""),
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        try:
            updates = request_token(self.client, self.auth_url + REFRESH_PATH, params, retry=retry)
        except AuthError as error:
            raise AuthError(
                f"TikTok Shop would not refresh the access token: reconnect TikTok Shop. {error.message}",
                hint=HINT_RECONNECT,
                status=error.status,
            ) from error
        self._changed(save_credentials(self.connection, updates))
        logger.info(
            "Refreshed the TikTok Shop token of connection %s; it expires at %s",
            self.connection.pk,
            updates["access_token_expires_at"] or "an unknown time",
        )
        return updates["access_token"]

    def _changed(self, credentials: dict[str, Any]) -> None:
        self.connection.credentials = credentials
        if self.on_change:
            self.on_change(self.connection.credentials)
