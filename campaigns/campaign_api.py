"""The campaigns API: segments (with a live count), campaigns (draft → scheduled → sending → sent,
pause/resume/cancel, figures), and the suppression list. Tenant-scoped through
`TenantScopedViewSet`; API keys need `campaigns:read` to read and `campaigns:write` to change.

- `GET /segments/fields`: the fields and operators segment rules may use.
- `POST /segments/preview` `{"rules", "channel"}` → `{"customers", "reachable"}`: the count while
  editing, before the segment is saved.
- `POST /campaigns/{id}/schedule` `{"scheduled_at"}` (empty: now; without an offset, in the
  tenant's time zone), `POST /campaigns/{id}/pause|resume|cancel`, `GET /campaigns/{id}/stats`.
- Only a draft can be changed or deleted.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import audit
from tenants.api import TenantScopedViewSet, choice_param

from . import consent, segments, sending
from .campaign_serializers import (
    CampaignSerializer,
    CampaignStatsSerializer,
    ScheduleSerializer,
    SegmentPreviewSerializer,
    SegmentSerializer,
    SuppressionSerializer,
)
from .models import Campaign, CampaignStatus, Channel, Segment, Suppression, SuppressionReason


class _Writable(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    parser_classes = [parsers.JSONParser]
    scope_resource = "campaigns"
    lookup_value_regex = "[0-9]+"
    audit_name = ""

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "tenant": self.tenant}

    def perform_create(self, serializer) -> None:
        item = serializer.save(tenant=self.tenant)
        audit.record(f"{self.audit_name}.created", request=self.request, tenant=self.tenant, target=item)

    def perform_update(self, serializer) -> None:
        item = serializer.save()
        audit.record(f"{self.audit_name}.changed", request=self.request, tenant=self.tenant, target=item)

    def perform_destroy(self, item) -> None:
        audit.record(f"{self.audit_name}.deleted", request=self.request, tenant=self.tenant, target=item)
        item.delete()


@extend_schema(tags=["campaigns"])
class SegmentViewSet(_Writable):
    """Saved customer segments. `customers` is the live count of matching customers."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    audit_name = "segment"
    ordering = ("name", "id")
    ordering_fields = ("name", "id", "created_at")

    def perform_destroy(self, item: Segment) -> None:
        if item.campaigns.exists():
            raise ValidationError({"segment": ["Campaigns use this segment: it cannot be deleted."]})
        super().perform_destroy(item)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def fields(self, request: Request) -> Response:
        """The fields, their types and operators segment rules may use."""
        return Response(segments.FIELDS)

    @extend_schema(request=SegmentPreviewSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """How many customers rules match, and how many distinct addresses a channel reaches: the
        count while editing (campaigns:write, as editing is)."""
        body = SegmentPreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rules = body.validated_data.get("rules") or {}
        answer = {"customers": segments.count(self.tenant, rules)}
        if channel := body.validated_data.get("channel"):
            answer["reachable"] = segments.count(self.tenant, rules, channel)
        return Response(answer)


@extend_schema(tags=["campaigns"])
class CampaignViewSet(_Writable):
    """Email and SMS campaigns to a segment."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    audit_name = "campaign"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id", "scheduled_at")

    def get_queryset(self):
        return super().get_queryset().select_related("connection", "segment")

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        wanted = choice_param(self.request.query_params, "status", CampaignStatus.values)
        if self.action == "list" and wanted:
            queryset = queryset.filter(status=wanted)
        return queryset

    def perform_create(self, serializer) -> None:
        by = self.request.user if getattr(self.request.user, "pk", None) else None
        campaign = serializer.save(tenant=self.tenant, created_by=by)
        audit.record("campaign.created", request=self.request, tenant=self.tenant, target=campaign)

    def perform_destroy(self, campaign: Campaign) -> None:
        if campaign.status != CampaignStatus.DRAFT:
            raise ValidationError({"status": ["Only a draft can be deleted; cancel the campaign instead."]})
        super().perform_destroy(campaign)

    def _answer(self, campaign: Campaign) -> Response:
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    def _act(self, call, *args):
        try:
            return self._answer(call(*args, request=self.request))
        except sending.CampaignError as error:
            raise ValidationError({error.field: [error.message]}) from None

    @extend_schema(request=ScheduleSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        """Schedule a draft for `scheduled_at` (empty: now). Its content and connection are checked."""
        campaign = self.get_object()
        body = ScheduleSerializer(data=request.data, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        return self._act(sending.schedule, campaign, body.validated_data.get("scheduled_at"))

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """Stop sending after the batch under way; resume goes on from there."""
        return self._act(sending.pause, self.get_object())

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._act(sending.resume, self.get_object())

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop for good: recipients not yet sent are never sent."""
        return self._act(sending.cancel, self.get_object())

    @extend_schema(responses={200: CampaignStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        """Recipients, sent, delivered, opened, clicked, bounced, unsubscribed, failed, with rates over sent."""
        return Response(CampaignStatsSerializer(sending.stats(self.get_object())).data)


@extend_schema(tags=["campaigns"])
class SuppressionViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """Addresses campaigns never go to: unsubscribes, STOP replies, bounces, spam reports, and
    ones added by hand. Deleting one lets campaigns reach the address again."""

    queryset = Suppression.objects.all()
    serializer_class = SuppressionSerializer
    parser_classes = [parsers.JSONParser]
    scope_resource = "campaigns"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id")

    @extend_schema(parameters=[OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values)])
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action == "list" and (channel := choice_param(self.request.query_params, "channel", Channel.values)):
            queryset = queryset.filter(channel=channel)
        return queryset

    def create(self, request: Request, *args, **kwargs) -> Response:
        body = SuppressionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        address = consent.normalise(data["channel"], data["address"])
        # consent.suppress audits the addition (once, when it is new).
        detail = data.get("detail", "")
        consent.suppress(self.tenant.pk, data["channel"], address, SuppressionReason.MANUAL, detail=detail)
        item = Suppression.objects.for_tenant(self.tenant).get(channel=data["channel"], address=address)
        return Response(SuppressionSerializer(item).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, item: Suppression) -> None:
        consent.unsuppress(item.tenant_id, item.channel, item.address)
