from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

from .audit import client_ip

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
        if cache.get(key, 0) >= MAX_FAILED_LOGINS:
            raise forms.ValidationError(
                "Too many failed sign-in attempts. Please wait 15 minutes and try again.", code="throttled"
            )
        try:
            return super().clean()
        except forms.ValidationError:
            cache.add(key, 0, LOCKOUT_SECONDS)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, LOCKOUT_SECONDS)
            raise


class ThrottledAuthenticationForm(LoginThrottle, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(LoginThrottle, AdminAuthenticationForm):
    pass
