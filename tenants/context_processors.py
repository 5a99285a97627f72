from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .middleware import tenants_for_user
from .models import TenantStatus


def current_tenant(request: HttpRequest) -> dict:
    """The current tenant, and the user's other active tenants for the switcher (queried only
    when a page shows the switcher)."""
    return {
        "current_tenant": getattr(request, "tenant", None),
        "switchable_tenants": SimpleLazyObject(
            lambda: [t for t in tenants_for_user(getattr(request, "user", None)) if t.status == TenantStatus.ACTIVE]
        ),
    }
