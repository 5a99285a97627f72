from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from .middleware import SESSION_KEY
from .models import Tenant, TenantStatus


def tenant_required(view: Callable) -> Callable:
    """A client page: signed in, with a current tenant. Staff without one go to the admin."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if getattr(request, "tenant", None) is None:
            if request.user.is_staff:
                return redirect("admin:index")
            return HttpResponseForbidden("Your account is not a member of any client.")
        return view(request, *args, **kwargs)

    return wrapper


@require_POST
@login_required
def switch_tenant(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = get_object_or_404(Tenant, slug=slug, status=TenantStatus.ACTIVE, memberships__user=request.user)
    request.session[SESSION_KEY] = tenant.pk
    return redirect("dashboard:home")
