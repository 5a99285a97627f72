"""The one HTTP layer every connector uses.

- A `requests.Session` per connection with fixed connect/read timeouts.
- Retries with exponential backoff and full jitter on 429, 5xx and connection errors, honouring
  `Retry-After`; every other 4xx is permanent. A connection test never retries.
- One rate budget per connection (`RateBudget`), kept in the cache so every worker shares it.
- Errors mapped to `integrations.errors`, with the platform's hint for each status.
- User-supplied addresses are checked on the IP actually connected to, at request time, so a
  name that resolves (or re-resolves) to a private address is refused.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import (
    AuthError,
    BadResponse,
    IntegrationError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UnsafeURL,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 522, 524}
MAX_RETRY_AFTER = 120.0
# Cloud metadata services, also reachable on addresses that are not "private".
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


# --- Address safety --------------------------------------------------------------------------------


def is_forbidden_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def validate_public_url(url: str, *, allow_private: bool | None = None) -> str:
    """Check a user-supplied URL when it is saved: https, and not a private or loopback host.
    The same rule is enforced again on the connected IP at request time."""
    allow_private = settings.INTEGRATIONS_ALLOW_PRIVATE_URLS if allow_private is None else allow_private
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise UnsafeURL(f"“{url}” is not a web address.", hint="Use https://host/…")
    if allow_private:
        return url
    if parts.scheme != "https":
        raise UnsafeURL("Only https:// addresses are allowed.", hint="Use the https:// address of the site.")
    host = parts.hostname.lower()
    if host in METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(f"“{host}” is not a public address.")
    try:
        if is_forbidden_ip(host):
            raise UnsafeURL(f"“{host}” is a private or loopback address.")
    except ValueError:
        pass  # a host name: checked on the resolved address when a request is made
    return url


class _PeerCheck:
    """Refuses a connection whose peer is a forbidden address (checked after connect, on the
    socket itself, so DNS rebinding between a check and the connect cannot slip through)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if is_forbidden_ip(peer):
            sock.close()
            raise UnsafeURL(f"{self.host} resolves to {peer}, a private or loopback address.")
        return sock


class _SafeHTTPConnection(_PeerCheck, HTTPConnection):
    pass


class _SafeHTTPSConnection(_PeerCheck, HTTPSConnection):
    pass


class _SafeHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _SafeHTTPConnection


class _SafeHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _SafeHTTPSConnection


class SafeAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _SafeHTTPConnectionPool, "https": _SafeHTTPSConnectionPool}


def new_session(*, allow_private: bool | None = None) -> requests.Session:
    allow_private = settings.INTEGRATIONS_ALLOW_PRIVATE_URLS if allow_private is None else allow_private
    session = requests.Session()
    # Proxies from the environment would make the peer check meaningless.
    session.trust_env = False
    if not allow_private:
        session.mount("https://", SafeAdapter())
        session.mount("http://", SafeAdapter())
    session.headers["User-Agent"] = "commerce-hub/1.0"
    return session


# --- Rate budget -----------------------------------------------------------------------------------


