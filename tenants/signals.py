from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from . import audit
from .middleware import resolve_tenant


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The tenant the user lands in: the middleware's choice for this session.
    tenant, _refused = resolve_tenant(user, getattr(request, "session", None))
    audit.record("auth.login", request=request, actor=user, tenant=tenant, target=user)


@receiver(user_login_failed)
def audit_failed_login(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Only the username is kept: `credentials` also holds the password, which is never stored.
    audit.record("auth.login_failed", request=request, target=credentials.get("username", ""))
