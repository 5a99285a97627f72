from __future__ import annotations

import logging

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

from .audit import client_ip

logger = logging.getLogger(__name__)

# Failed sign-ins allowed per address and username before a cool-down.
MAX_FAILED_LOGINS = 10
LOCKOUT_SECONDS = 15 * 60


class LoginThrottle:
    """Mixin for sign-in forms that slows password guessing: after MAX_FAILED_LOGINS failures for one address and
    username, further attempts are refused for LOCKOUT_SECONDS without checking the password."""

    def _key(self) -> str:
        username = (self.data.get("username") or "").strip().lower()
        return f"login-failures:{client_ip(self.request)}:{username}"

    def clean(self):
        key = self._key()
        if _failures(key) >= MAX_FAILED_LOGINS:
            raise forms.ValidationError(
                "Too many failed sign-in attempts. Please wait 15 minutes and try again.", code="throttled"
            )
        try:
            return super().clean()
        except forms.ValidationError:
            _count_failure(key)
            raise


def _failures(key: str) -> int:
    """Failed sign-ins counted under `key`. They are kept in the cache: while it is out of reach,
    sign-in works without the cool-down rather than not at all."""
    try:
        return cache.get(key, 0)
    except Exception:
        logger.warning("Cache unavailable; sign-in attempts not limited", exc_info=True)
        return 0


def _count_failure(key: str) -> None:
    try:
        cache.add(key, 0, LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, LOCKOUT_SECONDS)
    except Exception:
        logger.warning("Cache unavailable; a failed sign-in not counted", exc_info=True)


class ThrottledAuthenticationForm(LoginThrottle, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(LoginThrottle, AdminAuthenticationForm):
    pass