class RateBudget:
    """`burst` requests per window of `burst / rate` seconds, per connection, across all workers.

    A fixed window counted with the cache's atomic `incr` (Redis in production, so every worker
    and host shares it). A 429 from the platform pauses the whole budget for its `Retry-After`.
    """

    def __init__(self, key: str, rate: float, burst: int, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.key = f"ratebudget:{key}"
        self.burst = max(1, int(burst))
        self.window = max(1.0, self.burst / max(rate, 0.001))
        self.sleep = sleep

    def _window_key(self, now: float) -> tuple[str, float]:
        index = int(now // self.window)
        return f"{self.key}:{index}", (index + 1) * self.window

    def acquire(self, *, max_wait: float = 300.0) -> None:
        waited = 0.0
        honoured_pause = False
        while True:
            now = time.time()
            paused_until = cache.get(f"{self.key}:paused") or 0
            if paused_until > now and not honoured_pause:
                delay = paused_until - now
                honoured_pause = True
            else:
                key, window_end = self._window_key(now)
                cache.add(key, 0, timeout=int(self.window * 2) + 1)
                try:
                    used = cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, timeout=int(self.window * 2) + 1)
                    used = 1
                if used <= self.burst:
                    return
                delay = window_end - now + random.uniform(0, 0.05)  # noqa: S311 (jitter, not crypto)
            if waited + delay > max_wait:
                raise RateLimited(f"The connection's request budget stayed exhausted for {int(max_wait)} s.")
            self.sleep(delay)
            waited += delay

    def pause(self, seconds: float) -> None:
        until = time.time() + seconds
        cache.set(f"{self.key}:paused", until, timeout=int(seconds) + 1)

    def remaining(self) -> int:
        key, _ = self._window_key(time.time())
        return max(0, self.burst - int(cache.get(key) or 0))

    def describe(self) -> dict[str, Any]:
        paused_until = cache.get(f"{self.key}:paused") or 0
        return {
            "limit": self.burst,
            "window_seconds": round(self.window, 1),
            "remaining": self.remaining(),
            "paused_for": max(0, round(paused_until - time.time(), 1)),
        }


# --- The client ------------------------------------------------------------------------------------


@dataclass
class Hints:
    """What to tell a person for each failure, per platform."""

    by_status: dict[int, str] = field(default_factory=dict)
    ssl: str = "The site's HTTPS is misconfigured (its certificate could not be verified)."
    timeout: str = "The platform did not answer in time."
    connection: str = "The platform could not be reached."
    # The platform's own reason in an error answer's body (e.g. WooCommerce's `message`), added to
    # the error; returns "" when there is none.
    describe: Callable[[requests.Response], str] | None = None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    def __init__(
        self,
        *,
        budget: RateBudget | None = None,
        hints: Hints | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        allow_private: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = new_session(allow_private=allow_private)
        self.budget = budget
        self.hints = hints or Hints()
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.attempts = 0  # requests actually sent, for tests and benchmarks

    def request(self, method: str, url: str, *, retry: bool = True, **kwargs: Any) -> requests.Response:
        """Send a request; return the 2xx response or raise an IntegrationError."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        retries = self.max_retries if retry else 0
        attempt = 0
        while True:
            if self.budget is not None:
                self.budget.acquire()
            self.attempts += 1
            try:
                response = self.session.request(method, url, **kwargs)
            except UnsafeURL:
                raise
            except requests.exceptions.SSLError as exc:
                raise Unavailable("TLS handshake failed.", hint=self.hints.ssl) from exc
            except requests.exceptions.ConnectionError:
                error: IntegrationError = Unavailable("Could not connect.", hint=self.hints.connection)
                delay = None
            except requests.exceptions.Timeout:
                error = Unavailable("The request timed out.", hint=self.hints.timeout)
                delay = None
            except requests.exceptions.ChunkedEncodingError as exc:
                # The connection closed before the whole answer came (a server or proxy cut it off).
                error = Unavailable(
                    f"The answer broke off before its end ({type(exc).__name__}).", hint=self.hints.timeout
                )
                delay = None
            else:
                if response.status_code < 300:
                    return response
                if response.status_code < 400:
                    # Redirects are never followed (one could lead to a private address), so a
                    # platform that answers with one has a URL to fix.
                    target = _safe_url(response.headers.get("Location", "")) if response.headers.get("Location") else ""
                    raise BadResponse(
                        f"The platform redirected to {target or 'another address'}.",
                        hint="Check the address (https, www, path) and use the one it redirects to.",
                        status=response.status_code,
                    )
                error = self.error_for(response)
                delay = parse_retry_after(response.headers.get("Retry-After"))
                if response.status_code not in RETRY_STATUSES:
                    raise error
            if attempt >= retries:
                raise error
            wait = min(delay, MAX_RETRY_AFTER) if delay is not None else self._backoff(attempt)
            if isinstance(error, RateLimited) and self.budget is not None:
                # Every worker of this connection holds off, and this request waits in acquire().
                self.budget.pause(wait)
                wait = 0.0
            logger.info("%s %s failed (%s); retry %d in %.1fs", method, _safe_url(url), error.code, attempt + 1, wait)
            if wait:
                self.sleep(wait)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # noqa: S311 (jitter)

    def error_for(self, response: requests.Response) -> IntegrationError:
        status = response.status_code
        hint = self.hints.by_status.get(status, "")
        cls = {401: AuthError, 403: PermissionDenied, 404: NotFound, 429: RateLimited}.get(status)
        if cls is None:
            cls = Unavailable if status >= 500 else BadResponse
        message = f"The platform answered {status} {response.reason or ''}".strip()
        detail = ""
        if self.hints.describe is not None:
            try:
                detail = self.hints.describe(response).strip()[:300]
            except Exception:  # a body that is not what the platform documents: the status says enough
                detail = ""
        return cls(f"{message}: {detail}" if detail else f"{message}.", hint=hint, status=status)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse("The platform answered with malformed JSON.", status=response.status_code) from exc


def _safe_url(url: str) -> str:
    """The URL without its query string, which may carry credentials (WooCommerce's keys)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
