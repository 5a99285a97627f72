"""The two ends of a Connect: `start` sends the browser to the platform's consent page, `callback`
takes the platform's answer, stores the credentials it brings and tests the connection.

Only staff, or a member of the connection's tenant (through their current tenant, the dashboard's
scoping path), may start or finish a Connect for a connection; anyone else gets a 404.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache

from tenants import audit
from tenants.models import Role

from ..errors import BadResponse, IntegrationError
from ..models import Connection
from ..services import test_connection
from . import state as states
from .providers import PROVIDERS, get_provider

logger = logging.getLogger(__name__)
ADMIN, DASHBOARD = "admin", "dashboard"
# Members who may connect a platform (change its credentials); viewers only look.
CONNECT_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.EDITOR})
MAX_ERROR_TEXT = 300


def _is_superadmin(request: HttpRequest) -> bool:
    return request.user.is_staff and request.user.has_perm("integrations.change_connection")


def _connection_for(request: HttpRequest, **lookup) -> Connection:
    connections = Connection.objects.select_related("tenant")
    if _is_superadmin(request):
        return get_object_or_404(connections, **lookup)
    tenant = getattr(request, "tenant", None)
    connection = get_object_or_404(connections.for_tenant(tenant), **lookup)
    if getattr(tenant, "member_role", None) not in CONNECT_ROLES:
        raise PermissionDenied("Viewers cannot connect platforms: ask an owner, admin or editor of the account.")
    return connection


def callback_url(request: HttpRequest, platform: str) -> str:
    """The redirect URL, as registered in the platform's portal: PUBLIC_BASE_URL when set, since
    behind a proxy the request's own idea of its scheme and host may differ."""
    path = reverse("oauth:callback", kwargs={"platform": platform})
    return settings.PUBLIC_BASE_URL + path if settings.PUBLIC_BASE_URL else request.build_absolute_uri(path)


def provider_for(connection: Connection):
    return get_provider(connection.platform, base_url=connection.base_url)


def _back(request: HttpRequest, connection: Connection | None, back: str | None) -> tuple[str, str]:
    """Where the result page links back to, and the link's words."""
    if back is None:
        back = ADMIN if _is_superadmin(request) else DASHBOARD
    if back == ADMIN:
        if connection is None:
            return reverse("admin:integrations_connection_changelist"), "Back to connections"
        return reverse("admin:integrations_connection_change", args=[connection.pk]), f"Back to {connection.name}"
    return reverse("integrations:list"), "Back to integrations"


