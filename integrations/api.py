"""The public API for integrations: the platform catalogue, connections (create, read, change,
delete, test, sync), their sync history, a status overview and the setup status per platform.
Tenant-scoped through `TenantScopedViewSet`; API keys need `integrations:read` or
`integrations:write`."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import audit
from tenants.api import UPDATED_SINCE, MeteredMixin, TenantScopedViewSet, choice_param, parse_timestamp
from tenants.schema import ErrorSerializer

from . import setup_status as setup
from .connectors import CONNECTORS
from .models import Connection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger
from .platforms import CATALOGUE, Platform
from .serializers import (
    CheckResultSerializer,
    ConnectionSerializer,
    ConnectionStatusSerializer,
    PlatformListSerializer,
    PlatformSerializer,
    SetupStatusSerializer,
    SyncRequestSerializer,
    SyncRunSerializer,
)
from .services import connection_stats, request_sync, test_connection

CONFLICT = OpenApiResponse(ErrorSerializer, description="Conflicts with the connection's current state.")
CONNECTION_FILTERS = [
    OpenApiParameter("platform", OpenApiTypes.STR, enum=Platform.values, description="Only this platform."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=ConnectionStatus.values, description="Only this status."),
    OpenApiParameter("enabled", OpenApiTypes.BOOL, description="Only enabled (true) or disabled (false) ones."),
    UPDATED_SINCE,
]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the connection's current state."
    default_code = "conflict"


@extend_schema(tags=["platforms"])
class PlatformViewSet(MeteredMixin, viewsets.ViewSet):
    """The platform catalogue: what each platform needs to connect. Not tenant data, so any
    authenticated caller may read it."""

    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = "[a-z_]+"

    @extend_schema(responses=PlatformListSerializer)
    def list(self, request: Request) -> Response:
        return Response({"results": [spec.as_dict() for spec in CATALOGUE.values()]})

    @extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. shopify")],
        responses=PlatformSerializer,
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        spec = CATALOGUE.get(pk or "")
        if spec is None:
            raise NotFound()
        return Response(spec.as_dict())


@extend_schema(tags=["integrations"])
@extend_schema_view(
    list=extend_schema(parameters=CONNECTION_FILTERS),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
)
class ConnectionViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """The caller's connections. PATCH only (no PUT): credentials merge into the stored ones."""

    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    scope_resource = "integrations"
    # Ids only, so `status` (a list action) is never read as a connection id.
    lookup_value_regex = "[0-9]+"

    @property
    def ordering(self) -> str | tuple[str, ...]:
        # The cursor paginator orders by the view's `ordering`: connections oldest first, one
        # connection's sync history newest first.
        return "-queued_at" if self.action == "sync_runs" else ("created_at", "pk")

    @property
    def ordering_fields(self) -> tuple[str, ...]:
        return ("queued_at", "id") if self.action == "sync_runs" else ("created_at", "updated_at", "name", "id")

    def get_queryset(self):
        return super().get_queryset().select_related("tenant")

    def filter_queryset(self, queryset):
        """The list's filters: `platform`, `status`, `enabled`, `updated_since`."""
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if platform := choice_param(params, "platform", Platform.values):
            queryset = queryset.filter(platform=platform)
        if connection_status := choice_param(params, "status", ConnectionStatus.values):
            queryset = queryset.filter(status=connection_status)
        if enabled := choice_param(params, "enabled", ("true", "false")):
            queryset = queryset.filter(enabled=enabled == "true")
        if since := params.get("updated_since"):
            queryset = queryset.filter(updated_at__gte=parse_timestamp(since))
        return queryset

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        context.setdefault("stats", {})
        return context

    def _serializer(self, connections, **kwargs) -> ConnectionSerializer:
        """A serializer whose `stats` come from one `connection_stats` call for all of them."""
        many = kwargs.get("many", False)
        stats = connection_stats(list(connections) if many else [connections])
        return self.get_serializer(connections, context={**self.get_serializer_context(), "stats": stats}, **kwargs)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(self._serializer(self.get_object()).data)

    def perform_create(self, serializer: ConnectionSerializer) -> None:
        connection = serializer.save(tenant=self.tenant)
        audit.record(
            "connection.created",
            request=self.request,
            tenant=self.tenant,
            target=connection,
            platform=connection.platform,
            fields=serializer.changed_credentials,
        )

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        serializer = self.get_serializer(connection, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        settings_changed = [name for name in serializer.changed_fields if name != "credentials"]
        if serializer.changed_credentials:
            audit.record(
                "connection.credentials_changed",
                request=request,
                tenant=self.tenant,
                target=connection,
                fields=serializer.changed_credentials,
            )
        if settings_changed:
            audit.record(
                "connection.updated", request=request, tenant=self.tenant, target=connection, fields=settings_changed
            )
        return Response(self._serializer(connection).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        target = str(connection)
        try:
            with transaction.atomic():
                connection.delete()
        except (ProtectedError, RestrictedError) as error:
            raise Conflict(
                "This connection still has orders, products or customers synced from it, so it cannot be "
                'deleted. Disable it instead: PATCH {"enabled": false}.'
            ) from error
        audit.record("connection.deleted", request=request, tenant=self.tenant, target=target)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=CheckResultSerializer)
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request: Request, pk: str | None = None) -> Response:
        result = test_connection(self.get_object(), request=request)
        return Response(result.as_dict())

    @extend_schema(request=SyncRequestSerializer, responses={202: SyncRunSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="sync")
    def sync(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        body = SyncRequestSerializer(data=request.data, context={"connection": connection})
        body.is_valid(raise_exception=True)
        if not connection.enabled:
            raise Conflict('This connection is disabled: enable it first (PATCH {"enabled": true}).')
        if connection.platform not in CONNECTORS:
            raise Conflict(f"{connection.get_platform_display()} cannot be synced yet: it has no connector.")
        run = request_sync(
            connection,
            body.validated_data["streams"] or None,
            full=body.validated_data["full"],
            trigger=SyncTrigger.API,
            request=request,
        )
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=SyncRunSerializer(many=True),
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=SyncStatus.values, description="Only this.")],
    )
    @action(detail=True, methods=["get"], url_path="sync-runs")
    def sync_runs(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        runs = SyncRun.objects.for_tenant(self.tenant).filter(connection=connection)
        if run_status := choice_param(request.query_params, "status", SyncStatus.values):
            runs = runs.filter(status=run_status)
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(SyncRunSerializer(page, many=True).data)

    @extend_schema(
        responses=inline_serializer("ConnectionStatusList", {"results": ConnectionStatusSerializer(many=True)})
    )
    @action(detail=False, methods=["get"], url_path="status")
    def status_overview(self, request: Request) -> Response:
        # The credentials are not shown here, so they are neither loaded nor decrypted.
        connections = list(super().get_queryset().defer("credentials").order_by("name", "pk"))
        stats = connection_stats(connections)
        return Response({"results": ConnectionStatusSerializer(connections, many=True, context={"stats": stats}).data})

    @extend_schema(
        responses=SetupStatusSerializer,
        description="Every platform of the catalogue, connected or not, with the caller's connections of it: "
        "status, last sync, record counts, and the credential fields missing or invalid (by name; a secret's "
        "value is never shown).",
    )
    @action(detail=False, methods=["get"], url_path="setup-status")
    def setup_status(self, request: Request) -> Response:
        return Response({"results": setup.setup_status(self.tenant, super().get_queryset())})


@extend_schema(tags=["integrations"])
class SyncRunViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    """One sync run of the caller's tenant, by id."""

    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    scope_resource = "integrations"
    lookup_value_regex = "[0-9]+"
