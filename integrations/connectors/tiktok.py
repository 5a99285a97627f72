"""TikTok Shop (Partner Center Open API, version 202309): credentials, the check, and streams.

- Credentials: the app's key and secret and its service ID (for Connect's authorisation link), then
  what Connect (`tiktok_oauth`) sets: the access and refresh tokens with their expiry times, and
  the shop's cipher, id, name and region from the authorised shops. A connection given tokens by
  hand and no cipher looks its shop up on first use. A base URL override serves both the Open API
  and the auth host's token endpoints (a test server, a proxy).
- Signing, calls and error codes: `tiktok_client`. Tokens: `tiktok_tokens`. Reading and cursors:
  `tiktok_streams`. Mapping: `tiktok_mapping`.
- Streams: `orders` (Get Order List) and `products` (Search Products, with each SKU's price and
  stock per warehouse). Returns, refunds and settlements are not read yet.
- Pushes: shipments of seller-shipped packages and stock levels (`tiktok_push`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import AuthError, ConfigurationError, PermissionDenied, RateLimited
from ..http import Hints, HttpClient
from . import tiktok_client, tiktok_push, tiktok_streams
from . import tiktok_mapping as mapping
from .base import CheckResult, Connector, Page
from .tiktok_client import API_URL, AUTH_URL, HINT_RECONNECT, authorised_shops, choose_shop, shop_credentials, time_of
from .tiktok_tokens import Tokens, save_credentials

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

    from ..models import Connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
STREAMS = ("orders", "products")
REFRESH_WARNING = timedelta(days=14)
SAMPLES = {"orders": tiktok_streams.ORDERS_PATH, "products": tiktok_streams.PRODUCTS_PATH}


class TikTokConnector(Connector):
    # Not read ahead in a thread (`reads_in_background`): a read may save refreshed tokens to the
    # connection's row, which belongs to the engine's own database connection.
    streams = STREAMS
    carrier_names = tiktok_push.CARRIER_NAMES

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        super().__init__(connection, client=client)
        # The shared budget waits with the client's sleep, which a test's client records instead.
        self.budget.sleep = self.client.sleep

    def hints(self) -> Hints:
        tiktok_side = "TikTok Shop failed on its side; the sync tries again later."
        return Hints(
            by_status={
                401: HINT_RECONNECT,
                403: "TikTok Shop refused the app: check its scopes in Partner Center, then reconnect.",
                404: "TikTok Shop does not know this address: check the base URL override.",
                429: "TikTok Shop's request limit is reached; the sync slows down and retries.",
                500: tiktok_side,
                503: tiktok_side,
            },
            timeout="TikTok Shop did not answer in time.",
            connection="TikTok Shop's Open API could not be reached.",
        )

    @cached_property
    def urls(self) -> tuple[str, str]:
        """The Open API's and the auth host's base URLs."""
        override = (self.connection.base_url or "").strip().rstrip("/")
        return (override or API_URL, override or AUTH_URL)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.connection, self.client, self.urls[1], on_change=self._credentials_changed)

    def _credentials_changed(self, credentials: dict[str, Any]) -> None:
        self.credentials = credentials

    def call(self, path: str, *, method: str = "POST", shop: bool = True, retry: bool = True, **kwargs: Any) -> dict:
        """Call one endpoint of the Open API and return its `data`."""
        cipher = self.shop_cipher(retry=retry) if shop else None
        return self._authorised(
            lambda token, auth: tiktok_client.signed_call(
                self.client,
                self.urls[0],
                path,
                method=method,
                token=token,
                shop_cipher=cipher,
                budget=self.budget,
                retry=retry,
                **auth,
                **kwargs,
            ),
            retry,
        )

    def shops(self, *, retry: bool = True) -> list[dict[str, Any]]:
        """The shops that authorised the app."""
        return self._authorised(
            lambda token, auth: authorised_shops(
                self.client, self.urls[0], token=token, budget=self.budget, retry=retry, **auth
            ),
            retry,
        )

    def _authorised(self, send: Callable[[str, dict[str, str]], T], retry: bool) -> T:
        """`send(token, app)` with the access token; a token TikTok refuses is refreshed once."""
        app = {"app_key": self.credential("app_key"), "app_secret": self.credential("app_secret")}
        token = self.tokens.get(retry=retry)
        try:
            return send(token, app)
        except tiktok_client.TokenRefused as error:
            logger.info("TikTok Shop refused the access token of connection %s (%s)", self.cache_id, error.message)
        token = self.tokens.refresh(token, retry=retry)
        try:
            return send(token, app)
        except tiktok_client.TokenRefused as error:
            raise AuthError(
                f"TikTok Shop refused a freshly refreshed access token: reconnect TikTok Shop. {error.message}",
                hint=HINT_RECONNECT,
                status=error.status,
            ) from error

    def shop_cipher(self, *, retry: bool = True) -> str:
        """The synced shop's cipher; looked up (and saved) when only the tokens were given."""
        cipher = str(self.credentials.get("shop_cipher") or "").strip()
        if not cipher:
            shop = choose_shop(self.shops(retry=retry), str(self.credentials.get("shop_id") or "").strip())
            self.credentials = save_credentials(self.connection, shop_credentials(shop))
            cipher = str(shop["cipher"])
        return cipher

    # --- Check ---

    def _check(self) -> CheckResult:
        self.credential("app_key")
        self.credential("app_secret")
        if not (self.credentials.get("access_token") or self.credentials.get("refresh_token")):
            raise AuthError("The shop has not been authorised yet.", hint="Use Connect to authorise the TikTok Shop.")
        shops = self.shops(retry=False)
        cipher = str(self.credentials.get("shop_cipher") or "").strip()
        shop = next((s for s in shops if s.get("cipher") == cipher), None) if cipher else None
        if cipher and shop is None:
            names = ", ".join(f"{s.get('name') or '?'} ({s.get('id')})" for s in shops) or "none"
            raise AuthError(
                "The connection's shop is not among the shops that authorised the app.",
                hint=f"Reconnect TikTok Shop. The shops that did: {names}.",
            )
        if shop is None:
            shop = choose_shop(shops, str(self.credentials.get("shop_id") or "").strip())
            self.credentials = save_credentials(self.connection, shop_credentials(shop))
        warnings = self._warnings(shops)
        samples, granted, missing = self._samples(warnings)
        name = shop.get("name") or shop.get("id")
        return CheckResult(
            ok=True,
            message=f"Connected to the TikTok Shop “{name}” ({shop.get('region') or 'region unknown'}).",
            granted=granted,
            missing=missing,
            samples=samples,
            warnings=warnings,
            details={
                "shop_id": str(shop.get("id") or ""),
                "shop_name": shop.get("name") or "",
                "region": shop.get("region") or "",
                "seller_type": shop.get("seller_type") or "",
                "endpoint": self.urls[0],
                "access_token_expires_at": self.credentials.get("access_token_expires_at") or None,
                "refresh_token_expires_at": self.credentials.get("refresh_token_expires_at") or None,
            },
        )

    def _warnings(self, shops: list[dict[str, Any]]) -> list[str]:
        warnings = []
        if len(shops) > 1:
            others = ", ".join(
                str(s.get("name") or s.get("id")) for s in shops if s.get("cipher") != self.shop_cipher()
            )
            warnings.append(f"The app is authorised by other shops too ({others}); this connection syncs one.")
        lapses = time_of(self.credentials.get("refresh_token_expires_at"))
        if lapses is not None and lapses - tiktok_client.now() <= REFRESH_WARNING:
            warnings.append(f"The refresh token expires on {lapses.date()}: reconnect TikTok Shop before then.")
        return warnings

    def _samples(self, warnings: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
        """How many records each stream has, and which the app may read (the check never retries)."""
        samples: dict[str, int] = {}
        granted: list[str] = []
        missing: list[str] = []
        for stream, path in SAMPLES.items():
            try:
                data = self.call(path, query={"page_size": 1}, body={}, retry=False)
            except PermissionDenied as error:
                missing.append(stream)
                warnings.append(f"The app cannot read {stream}: {error.message}")
                continue
            except RateLimited:
                warnings.append(f"No sample of {stream}: TikTok Shop's request limit is reached for now.")
                continue
            granted.append(stream)
            total = data.get("total_count")
            samples[stream] = total if isinstance(total, int) else len(data.get(stream) or [])
        return samples, granted, missing

    # --- Read ---

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        if stream not in STREAMS:
            raise ConfigurationError(f"TikTok Shop has no “{stream}” stream.", hint=f"Streams: {', '.join(STREAMS)}.")
        reader = tiktok_streams.orders if stream == "orders" else tiktok_streams.products
        yield from reader(self, {} if full else cursor or {})

    def parse(self, stream: str, payload: Any) -> Record:
        if stream == "orders":
            return mapping.map_order(payload)
        if stream == "products":
            return mapping.map_product(payload)
        raise ConfigurationError(f"TikTok Shop has no “{stream}” stream.")

    # --- Pushes (commerce.pushes) ---

    def fulfil(self, push: FulfilmentPush) -> str:
        return tiktok_push.fulfil(self, push)

    def set_stock(self, push: StockPush) -> str:
        return tiktok_push.set_stock(self, push)
