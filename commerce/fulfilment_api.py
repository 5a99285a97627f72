"""Fulfilment in the public API. Every read goes through `for_tenant()`: another tenant's order,
fulfilment or rule is a 404. Reading needs `orders:read`, fulfilling and rules `orders:write`.

- `POST /orders/{id}/fulfil` (on `commerce.api.OrderViewSet`, which calls `fulfil_order`)
- `GET /fulfillments`, `GET /fulfillments/{id}`, `POST /fulfillments/bulk` (JSON rows or a CSV file)
- `GET|POST /fulfillment-rules`, `GET|PUT|PATCH|DELETE /fulfillment-rules/{id}`,
  `GET /fulfillment-rules/{id}/preview` (the dry run)
- `GET /fulfillment/analytics`
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import TooManyFieldsSent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, parsers, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit
from tenants.api import HasTenantScope, MeteredMixin, TenantScopedViewSet, choice_param, request_tenant
from tenants.schema import ERROR_DESCRIPTIONS, ErrorSerializer

from .fulfilment import FulfilmentError, fulfil
from .fulfilment_bulk import BulkError, BulkRow, bulk_fulfil, parcel_lines, rows_from_csv
from .fulfilment_metrics import DEFAULT_DAYS, MAX_DAYS, analytics
from .fulfilment_rules import PREVIEW_DAYS, RuleError, check_rule, preview
from .models import Fulfilment, FulfilmentRule, FulfilmentSource, Order
from .models import FulfilmentPushStatus as Status

ORDER_UNSERVED = ("order__raw", "order__billing_address", "order__shipping_address")

# --- Serializers -------------------------------------------------------------------------------------


class FulfilmentLineSerializer(serializers.Serializer):
    line_id = serializers.IntegerField(help_text="The order line's id (`lines[].id` of the order).")
    quantity = serializers.IntegerField()


class FulfilmentSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="order_id", read_only=True)
    order_number = serializers.CharField(source="order.number", read_only=True)
    channel = serializers.CharField(source="order.channel", read_only=True)
    lines = serializers.SerializerMethodField(help_text="Empty: every line that was still unfulfilled.")
    rule = serializers.IntegerField(source="rule_id", read_only=True, allow_null=True)

    class Meta:
        model = Fulfilment
        fields = [
            "id",
            "order",
            "order_number",
            "channel",
            "status",
            "tracking_number",
            "carrier",
            "tracking_url",
            "lines",
            "notify_customer",
            "source",
            "rule",
            "attempts",
            "next_attempt_at",
            "last_error",
            "remote_id",
            "pushed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(FulfilmentLineSerializer(many=True))
    def get_lines(self, fulfilment: Fulfilment) -> list[dict]:
        return [{"line_id": line_id, "quantity": quantity} for line_id, quantity in fulfilment.lines]


class FulfilLineSerializer(serializers.Serializer):
    line_id = serializers.IntegerField(required=False, help_text="The order line's id; or give its `sku`.")
    sku = serializers.CharField(required=False, max_length=128)
    quantity = serializers.IntegerField(
        required=False, min_value=1, max_value=1_000_000, help_text="Default: all that is left of the line."
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("line_id") is None and not attrs.get("sku"):
            raise serializers.ValidationError("Give the line's `line_id` or its `sku`.")
        return attrs


class FulfilSerializer(serializers.Serializer):
    tracking_number = serializers.CharField(
        max_length=128, required=False, allow_blank=True, default="", help_text="Empty for digital goods."
    )
    carrier = serializers.CharField(
        max_length=100, help_text="Any spelling the hub knows (UPS, ups, United Parcel Service) the platform accepts."
    )
    lines = FulfilLineSerializer(
        many=True, required=False, help_text="The lines shipped. Absent or empty: every line still unfulfilled."
    )
    notify_customer = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Default: the client's fulfilment setting."
    )


class BulkRowSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(required=False, help_text="The order's id; or give its `order_number`.")
    order_number = serializers.CharField(required=False, allow_blank=True, max_length=64)
    channel = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="When two channels use the same order number."
    )
    tracking_number = serializers.CharField(required=False, allow_blank=True, default="", max_length=128)
    carrier = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    sku = serializers.CharField(required=False, allow_blank=True, default="", max_length=128)
    line_id = serializers.IntegerField(required=False)
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)


class BulkFulfilSerializer(serializers.Serializer):
    fulfillments = BulkRowSerializer(
        many=True,
        allow_empty=False,
        help_text="One row per parcel line. Rows of one order with the same tracking number and carrier are "
        "one fulfilment; each is checked on its own.",
    )
    notify_customer = serializers.BooleanField(required=False, allow_null=True, default=None)


class BulkUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV with a header row: order number, tracking number, carrier, and optionally sku, quantity, "
        "channel."
    )
    notify_customer = serializers.BooleanField(required=False, allow_null=True, default=None)


class BulkFailureSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The file's row (the header is row 1), or the position in the list.")
    order = serializers.CharField()
    reason = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Rows not fulfilled.")
    fulfillments = FulfilmentSerializer(many=True)
    failures = BulkFailureSerializer(many=True)


class FulfilmentRuleSerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(
        source="connection_id", required=False, allow_null=True, help_text="Only orders of this connection."
    )
    skus = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=1000, help_text="Lines with these SKUs."
    )
    carrier = serializers.CharField(max_length=100, help_text="Any spelling the hub knows; stored as its code.")

    class Meta:
        model = FulfilmentRule
        fields = [
            "id",
            "name",
            "enabled",
            "connection",
            "skus",
            "sku_prefix",
            "carrier",
            "tracking_number",
            "notify_customer",
            "orders_fulfilled",
            "last_error",
            "last_error_at",
            "enabled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "orders_fulfilled",
            "last_error",
            "last_error_at",
            "enabled_at",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict) -> dict:
        tenant = self.context["tenant"]
        current = self.instance

        def value(name: str, default):
            return attrs[name] if name in attrs else getattr(current, name, default) if current else default

        connection_id = value("connection_id", None)
        connection = None
        if connection_id is not None:
            model = apps.get_model("integrations", "Connection")
            connection = model.objects.for_tenant(tenant).filter(pk=connection_id).first()
            if connection is None:
                raise ValidationError({"connection": "No such connection."})
        skus = [sku.strip() for sku in value("skus", []) if sku.strip()]
        try:
            code = check_rule(
                tenant,
                carrier=value("carrier", ""),
                skus=skus,
                sku_prefix=value("sku_prefix", "").strip(),
                connection=connection,
            )
        except RuleError as problem:
            raise ValidationError({problem.field: str(problem)}) from None
        attrs["carrier"] = code
        if "skus" in attrs:
            attrs["skus"] = list(dict.fromkeys(skus))
        return attrs


class PreviewLineSerializer(serializers.Serializer):
    line_id = serializers.IntegerField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()


class PreviewOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    channel = serializers.CharField()
    placed_at = serializers.DateTimeField()
    everything_left = serializers.BooleanField(help_text="The rule would fulfil every line still unfulfilled.")
    lines = PreviewLineSerializer(many=True)


class RulePreviewSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    days = serializers.IntegerField()
    orders = PreviewOrderSerializer(many=True)


class DayCountSerializer(serializers.Serializer):
    date = serializers.DateField()
    orders = serializers.IntegerField()


class ChannelTimeSerializer(serializers.Serializer):
    channel = serializers.CharField()
    label = serializers.CharField()
    orders = serializers.IntegerField()
    median_hours = serializers.FloatField(allow_null=True)


class LateOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    channel = serializers.CharField()
    placed_at = serializers.DateTimeField()
    age_hours = serializers.FloatField()


class LateSerializer(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Orders still to ship placed longer ago than the SLA.")
    shipped_late = serializers.IntegerField(help_text="Orders first shipped in the period later than the SLA.")
    oldest = LateOrderSerializer(many=True)


class FailedPushSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    order_number = serializers.CharField()
    channel = serializers.CharField()
    last_error = serializers.CharField()
    updated_at = serializers.DateTimeField()


class FailedPushesSerializer(serializers.Serializer):
    failed = serializers.IntegerField(help_text="Fulfilments created in the period whose push failed.")
    retrying = serializers.IntegerField(help_text="Fulfilments waiting for a retry now.")
    recent = FailedPushSerializer(many=True)


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    period = PeriodSerializer()
    sla_hours = serializers.IntegerField()
    fulfilled_per_day = DayCountSerializer(many=True)
    fulfilled = serializers.IntegerField()
    time_to_ship = ChannelTimeSerializer(many=True)
    median_hours = serializers.FloatField(allow_null=True)
    late = LateSerializer()
    failed_pushes = FailedPushesSerializer()


# --- Fulfilling one order ----------------------------------------------------------------------------


def refused(problem: FulfilmentError) -> ValidationError:
    """A refusal as the API's 400: the message under the field at fault, and for a carrier the
    platform does not take, the codes it does."""
    details: dict = {problem.field: [str(problem)]}
    if problem.accepted is not None:
        details["accepted_carriers"] = problem.accepted
    return ValidationError(details)


def fulfil_order(request: Request, order: Order) -> Response:
    """`POST /orders/{id}/fulfil`: store the fulfilment and queue its push; answers 202 with it."""
    body = FulfilSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    rows = [
        BulkRow(row=n, sku=line.get("sku", ""), line_id=line.get("line_id"), quantity=line.get("quantity"))
        for n, line in enumerate(data.get("lines") or [], start=1)
    ]
    try:
        fulfilment = fulfil(
            order,
            data["tracking_number"],
            data["carrier"],
            parcel_lines(order, rows),
            notify_customer=data["notify_customer"],
            by=request.user,
            source=FulfilmentSource.API,
        )
    except FulfilmentError as problem:
        raise refused(problem) from None
    audit.record("order.fulfilment_created", request=request, tenant=request_tenant(request), target=order)
    return Response(FulfilmentSerializer(fulfilment).data, status=status.HTTP_202_ACCEPTED)


# --- Fulfilments -------------------------------------------------------------------------------------


@extend_schema(tags=["fulfillments"])
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values, description="Only this push status."),
            OpenApiParameter("source", OpenApiTypes.STR, enum=FulfilmentSource.values, description="Only this source."),
            OpenApiParameter("order", OpenApiTypes.INT, description="Only this order's fulfilments."),
        ]
    )
)
class FulfilmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The client's fulfilments with each push's outcome: `pending`, `pushing`, `pushed` (with the
    platform's `remote_id`), `retrying` (with `next_attempt_at` and `last_error`) or `failed` (with
    the platform's reason in `last_error`). Newest first. `bulk` fulfils many orders at once."""

    queryset = Fulfilment.objects.all()
    serializer_class = FulfilmentSerializer
    scope_resource = "orders"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "updated_at", "id")

    def get_queryset(self):
        # The order's raw payload and addresses are not served, so they are not loaded either.
        return super().get_queryset().select_related("order").defer(*ORDER_UNSERVED)

    def filter_queryset(self, queryset):
        if self.action == "list":
            params = self.request.query_params
            if value := choice_param(params, "status", Status.values):
                queryset = queryset.filter(status=value)
            if value := choice_param(params, "source", FulfilmentSource.values):
                queryset = queryset.filter(source=value)
            if order := params.get("order"):
                if not order.isdigit() or len(order) > 18:
                    raise ValidationError({"order": "Use an order's id."})
                queryset = queryset.filter(order_id=int(order))
        return queryset

    @extend_schema(
        request={"application/json": BulkFulfilSerializer, "multipart/form-data": BulkUploadSerializer},
        responses=BulkResultSerializer,
        description="Fulfil many orders at once, from `fulfillments` rows (JSON) or a CSV `file` (multipart). "
        "Each parcel is checked on its own: the valid ones are stored and their pushes queued, the others are "
        "listed in `failures` with the reason. At most FULFILMENT_BULK_MAX_ROWS rows (5000 by default).",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="bulk",
        parser_classes=[parsers.JSONParser, parsers.MultiPartParser],
    )
    def bulk(self, request: Request) -> Response:
        tenant = self.tenant
        try:
            files = request.FILES
        except TooManyFieldsSent:
            raise ValidationError({"file": ["Send the CSV file as the one `file` field."]}) from None
        try:
            if "file" in files:
                upload = BulkUploadSerializer(data=request.data)
                upload.is_valid(raise_exception=True)
                rows, source = rows_from_csv(upload.validated_data["file"]), FulfilmentSource.CSV
                notify = upload.validated_data["notify_customer"]
            else:
                body = BulkFulfilSerializer(data=request.data)
                body.is_valid(raise_exception=True)
                rows = [BulkRow(row=n, **row) for n, row in enumerate(body.validated_data["fulfillments"], start=1)]
                source, notify = FulfilmentSource.BULK, body.validated_data["notify_customer"]
            result = bulk_fulfil(tenant, rows, by=request.user, source=source, notify_customer=notify)
        except BulkError as problem:
            raise ValidationError({"fulfillments": [str(problem)]}) from None
        audit.record(
            "order.fulfilment_bulk",
            request=request,
            tenant=tenant,
            rows=result.rows,
            created=len(result.created),
            failed=len(result.failures),
        )
        body = {
            "rows": result.rows,
            "created": len(result.created),
            "failed": len(result.failures),
            "fulfillments": result.created,
            "failures": [{"row": f.row, "order": f.order, "reason": f.reason} for f in result.failures],
        }
        return Response(BulkResultSerializer(body).data)


