"""Outbound hooks in the public API: Zapier REST hooks (subscribe, unsubscribe, samples), each
subscription's delivery log, and the milestones behind `analytics.milestone`.

Subscriptions and milestones need `hooks:read` / `hooks:write`. Subscribing to an event, or reading
its samples, also needs the read scope of the data the event carries (`orders:read` for
`order.*`): a hook must not be a way round a key's scopes."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.errors import UnsafeURL
from tenants import audit
from tenants.api import MissingScope, TenantScopedViewSet, choice_param
from tenants.models import ApiKey, validate_currency

from .models import DeliveryStatus, HookDelivery, HookEvent, HookSubscription, Milestone, MilestoneKind
from .outbound import events
from .outbound.publish import current_values, milestone_value
from .outbound.shaping import apply_template, validate_template
from .outbound.signing import new_secret
from .outbound.targets import check_target

SAMPLE_LIMIT = 25


def require_event_scope(request: Request, event: str) -> None:
    """A key needs the read scope of the data an event carries (signed-in members read everything)."""
    needed = events.EVENT_SCOPES[event]
    if isinstance(request.auth, ApiKey) and needed not in request.auth.scopes:
        raise MissingScope(needed)


# --- Serializers -------------------------------------------------------------------------------------


class HookSubscriptionSerializer(serializers.ModelSerializer):
    target_url = serializers.URLField(max_length=2000, help_text="https, on a public host; called with POST.")
    event = serializers.ChoiceField(
        choices=HookEvent.choices,
        error_messages={"invalid_choice": "“{input}” is not an event; GET /api/v1/hooks/events lists them."},
    )
    payload_template = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='Optional: {"output key": "dotted.path"} into the standard body, e.g. {"total": "data.total"}.',
    )

    class Meta:
        model = HookSubscription
        fields = [
            "id",
            "target_url",
            "event",
            "payload_template",
            "active",
            "created_at",
            "failing_since",
            "disabled_at",
            "disabled_reason",
        ]
        read_only_fields = ["id", "active", "created_at", "failing_since", "disabled_at", "disabled_reason"]

    def validate_target_url(self, value: str) -> str:
        try:
            return check_target(value)
        except UnsafeURL as error:
            raise serializers.ValidationError(str(error)) from error

    def validate_payload_template(self, value):
        try:
            return validate_template(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from error


class NewHookSubscriptionSerializer(HookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (whsec_…, Standard Webhooks). Shown once: keep it to verify deliveries.",
    )

    class Meta(HookSubscriptionSerializer.Meta):
        fields = [*HookSubscriptionSerializer.Meta.fields, "secret"]


class HookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = HookDelivery
        fields = [
            "id",
            "webhook_id",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "response_code",
            "response_ms",
            "response_body",
            "error",
            "created_at",
            "payload",
        ]
        read_only_fields = fields


class MilestoneSerializer(serializers.ModelSerializer):
    threshold = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=Decimal("0.0001"))
    currency = serializers.CharField(
        max_length=3, required=False, allow_blank=True, help_text="Revenue milestones: default the client's currency."
    )

    class Meta:
        model = Milestone
        fields = ["id", "kind", "threshold", "currency", "reached_at", "reached_value", "created_at"]
        read_only_fields = ["id", "reached_at", "reached_value", "created_at"]

    def validate(self, attrs: dict) -> dict:
        tenant = self.context["tenant"]
        if attrs["kind"] == MilestoneKind.ORDER_COUNT:
            if attrs["threshold"] != attrs["threshold"].to_integral_value():
                raise serializers.ValidationError({"threshold": "An order count is a whole number."})
            attrs["currency"] = ""
        else:
            attrs["currency"] = (attrs.get("currency") or tenant.base_currency).upper()
            try:
                validate_currency(attrs["currency"])
            except DjangoValidationError as error:
                raise serializers.ValidationError(
                    {"currency": "Use a three-letter ISO 4217 code, e.g. USD."}
                ) from error
        probe = Milestone(kind=attrs["kind"], currency=attrs["currency"])
        value = milestone_value(probe, current_values(tenant.pk, [attrs["currency"]] if attrs["currency"] else []))
        if value >= attrs["threshold"]:
            raise serializers.ValidationError({"threshold": f"Already reached: the figure is {value:f} now."})
        return attrs


SAMPLE_BODY = inline_serializer(
    "HookPayload",
    {
        "id": serializers.CharField(help_text="The message id (webhook-id); msg_sample_<n> for samples."),
        "type": serializers.CharField(help_text="The event, e.g. order.created."),
        "timestamp": serializers.DateTimeField(),
        "data": serializers.DictField(help_text="The object, as the API shows it."),
    },
    many=True,
)
EVENT_INFO = inline_serializer(
    "HookEventInfo",
    {
        "event": serializers.ChoiceField(choices=HookEvent.choices),
        "label": serializers.CharField(),
        "description": serializers.CharField(),
        "required_scope": serializers.CharField(help_text="Needed besides hooks:write to subscribe."),
    },
    many=True,
)


# --- Views -------------------------------------------------------------------------------------------


@extend_schema(tags=["hooks"])
class HookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Zapier REST hooks: subscribe a URL to an event (`POST`, the signing secret is in the answer
    once), list, read and delete subscriptions, read a subscription's deliveries, and the latest
    real objects of an event in the hook's shape (`samples/<event>`)."""

    queryset = HookSubscription.objects.all()
    serializer_class = HookSubscriptionSerializer
    scope_resource = "hooks"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id")

    def filter_queryset(self, queryset):
        if self.action == "list":
            params = self.request.query_params
            if event := choice_param(params, "event", HookEvent.values):
                queryset = queryset.filter(event=event)
            if active := choice_param(params, "active", ("true", "false")):
                queryset = queryset.filter(active=active == "true")
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("event", OpenApiTypes.STR, enum=HookEvent.values, description="Only this event."),
            OpenApiParameter("active", OpenApiTypes.STR, enum=["true", "false"], description="Active or switched off."),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=HookSubscriptionSerializer, responses={201: NewHookSubscriptionSerializer})
    def create(self, request: Request) -> Response:
        event = request.data.get("event") if hasattr(request.data, "get") else None
        if event in HookEvent.values:
            require_event_scope(request, event)
        body = HookSubscriptionSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        tenant = self.tenant
        if HookSubscription.objects.for_tenant(tenant).filter(active=True).count() >= settings.HOOKS_MAX_SUBSCRIPTIONS:
            raise serializers.ValidationError(
                f"This client has {settings.HOOKS_MAX_SUBSCRIPTIONS} active hook subscriptions, the most allowed; "
                "delete one first."
            )
        subscription = HookSubscription.objects.create(
            tenant=tenant,
            secret=new_secret(),
            created_by_key=request.auth if isinstance(request.auth, ApiKey) else None,
            **body.validated_data,
        )
        audit.record(
            "hook.created",
            request=request,
            tenant=tenant,
            target=subscription,
            event=subscription.event,
            host=urlsplit(subscription.target_url).hostname,
        )
        data = NewHookSubscriptionSerializer(subscription).data
        data["secret"] = subscription.secret
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, description="Unsubscribes: the subscription and its delivery log go.")
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        audit.record(
            "hook.deleted",
            request=request,
            tenant=self.tenant,
            target=subscription,
            event=subscription.event,
            host=urlsplit(subscription.target_url).hostname,
        )
        subscription.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses=HookDeliverySerializer(many=True),
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=DeliveryStatus.values, description="Only this status.")
        ],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The subscription's deliveries, newest first: status, attempts, the target's answer."""
        subscription = self.get_object()
        rows = HookDelivery.objects.for_tenant(self.tenant).filter(subscription=subscription)
        if state := choice_param(request.query_params, "status", DeliveryStatus.values):
            rows = rows.filter(status=state)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(HookDeliverySerializer(page, many=True).data)

    @extend_schema(responses=EVENT_INFO, filters=False)
    @action(detail=False, methods=["get"], pagination_class=None)
    def events(self, request: Request) -> Response:
        """The events a URL can subscribe to, and the read scope each needs."""
        return Response(
            [
                {
                    "event": event.value,
                    "label": event.label,
                    "description": events.DESCRIPTIONS[event],
                    "required_scope": events.EVENT_SCOPES[event],
                }
                for event in HookEvent
            ]
        )

    @extend_schema(
        responses=SAMPLE_BODY,
        filters=False,
        parameters=[
            OpenApiParameter("event", OpenApiTypes.STR, OpenApiParameter.PATH, enum=HookEvent.values),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"How many (1 to {SAMPLE_LIMIT}, default 3)."),
            OpenApiParameter("hook", OpenApiTypes.INT, description="Shape them with this subscription's template."),
        ],
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"samples/(?P<event>[a-z_]+\.[a-z_]+)",
        pagination_class=None,
    )
    def samples(self, request: Request, event: str) -> Response:
        """Zapier's perform-list: the latest real objects of the event, in exactly the hook's
        body (empty when there are none yet)."""
        if event not in HookEvent.values:
            raise NotFound()
        require_event_scope(request, event)
        try:
            limit = min(SAMPLE_LIMIT, max(1, int(request.query_params.get("limit", 3))))
        except ValueError:
            raise serializers.ValidationError({"limit": "Use a whole number."}) from None
        template = None
        if hook := request.query_params.get("hook"):
            if not hook.isdigit():
                raise serializers.ValidationError({"hook": "Use a subscription id."})
            template = get_object_or_404(self.get_queryset(), pk=int(hook)).payload_template
        return Response([apply_template(template, body) for body in events.samples(event, self.tenant, limit)])


@extend_schema(tags=["hooks"])
class MilestoneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """Thresholds that send `analytics.milestone` once, when the client's orders first reach them:
    an order count (`order_count`) or revenue in one currency (`revenue`), both of all time and
    not counting cancelled orders. Needs `hooks:read` / `hooks:write`."""

    queryset = Milestone.objects.all()
    serializer_class = MilestoneSerializer
    scope_resource = "hooks"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id")

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "tenant": self.tenant}

    @extend_schema(request=MilestoneSerializer, responses={201: MilestoneSerializer})
    def create(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        milestone = body.save(tenant=self.tenant)
        return Response(self.get_serializer(milestone).data, status=status.HTTP_201_CREATED)