def _page(
    request: HttpRequest,
    *,
    title: str,
    ok: bool,
    message: str,
    hint: str = "",
    connection: Connection | None = None,
    back: str | None = None,
    check=None,
    status: int = 200,
) -> HttpResponse:
    back_url, back_label = _back(request, connection, back)
    in_admin = back_url.startswith(reverse("admin:index"))
    context = {
        **(admin.site.each_context(request) if in_admin else {}),
        "base_template": "admin/base_site.html" if in_admin else "base.html",
        "in_admin": in_admin,
        "title": title,
        "ok": ok,
        "message": message,
        "hint": hint,
        "connection": connection,
        "check": check,
        "back_url": back_url,
        "back_label": back_label,
    }
    response = TemplateResponse(request, "integrations/oauth_result.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
def start(request: HttpRequest, platform: str) -> HttpResponse:
    if platform not in PROVIDERS:
        raise Http404
    try:
        connection_uuid = uuid.UUID(request.GET.get("connection", ""))
    except ValueError as exc:
        raise Http404 from exc
    connection = _connection_for(request, uuid=connection_uuid, platform=platform)
    from_dashboard = request.GET.get("from") == DASHBOARD and connection.tenant_id == getattr(
        request.tenant, "pk", None
    )
    back = ADMIN if _is_superadmin(request) and not from_dashboard else DASHBOARD
    flow = states.new_flow(request, connection=connection, redirect_uri=callback_url(request, platform), back=back)
    try:
        url = provider_for(connection).authorize_url(
            credentials=dict(connection.credentials or {}), state=flow.state, redirect_uri=flow.redirect_uri
        )
    except IntegrationError as error:
        return _page(
            request,
            title="Connect could not start",
            ok=False,
            message=error.message,
            hint=error.hint,
            connection=connection,
            back=back,
            status=400,
        )
    states.remember(request, flow)
    logger.info("OAuth connect of connection %s (%s) started", connection.pk, platform)
    return HttpResponseRedirect(url)


@never_cache
@login_required
def callback(request: HttpRequest, platform: str) -> HttpResponse:
    if platform not in PROVIDERS:
        raise Http404
    params = {key: request.GET.get(key, "") for key in request.GET}
    try:
        flow = states.take(request, params.get("state", ""), platform)
    except states.StateError as error:
        logger.info("OAuth callback for %s refused: %s", platform, error.message)
        return _page(request, title="Connect failed", ok=False, message=error.message, status=400)
    connection = _connection_for(request, pk=flow.connection_id, tenant_id=flow.tenant_id, platform=platform)
    page = {"connection": connection, "back": flow.back}

    if params.get("error"):
        reason = params.get("error_description") or params["error"]
        audit.record("connection.oauth_declined", request=request, tenant=connection.tenant, target=connection)
        return _page(
            request,
            title="Connect cancelled",
            ok=False,
            message=f"{connection.get_platform_display()} did not grant access: {reason[:MAX_ERROR_TEXT]}",
            hint="Nothing was changed. Start Connect again and approve the app to connect it.",
            **page,
        )

    provider = provider_for(connection)
    credentials = dict(connection.credentials or {})
    stage = "verify"
    try:
        if hasattr(provider, "verify_callback"):
            provider.verify_callback(credentials=credentials, params=params)
        stage = "exchange"
        updates = provider.exchange(credentials=credentials, params=params, redirect_uri=flow.redirect_uri)
        if not isinstance(updates, dict) or not updates:
            raise BadResponse(f"{connection.get_platform_display()} gave no credentials to store.")
    except IntegrationError as error:
        logger.info("OAuth connect of connection %s (%s) failed at %s: %s", connection.pk, platform, stage, error.code)
        audit.record(
            "connection.oauth_failed",
            request=request,
            tenant=connection.tenant,
            target=connection,
            stage=stage,
            error_code=error.code,
        )
        return _page(
            request,
            title="Connect failed",
            ok=False,
            message=error.message,
            hint=error.hint or "Nothing was changed: the connection keeps its previous credentials.",
            status=400 if stage == "verify" else 502,
            **page,
        )

    connection = _store(connection, updates)
    audit.record(
        "connection.oauth_connected",
        request=request,
        tenant=connection.tenant,
        target=connection,
        fields=sorted(updates),
    )
    logger.info("OAuth connect of connection %s (%s) stored %s", connection.pk, platform, ", ".join(sorted(updates)))
    result = test_connection(connection, request=request)
    label = connection.get_platform_display()
    if result.ok:
        message = f"{connection.name} is connected to {label} and its test passed."
    else:
        message = f"The access {label} granted is stored, but the connection test failed: {result.message}"
    return _page(
        request,
        title="Connected" if result.ok else "Connected, but the test failed",
        ok=result.ok,
        message=message,
        hint=result.hint,
        check=result,
        **page,
    )


def _store(connection: Connection, updates: dict) -> Connection:
    """Merge the updates into the stored credentials (read under a row lock, so a token a sync
    refreshed meanwhile is not overwritten by this request's older copy); None removes a key."""
    with transaction.atomic():
        fresh = Connection.objects.select_for_update().get(pk=connection.pk)
        fresh.tenant = connection.tenant
        credentials = dict(fresh.credentials or {})
        for name, value in updates.items():
            if value is None:
                credentials.pop(name, None)
            else:
                credentials[name] = value
        fresh.credentials = credentials
        fresh.save(update_fields=["credentials", "updated_at"])
    return fresh
