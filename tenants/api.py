"""The API's side of tenant scoping: every tenant resource resolves its tenant here and reads
through `for_tenant()`. Another tenant's object is a 404, never a 403 that leaks its existence.

Also here: the mixin every API view of ours derives from (throttle first, count usage), `/me`, and
the tenant's own API keys (`/api-keys`)."""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import audit, usage
from .models import KEY_MANAGER_ROLES, ApiKey, ApiKeyScope, Membership, Role, Tenant

WRITE_ROLES = {Role.OWNER, Role.ADMIN, Role.EDITOR}


def request_tenant(request: Request) -> Tenant | None:
    """The tenant an API request acts for: its key's tenant, or the signed-in member's current one."""
    if isinstance(request.auth, ApiKey):
        return request.auth.tenant
    return getattr(request, "tenant", None)


def member_role(request: Request, tenant: Tenant) -> str | None:
    """The signed-in user's role in `tenant`: the middleware's, or one query when it has none."""
    role = getattr(tenant, "member_role", None)
    if role is not None:
        return role
    return Membership.objects.for_tenant(tenant).filter(user=request.user).values_list("role", flat=True).first()


class MissingScope(PermissionDenied):
    """A 403 (code `permission_denied`) whose details name the scope the key lacks."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key lacks the `{scope}` scope.")
        self.error_details = {"required_scope": scope}


class MeteredMixin:
    """For every view of the API. Throttles run before the permission checks, so a refused
    request counts against the caller's rate and carries the rate headers too; a method the view
    does not have is a 405 whatever the caller's scopes; each response is counted in the calling
    key's usage."""

    def check_permissions(self, request: Request) -> None:
        self.check_throttles(request)
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method)
        super().check_permissions(request)

    def check_throttles(self, request: Request) -> None:
        if getattr(self, "_throttles_checked", False):
            return
        self._throttles_checked = True
        super().check_throttles(request)

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        usage.record_response(request, response)
        return response


class HasTenantScope(permissions.BasePermission):
    """Requires a tenant and, for API keys, the view's scope (`<resource>:read` or `:write`).
    Signed-in members read everything of their tenant and write with an editor role or above;
    a view with `member_roles` admits only those roles, reading or writing."""

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
                raise MissingScope(needed)
            return True
        roles = getattr(view, "member_roles", None)
        if roles is None and write:
            roles = WRITE_ROLES
        if roles is not None and member_role(request, tenant) not in roles:
            raise PermissionDenied(getattr(view, "member_roles_message", "Your role in this client is read-only."))
        return True


class TenantScopedViewSet(MeteredMixin, viewsets.GenericViewSet):
    """Base for every tenant resource in the API. Subclasses set `queryset` (for the model) and
    `scope_resource`; reads always go through `for_tenant()`. `ordering` is the default order of a
    list and `ordering_fields` the fields a caller may order it by (`?ordering=-field`)."""

    permission_classes = [permissions.IsAuthenticated, HasTenantScope]
    scope_resource: str | None = None
    ordering_fields: tuple[str, ...] = ()

    def get_queryset(self):
        return self.queryset.model.objects.for_tenant(request_tenant(self.request)).all()

    @property
    def tenant(self) -> Tenant | None:
        return request_tenant(self.request)


# --- Query parameters ------------------------------------------------------------------------------


