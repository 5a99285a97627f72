"""The admin API (`/api/v1/admin/`): what a superadmin does for clients, by script.

Callers are superusers: signed in (staff session) or with an admin API key (`AdminApiKey`, issued
in the admin; it acts as its user). A client's key is refused with 403. Every call is audited.
It lives in `config` because it spans the apps: tenants, integrations and the overview.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.text import slugify
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.connectors import CONNECTORS, get_connector
from integrations.connectors.base import CheckResult
from integrations.errors import IntegrationError
from integrations.models import Connection
from integrations.platforms import CATALOGUE
from integrations.serializers import (
    CheckResultSerializer,
    ConnectionSerializer,
    PlatformSerializer,
    clean_credentials,
)
from integrations.services import connection_stats, test_connection
from tenants import audit
from tenants.api import MeteredMixin, NewApiKeySerializer
from tenants.authentication import AdminApiKeyAuthentication, ApiKeyAuthentication
from tenants.models import ApiKey, ApiKeyScope, ApiKeyTier, Membership, Role, Tenant

from .overview import overview_context

User = get_user_model()
BULK_TEST_LIMIT = 25


class IsSuperadmin(permissions.BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_superuser):
            raise PermissionDenied("The admin API is for superadmins: sign in as one or use an admin API key.")
        return True


class AdminApiView(MeteredMixin, APIView):
    authentication_classes = [AdminApiKeyAuthentication, ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [permissions.IsAuthenticated, IsSuperadmin]


# --- Create a client ---------------------------------------------------------------------------------


class NewTenantSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=60, required=False, help_text="From the name when left out.")

    class Meta:
        model = Tenant
        fields = ["name", "slug", "contact_email", "base_currency", "time_zone"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("slug", slugify(attrs["name"])[:60])
        if Tenant.objects.filter(slug=attrs["slug"]).exists():
            raise serializers.ValidationError({"slug": "A client with this slug exists already."})
        tenant = Tenant(**attrs)
        try:
            tenant.full_clean(validate_unique=False)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from error
        return attrs


class OwnerSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="The owner's login.")
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate_email(self, value: str) -> str:
        email = User.objects.normalize_email(value).lower()
        if User.objects.filter(username__iexact=email).exists() or User.objects.filter(email__iexact=email).exists():
            raise serializers.ValidationError("A user with this email already exists.")
        return email

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(username=attrs["email"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)}) from error
        return attrs


class FirstKeySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), required=False)
    tier = serializers.ChoiceField(choices=ApiKeyTier.choices, default=ApiKeyTier.DEFAULT)


class CreateClientSerializer(serializers.Serializer):
    tenant = NewTenantSerializer()
    owner = OwnerSerializer()
    api_key = FirstKeySerializer(required=False, help_text="Issue the client's first API key, shown once.")
    connection = ConnectionSerializer(required=False, help_text="Add the client's first connection.")
    test_connection = serializers.BooleanField(default=False, help_text="Test the new connection straight away.")


class CreatedClientSerializer(serializers.Serializer):
    tenant = inline_serializer(
        "CreatedTenant",
        {
            "id": serializers.IntegerField(),
            "name": serializers.CharField(),
            "slug": serializers.CharField(),
            "contact_email": serializers.EmailField(),
            "base_currency": serializers.CharField(),
            "time_zone": serializers.CharField(),
        },
    )
    owner = inline_serializer("CreatedOwner", {"username": serializers.CharField(), "email": serializers.EmailField()})
    api_key = NewApiKeySerializer(allow_null=True)
    connection = ConnectionSerializer(allow_null=True)
    test = CheckResultSerializer(allow_null=True)


class ClientsView(AdminApiView):
    """Create a client in one call: the tenant, its owner login, and optionally its first API key and
    its first connection (credentials checked against the catalogue, optionally tested). All or nothing."""

    @extend_schema(
        operation_id="admin_create_client",
        tags=["admin"],
        request=CreateClientSerializer,
        responses={201: CreatedClientSerializer},
    )
    def post(self, request: Request) -> Response:
        body = CreateClientSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        raw_key, key, connection = None, None, None
        with transaction.atomic():
            tenant = Tenant.objects.create(**data["tenant"])
            owner = data["owner"]
            user = User.objects.create_user(username=owner["email"], email=owner["email"], password=owner["password"])
            Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
            audit.record("tenant.created", request=request, tenant=tenant, target=tenant, owner=user.username)
            if "api_key" in data:
                wanted = data["api_key"]
                key, raw_key = ApiKey.generate(
                    tenant, wanted["name"], wanted.get("scopes"), created_by=request.user, tier=wanted["tier"]
                )
                audit.record("api_key.created", request=request, tenant=tenant, target=key, scopes=key.scopes)
            if "connection" in data:
                connection = Connection.objects.create(tenant=tenant, **data["connection"])
                audit.record(
                    "connection.created",
                    request=request,
                    tenant=tenant,
                    target=connection,
                    platform=connection.platform,
                    fields=sorted(connection.credentials or {}),
                )
        result = None
        if connection is not None and data["test_connection"]:
            result = test_connection(connection, request=request).as_dict()
        response = {
            "tenant": {
                "id": tenant.pk,
                **{name: getattr(tenant, name) for name in NewTenantSerializer.Meta.fields},
            },
            "owner": {"username": user.username, "email": user.email},
            "api_key": None,
            "connection": None,
            "test": result,
        }
        if key is not None:
            response["api_key"] = {**NewApiKeySerializer(key, context={"request": request}).data, "key": raw_key}
        if connection is not None:
            stats = connection_stats([connection])
            response["connection"] = ConnectionSerializer(connection, context={"stats": stats}).data
        return Response(response, status=status.HTTP_201_CREATED)


# --- Platforms and credential tests ------------------------------------------------------------------


class AdminPlatformSerializer(PlatformSerializer):
    testable = serializers.BooleanField(help_text="Has a connector: connections can be tested and synced.")


class PlatformsView(AdminApiView):
    @extend_schema(
        operation_id="admin_list_platforms",
        tags=["admin"],
        responses=inline_serializer("AdminPlatformList", {"results": AdminPlatformSerializer(many=True)}),
    )
    def get(self, request: Request) -> Response:
        """The platform catalogue, with which platforms can be tested and synced."""
        audit.record("admin_api.platforms_listed", request=request)
        results = [{**spec.as_dict(), "testable": name in CONNECTORS} for name, spec in CATALOGUE.items()]
        return Response({"results": results})


class CredentialTestSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=[(p, spec.label) for p, spec in CATALOGUE.items()])
    credentials = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text="Never stored.")
    base_url = serializers.URLField(required=False, allow_blank=True, help_text="Sandbox or test server address.")

    def validate_base_url(self, value: str) -> str:
        return ConnectionSerializer().validate_base_url(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["credentials"], _ = clean_credentials(CATALOGUE[attrs["platform"]], attrs["credentials"])
        return attrs


class CredentialTestView(AdminApiView):
    @extend_schema(
        operation_id="admin_test_credentials",
        tags=["admin"],
        request=CredentialTestSerializer,
        responses=CheckResultSerializer,
    )
    def post(self, request: Request) -> Response:
        """Test a set of credentials without saving them: the connector's check runs on a connection
        that is never saved, and the answer never repeats a credential."""
        body = CredentialTestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        unsaved = Connection(
            platform=data["platform"],
            name="Credential test",
            credentials=data["credentials"],
            base_url=data.get("base_url", ""),
        )
        result = check_unsaved(unsaved)
        audit.record(
            "admin_api.credentials_tested",
            request=request,
            platform=unsaved.platform,
            fields=sorted(data["credentials"]),
            ok=result.ok,
            error_code=result.error_code,
        )
        return Response(result.as_dict())


def check_unsaved(connection: Connection) -> CheckResult:
    if connection.platform not in CONNECTORS:
        return CheckResult(
            ok=False,
            message=f"{connection.get_platform_display()} connections cannot be tested yet.",
            error_code="not_testable",
        )
    try:
        return get_connector(connection).check()
    except IntegrationError as error:
        return CheckResult.failure(error)


# --- Bulk tests --------------------------------------------------------------------------------------


class BulkTestSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=BULK_TEST_LIMIT, help_text="Connection ids."
    )
    tenant = serializers.SlugField(required=False, help_text="Or every enabled connection of this client (slug).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("ids")) == bool(attrs.get("tenant")):
            raise serializers.ValidationError("Send either `ids` or `tenant`.")
        if attrs.get("tenant"):
            tenant = Tenant.objects.filter(slug=attrs["tenant"]).first()
            if tenant is None:
                raise serializers.ValidationError({"tenant": "No client has this slug."})
            connections = list(
                Connection.objects.for_tenant(tenant).select_related("tenant").filter(enabled=True).order_by("pk")
            )
        else:
            ids = list(dict.fromkeys(attrs["ids"]))
            found = {c.pk: c for c in Connection.objects.select_related("tenant").filter(pk__in=ids)}
            missing = [pk for pk in ids if pk not in found]
            if missing:
                raise serializers.ValidationError({"ids": f"No connection has the id(s) {missing}."})
            connections = [found[pk] for pk in ids]
        if len(connections) > BULK_TEST_LIMIT:
            raise serializers.ValidationError(
                f"That is {len(connections)} connections; test at most {BULK_TEST_LIMIT} per call "
                "(or run `manage.py test_connections`)."
            )
        attrs["connections"] = connections
        return attrs


class BulkTestResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tenant = serializers.CharField(help_text="The client's slug.")
    platform = serializers.CharField()
    status = serializers.CharField(help_text="The connection's status after the test.")
    result = CheckResultSerializer()


class BulkTestView(AdminApiView):
    @extend_schema(
        operation_id="admin_test_connections",
        tags=["admin"],
        request=BulkTestSerializer,
        responses=inline_serializer(
            "BulkTestResults",
            {
                "tested": serializers.IntegerField(),
                "failed": serializers.IntegerField(),
                "results": BulkTestResultSerializer(many=True),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        """Test saved connections (by id, or every enabled one of a client) one after another, and
        record each result on its connection, as the admin's Test connection button does."""
        body = BulkTestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        results = []
        for connection in body.validated_data["connections"]:
            result = test_connection(connection, request=request)
            results.append(
                {
                    "id": connection.pk,
                    "name": connection.name,
                    "tenant": connection.tenant.slug,
                    "platform": connection.platform,
                    "status": connection.status,
                    "result": result.as_dict(),
                }
            )
        failed = sum(1 for row in results if not row["result"]["ok"])
        audit.record(
            "admin_api.connections_tested",
            request=request,
            connections=[row["id"] for row in results],
            failed=failed,
        )
        return Response({"tested": len(results), "failed": failed, "results": results})


# --- Overview ----------------------------------------------------------------------------------------


# The admin page's rows carry HTML (status badges, progress bars) the API leaves out.
HTML_KEYS = {"badge", "progress"}


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in HTML_KEYS}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class OverviewView(AdminApiView):
    @extend_schema(
        operation_id="admin_overview",
        tags=["admin"],
        responses=inline_serializer(
            "AdminOverview",
            {
                "tenants": serializers.DictField(help_text="total, active, suspended, demo (and admin links)."),
                "connections": serializers.DictField(help_text="total and count by status."),
                "sync": serializers.DictField(help_text="Succeeded/failed runs over 24 h and 7 days; running; queued."),
                "failing_connections": serializers.ListField(child=serializers.DictField()),
                "in_progress": serializers.ListField(child=serializers.DictField()),
                "quarantine": serializers.DictField(help_text="open: quarantined records not yet resolved."),
                "audit": serializers.DictField(help_text="The latest audit entries."),
                "api": serializers.DictField(help_text="Keys used in the last 24 hours, most recent keys."),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        """The SuperAdmin overview's figures, as on the admin's front page."""
        audit.record("admin_api.overview_viewed", request=request)
        figures = overview_context()
        figures.pop("webhook_activity", None)
        return Response(plain(figures))
