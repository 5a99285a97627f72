"""`GET /api/v1/activity`: the caller's activity stream (tenants.activity), cursor-paginated.

API keys need `integrations:read` (syncs, webhooks and connections are most of the stream);
entries about payments and campaigns are left out for a key without `payments:read` or
`campaigns:read`, so the stream never shows more than the key could read elsewhere."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError

from . import activity
from .api import TenantScopedViewSet, choice_param, parse_timestamp
from .models import Activity, ActivityKind, ActivityLevel, ApiKey, ApiKeyScope

# Kinds (by prefix) that need a scope besides integrations:read.
KIND_SCOPES = {"payment.": ApiKeyScope.PAYMENTS_READ, "campaign.": ApiKeyScope.CAMPAIGNS_READ}

ACTIVITY_FILTERS = [
    OpenApiParameter("kind", OpenApiTypes.STR, enum=ActivityKind.values, description="Only this kind."),
    OpenApiParameter("level", OpenApiTypes.STR, enum=ActivityLevel.values, description="Only this level."),
    OpenApiParameter("connection", OpenApiTypes.INT, description="Only entries about this connection."),
    OpenApiParameter("after", OpenApiTypes.INT, description="Only entries with an id above this one (polling)."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Only entries at or after this time."),
]


class ActivitySerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(source="connection_id", allow_null=True, read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "kind", "level", "message", "connection", "subject", "data", "created_at"]
        read_only_fields = fields


@extend_schema(tags=["activity"])
@extend_schema_view(list=extend_schema(parameters=ACTIVITY_FILTERS))
class ActivityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """What happened to the caller's connections and data, newest first: syncs completed or
    failed, webhook events processed or parked, payments, campaigns sent, connections failing,
    paused and recovered. Kept for ACTIVITY_RETENTION_DAYS."""

    queryset = Activity.objects.all()
    serializer_class = ActivitySerializer
    scope_resource = "integrations"
    lookup_value_regex = "[0-9]+"
    ordering = "-id"
    ordering_fields = ("created_at", "id")

    def get_queryset(self):
        entries = super().get_queryset()
        key = self.request.auth
        if isinstance(key, ApiKey):
            for prefix, scope in KIND_SCOPES.items():
                if scope not in key.scopes:
                    entries = entries.exclude(kind__startswith=prefix)
        return entries

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if kind := choice_param(params, "kind", ActivityKind.values):
            queryset = queryset.filter(kind=kind)
        if level := choice_param(params, "level", ActivityLevel.values):
            queryset = queryset.filter(level=level)
        if connection := params.get("connection"):
            queryset = queryset.filter(connection_id=_integer(connection, "connection"))
        if (after := params.get("after")) is not None:
            try:
                after_id = activity.parse_after(after)
            except ValueError:
                raise ValidationError({"after": "Use an activity id."}) from None
            if after_id is not None:
                queryset = queryset.filter(id__gt=after_id)
        if since := params.get("created_after"):
            queryset = queryset.filter(created_at__gte=parse_timestamp(since, "created_after"))
        return queryset


def _integer(value: str, param: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError({param: "Use a whole number."}) from None