def parse_timestamp(value: str, param: str = "updated_since") -> datetime.datetime:
    """An ISO 8601 date-time from a query parameter; a naive one is taken as UTC."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({param: "Use an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."})
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, datetime.UTC)
    try:
        # In UTC: Python takes offsets up to ±24 h, PostgreSQL refuses those beyond ±15:59.
        return moment.astimezone(datetime.UTC)
    except OverflowError:  # the offset moves it out of years 1-9999
        raise ValidationError({param: "Use an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."}) from None


def choice_param(params, name: str, choices) -> str | None:
    """A query parameter that must be one of `choices` (absent or empty: None)."""
    value = params.get(name)
    if not value:
        return None
    if value not in choices:
        raise ValidationError({name: f"Use one of: {', '.join(choices)}."})
    return value


UPDATED_SINCE = OpenApiParameter(
    "updated_since", OpenApiTypes.DATETIME, description="Only rows changed at or after this ISO 8601 date-time."
)


# --- Who am I --------------------------------------------------------------------------------------


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "base_currency", "time_zone", "status"]


class MeView(MeteredMixin, APIView):
    """Who is calling (Zapier's auth test): the tenant and, for a key, its name and scopes."""

    @extend_schema(
        operation_id="me",
        tags=["account"],
        responses=inline_serializer(
            "Me",
            {
                "tenant": TenantSerializer(),
                "api_key": inline_serializer(
                    "MeApiKey",
                    {
                        "name": serializers.CharField(),
                        "prefix": serializers.CharField(),
                        "scopes": serializers.ListField(child=serializers.CharField()),
                        "tier": serializers.CharField(),
                    },
                    required=False,
                ),
                "user": inline_serializer("MeUser", {"username": serializers.CharField()}, required=False),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        if tenant is None:
            raise PermissionDenied("This account is not a member of any client.")
        body = {"tenant": TenantSerializer(tenant).data}
        if isinstance(request.auth, ApiKey):
            key = request.auth
            body["api_key"] = {"name": key.name, "prefix": key.prefix, "scopes": key.scopes, "tier": key.tier}
        else:
            body["user"] = {"username": request.user.get_username()}
        return Response(body)


me = MeView.as_view()


# --- API keys --------------------------------------------------------------------------------------

KEY_STATES = ("active", "revoked")


class UsageTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True, help_text="Per cent of requests answered 4xx or 5xx.")


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as its tenant sees it: the visible prefix, never the hash or the secret."""

    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), required=False)
    state = serializers.SerializerMethodField()
    usage_30_days = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "tier",
            "state",
            "created_at",
            "last_used_at",
            "revoked_at",
            "usage_30_days",
        ]
        read_only_fields = ["id", "prefix", "tier", "state", "created_at", "last_used_at", "revoked_at"]

    def get_state(self, key: ApiKey) -> str:
        return "revoked" if key.is_revoked else "active"

    @extend_schema_field(UsageTotalsSerializer)
    def get_usage_30_days(self, key: ApiKey) -> dict:
        return self.context.get("usage", {}).get(key.pk, {"requests": 0, "errors": 0, "error_rate": None})

    def validate_scopes(self, scopes: list[str]) -> list[str]:
        scopes = list(dict.fromkeys(scopes))
        caller = self.context["request"].auth
        if isinstance(caller, ApiKey):
            beyond = [s for s in scopes if s not in caller.scopes]
            if beyond:
                raise serializers.ValidationError(f"A key grants only scopes it has itself, not {', '.join(beyond)}.")
        return scopes


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown once: only its hash is stored.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)


class UsageEndpointSerializer(serializers.Serializer):
    method = serializers.CharField()
    endpoint = serializers.CharField(help_text="The route, e.g. /api/v1/orders/{pk}.")
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)


class KeyUsageSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    days = UsageDaySerializer(many=True)
    endpoints = UsageEndpointSerializer(many=True)


@extend_schema(tags=["api keys"])
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's API keys: list (prefix only), create (the key is shown once), revoke, usage.
    Keys need `keys:read` / `keys:write`; signed-in members need the owner or admin role."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    scope_resource = "keys"
    member_roles = KEY_MANAGER_ROLES
    member_roles_message = "Only the client's owners and admins manage API keys."
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "name", "id")

    def filter_queryset(self, queryset):
        if self.action == "list":
            state = choice_param(self.request.query_params, "status", KEY_STATES)
            if state is not None:
                queryset = queryset.filter(revoked_at__isnull=state == "active")
        return queryset

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "usage": getattr(self, "_usage", {})}

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=KEY_STATES, description="Active or revoked.")]
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        self._usage = usage.totals_by_key(self.tenant, page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        self._usage = usage.totals_by_key(self.tenant, [key])
        return Response(self.get_serializer(key).data)

    @extend_schema(request=ApiKeySerializer, responses={201: NewApiKeySerializer})
    def create(self, request: Request) -> Response:
        body = ApiKeySerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        scopes = body.validated_data.get("scopes")
        created_by = request.user if getattr(request.user, "pk", None) else None
        key, raw_key = ApiKey.generate(self.tenant, body.validated_data["name"], scopes, created_by=created_by)
        audit.record("api_key.created", request=request, tenant=self.tenant, target=key, scopes=key.scopes)
        data = NewApiKeySerializer(key, context=self.get_serializer_context()).data
        data["key"] = raw_key
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = self._revoke()
        return Response(self.get_serializer(key).data)

    @extend_schema(responses={204: None}, description="Revokes the key (keys are never deleted).")
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        self._revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _revoke(self) -> ApiKey:
        key = self.get_object()
        if not key.is_revoked:
            key.revoke()
            audit.record("api_key.revoked", request=self.request, tenant=self.tenant, target=key)
        return key

    @extend_schema(responses=KeyUsageSerializer)
    @action(detail=True, methods=["get"], url_path="usage")
    def usage_summary(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        usage.drain()
        return Response(KeyUsageSerializer(usage.key_summary(key)).data)
