"""The API's side of tenant scoping: every tenant resource resolves its tenant here and reads
through `for_tenant()`. Another tenant's object is a 404, never a 403 that leaks its existence."""

from __future__ import annotations

from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from .models import ApiKey, Membership, Role, Tenant

WRITE_ROLES = {Role.OWNER, Role.ADMIN, Role.EDITOR}


def request_tenant(request: Request) -> Tenant | None:
    """The tenant an API request acts for: its key's tenant, or the signed-in member's current one."""
    if isinstance(request.auth, ApiKey):
        return request.auth.tenant
    return getattr(request, "tenant", None)


class HasTenantScope(permissions.BasePermission):
    """Requires a tenant and, for API keys, the view's scope (`<resource>:read` or `:write`).
    Signed-in members read everything of their tenant and write with an editor role or above."""

    def has_permission(self, request: Request, view) -> bool:
        tenant = request_tenant(request)
        if tenant is None:
            raise PermissionDenied("This account is not a member of any client.")
        write = request.method not in permissions.SAFE_METHODS
        resource = getattr(view, "scope_resource", None)
        if isinstance(request.auth, ApiKey):
            if resource is None:
                return True
            needed = f"{resource}:{'write' if write else 'read'}"
            if needed not in request.auth.scopes:
                raise PermissionDenied(f"This API key lacks the `{needed}` scope.")
            return True
        if write:
            role = Membership.objects.filter(tenant=tenant, user=request.user).values_list("role", flat=True).first()
            if role not in WRITE_ROLES:
                raise PermissionDenied("Your role in this client is read-only.")
        return True


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Base for every tenant resource in the API. Subclasses set `queryset` (for the model) and
    `scope_resource`; reads always go through `for_tenant()`."""

    permission_classes = [permissions.IsAuthenticated, HasTenantScope]
    scope_resource: str | None = None

    def get_queryset(self):
        return self.queryset.model.objects.for_tenant(request_tenant(self.request)).all()

    @property
    def tenant(self) -> Tenant | None:
        return request_tenant(self.request)


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "base_currency", "time_zone", "status"]


@api_view(["GET"])
def me(request: Request) -> Response:
    """Who is calling (Zapier's auth test): the tenant and, for a key, its name and scopes."""
    tenant = request_tenant(request)
    if tenant is None:
        raise PermissionDenied("This account is not a member of any client.")
    body = {"tenant": TenantSerializer(tenant).data}
    if isinstance(request.auth, ApiKey):
        body["api_key"] = {"name": request.auth.name, "prefix": request.auth.prefix, "scopes": request.auth.scopes}
    else:
        body["user"] = {"username": request.user.get_username()}
    return Response(body)
