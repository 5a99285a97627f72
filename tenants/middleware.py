"""The request-bound current tenant.

`request.tenant` is the tenant a signed-in client user is working in (their membership's tenant;
with several, the one picked with the switcher and kept in the session). Staff without a
membership have none. A user whose tenants are all suspended is signed out and refused.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .models import Membership, Tenant, TenantStatus

SESSION_KEY = "current_tenant_id"
SUSPENDED_MESSAGE = "Your company's account is suspended, so you have been signed out."


def tenants_for_user(user) -> list[Tenant]:
    """The user's tenants, each carrying the user's role in it as `member_role`."""
    if not getattr(user, "is_authenticated", False):
        return []
    tenants = []
    for membership in Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name"):
        membership.tenant.member_role = membership.role
        tenants.append(membership.tenant)
    return tenants


def resolve_tenant(user, session) -> tuple[Tenant | None, bool]:
    """Return (tenant, refused): refused is true when the user belongs only to suspended tenants."""
    tenants = tenants_for_user(user)
    if not tenants:
        return None, False
    active = [t for t in tenants if t.status == TenantStatus.ACTIVE]
    if not active:
        return None, True
    wanted = session.get(SESSION_KEY) if session is not None else None
    for tenant in active:
        if tenant.pk == wanted:
            return tenant, False
    return active[0], False


class CurrentTenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant, refused = resolve_tenant(request.user, request.session)
        if refused and not request.user.is_staff:
            logout(request)
            if request.path.startswith("/api/"):
                body = {"error": {"code": "account_suspended", "message": SUSPENDED_MESSAGE, "details": {}}}
                return JsonResponse(body, status=403)
            return render(request, "tenants/suspended.html", {"message": SUSPENDED_MESSAGE}, status=403)
        return self.get_response(request)