# --- Rules -------------------------------------------------------------------------------------------


@extend_schema(tags=["fulfillments"])
class FulfilmentRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Auto-fulfilment rules: orders arriving after a rule is switched on whose lines match it (SKUs,
    a SKU prefix and/or a connection) are fulfilled with its carrier and tracking number (empty for
    digital goods). `preview` is the dry run: the recent orders still to ship the rule matches."""

    queryset = FulfilmentRule.objects.all()
    serializer_class = FulfilmentRuleSerializer
    parser_classes = [parsers.JSONParser]
    scope_resource = "orders"
    lookup_value_regex = "[0-9]+"
    ordering = ("id",)
    ordering_fields = ("id", "created_at")

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "tenant": self.tenant}

    def perform_create(self, serializer) -> None:
        by = self.request.user if getattr(self.request.user, "pk", None) else None
        rule = serializer.save(tenant=self.tenant, created_by=by)
        audit.record("fulfilment_rule.created", request=self.request, tenant=self.tenant, target=rule)

    def perform_update(self, serializer) -> None:
        rule = serializer.save()
        audit.record("fulfilment_rule.changed", request=self.request, tenant=self.tenant, target=rule)

    def perform_destroy(self, rule: FulfilmentRule) -> None:
        audit.record("fulfilment_rule.deleted", request=self.request, tenant=self.tenant, target=rule)
        rule.delete()

    @extend_schema(responses=RulePreviewSerializer)
    @action(detail=True, methods=["get"], url_path="preview")
    def preview(self, request: Request, pk: str | None = None) -> Response:
        rule = self.get_object()
        matches = preview(rule)
        body = {
            "rule": rule.pk,
            "days": PREVIEW_DAYS,
            "orders": [
                {
                    "id": match.order.pk,
                    "number": match.order.number,
                    "channel": match.order.channel,
                    "placed_at": match.order.placed_at,
                    "everything_left": not match.lines,
                    "lines": [{"line_id": pk, "title": title, "quantity": q} for pk, title, q in match.lines],
                }
                for match in matches
            ],
        }
        return Response(RulePreviewSerializer(body).data)


# --- Analytics ---------------------------------------------------------------------------------------


class FulfilmentAnalyticsView(MeteredMixin, APIView):
    """Fulfilment figures of the last `days` days in the client's time zone: orders fulfilled per day,
    the median hours from order to shipment per channel, late orders against the client's SLA, and
    failed pushes. Definitions: commerce/fulfilment_metrics.py."""

    permission_classes = [permissions.IsAuthenticated, HasTenantScope]
    scope_resource = "orders"

    @extend_schema(
        operation_id="fulfillment_analytics",
        tags=["fulfillments"],
        parameters=[
            OpenApiParameter(
                "days", OpenApiTypes.INT, description=f"The period, 1 to {MAX_DAYS} days (default {DEFAULT_DAYS})."
            )
        ],
        responses={
            200: AnalyticsSerializer,
            400: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS["400"]),
        },
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", str(DEFAULT_DAYS))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
            raise ValidationError({"days": f"Use a whole number of days from 1 to {MAX_DAYS}."})
        return Response(AnalyticsSerializer(analytics(request_tenant(request), int(raw))).data)


fulfilment_analytics = FulfilmentAnalyticsView.as_view()
