from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from . import audit


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    tenant = user.memberships.select_related("tenant").first()
    audit.record("auth.login", request=request, actor=user, tenant=tenant.tenant if tenant else None, target=user)


@receiver(user_login_failed)
def audit_failed_login(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Only the username is kept: `credentials` also holds the password, which is never stored.
    audit.record("auth.login_failed", request=request, target=credentials.get("username", ""))
