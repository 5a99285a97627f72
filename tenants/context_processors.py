from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .middleware import tenants_for_user
from .models import KEY_MANAGER_ROLES, TenantStatus


def current_tenant(request: HttpRequest) -> dict:
    """The current tenant, and the user's other active tenants for the switcher (queried only
    when a page shows the switcher)."""
    tenant = getattr(request, "tenant", None)
    return {
        "current_tenant": tenant,
        # Owners and admins manage the client's API keys (the nav shows them the page).
        "manages_api_keys": getattr(tenant, "member_role", None) in KEY_MANAGER_ROLES,
        "switchable_tenants": SimpleLazyObject(
            lambda: [t for t in tenants_for_user(getattr(request, "user", None)) if t.status == TenantStatus.ACTIVE]
        ),
    }
