from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import audit, usage
from .api import member_role
from .middleware import SESSION_KEY
from .models import KEY_MANAGER_ROLES, ApiKey, ApiKeyScope, Tenant, TenantStatus, default_scopes


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


# --- API keys (client dashboard) ------------------------------------------------------------------

KEY_MANAGERS_ONLY = "Only the client's owners and admins manage API keys."


def key_manager_required(view: Callable) -> Callable:
    """A client page for owners and admins only."""

    @tenant_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if member_role(request, request.tenant) not in KEY_MANAGER_ROLES:
            return HttpResponseForbidden(KEY_MANAGERS_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


class NewKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “Zapier” or “warehouse sync”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=default_scopes
    )


@key_manager_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """The client's keys with their last 30 days of use, and the form for a new key. A new key is
    shown once, on the page that answers the form (never in a message, the session or a cookie)."""
    form = NewKeyForm(request.POST or None)
    new_key = raw_key = None
    if request.method == "POST" and form.is_valid():
        new_key, raw_key = ApiKey.generate(
            request.tenant, form.cleaned_data["name"], form.cleaned_data["scopes"], created_by=request.user
        )
        audit.record("api_key.created", request=request, tenant=request.tenant, target=new_key, scopes=new_key.scopes)
        form = NewKeyForm()
    usage.drain()
    keys = list(ApiKey.objects.for_tenant(request.tenant).select_related("created_by"))
    totals = usage.totals_by_key(request.tenant, keys)
    context = {
        "rows": [(key, totals.get(key.pk)) for key in keys],
        "form": form,
        "new_key": new_key,
        "raw_key": raw_key,
        "days": usage.USAGE_DAYS,
    }
    response = render(request, "dashboard/api_keys.html", context, status=400 if form.errors else 200)
    if raw_key:
        response["Cache-Control"] = "no-store"
    return response


@key_manager_required
def api_key_detail(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.for_tenant(request.tenant).select_related("created_by"), pk=pk)
    usage.drain()
    return render(request, "dashboard/api_key_detail.html", {"key": key, "usage": usage.key_summary(key)})


@require_POST
@key_manager_required
def revoke_api_key(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.for_tenant(request.tenant), pk=pk)
    if not key.is_revoked:
        key.revoke()
        audit.record("api_key.revoked", request=request, tenant=request.tenant, target=key)
        messages.success(request, f"The key “{key.name}” ({key.prefix}…) is revoked: it no longer works.")
    return redirect("api_keys:list")
