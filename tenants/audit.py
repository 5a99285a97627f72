"""One helper to write the audit log, so every caller records the same fields."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import AuditLog, Tenant


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # Behind the reverse proxy, config/gunicorn.conf.py sets REMOTE_ADDR from X-Real-IP (which nginx
    # overwrites) only for requests from a trusted proxy (FORWARDED_ALLOW_IPS); the raw header of
    # any other peer is never trusted.
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    tenant: Tenant | None = None,
    target: Any = "",
    **details: Any,
) -> AuditLog:
    """Write one audit entry. `actor` defaults to the request's API key, else its user."""
    if actor is None and request is not None:
        actor = getattr(request, "auth", None) or getattr(request, "user", None)
    user, label = _describe(actor)
    return AuditLog.objects.create(
        actor=user,
        actor_label=label[:200],
        tenant=tenant,
        action=action,
        target=str(target)[:200],
        ip_address=client_ip(request),
        details=details,
    )


def _describe(actor: Any) -> tuple[Any, str]:
    if actor is None or not getattr(actor, "is_authenticated", True):
        return None, ""
    if hasattr(actor, "get_username"):
        return actor, actor.get_username()
    return None, str(actor)
