"""Rate limits for the API: requests per hour per API key (by its tier), per signed-in user, and per
address for anonymous callers.

Fixed one-hour windows (aligned to the clock hour) counted with one increment in the cache (one
round trip on Redis, `tenants.counters`), so every process shares the count when the cache is
Redis. A fixed window is one counter per caller, where DRF's own throttles keep a list of
timestamps and rewrite it on every request; the price is that a caller may spend one window's
allowance at its end and the next at the start of the next.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from .audit import client_ip
from .counters import increment
from .models import AdminApiKey, ApiKey, ApiKeyTier

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class RateLimit:
    limit: int
    used: int  # requests counted in this window, this one included
    reset_at: int  # Unix time the window ends

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def caller(request: Request) -> tuple[str, int]:
    """Who is counted, and their hourly limit. Everything needed is already on the request."""
    auth = request.auth
    if isinstance(auth, ApiKey):
        rate = settings.API_RATE_PREMIUM if auth.tier == ApiKeyTier.PREMIUM else settings.API_RATE_DEFAULT
        return f"key:{auth.pk}", rate
    if isinstance(auth, AdminApiKey):
        return f"adminkey:{auth.pk}", settings.API_RATE_PREMIUM
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}", settings.API_RATE_DEFAULT
    return f"ip:{client_ip(request)}", settings.API_RATE_DEFAULT


def hit(ident: str, limit: int, now: float) -> RateLimit:
    """Count one request of `ident` in the window `now` falls in."""
    window = int(now // WINDOW_SECONDS)
    reset_at = (window + 1) * WINDOW_SECONDS
    used, _ = increment(f"ratelimit:{ident}:{window}", reset_at - int(now) + 5)
    return RateLimit(limit=limit, used=used, reset_at=reset_at)


class ApiRateThrottle(BaseThrottle):
    """The DRF throttle. It puts the `X-RateLimit-*` headers on the view's `headers`, which DRF
    copies onto whatever response the view ends with, a refusal included."""

    def __init__(self) -> None:
        self.wait_seconds = 0

    def allow_request(self, request: Request, view) -> bool:
        now = time.time()
        try:
            state = hit(*caller(request), now)
        except Exception:
            # The counters live in the cache. While it is out of reach the API answers unmetered
            # (and without the headers it cannot fill in) rather than not at all.
            logger.warning("Cache unavailable; API request not rate-limited", exc_info=True)
            return True
        view.headers.update(state.headers)
        if state.allowed:
            return True
        self.wait_seconds = max(1, math.ceil(state.reset_at - now))
        return False

    def wait(self) -> float:
        return self.wait_seconds
