"""Bodies of the campaigns API: segments, campaigns, suppressions. Connections and segments are
looked up among the caller's own only (another tenant's id is "does not exist")."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from integrations.models import Connection

from . import messaging, segments, templating
from .models import Campaign, CampaignStatus, Channel, Segment, Suppression, SuppressionReason


class _TenantScoped:
    """Relation fields whose choices are the context tenant's rows."""

    scoped = {"connection": Connection, "segment": Segment}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        tenant = self.context.get("tenant")
        for name, model in self.scoped.items():
            if name in self.fields and hasattr(self.fields[name], "queryset"):
                self.fields[name].queryset = model.objects.for_tenant(tenant)


class SegmentSerializer(serializers.ModelSerializer):
    rules = serializers.JSONField(
        required=False,
        help_text='{"match": "all"|"any", "rules": [{"field", "op", "value"}]}; see GET /segments/fields.',
    )
    customers = serializers.SerializerMethodField(help_text="Matching customers now (the live count).")

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "rules", "customers", "created_at", "updated_at"]
        read_only_fields = ["id", "customers", "created_at", "updated_at"]

    def get_customers(self, segment: Segment) -> int:
        return segments.count(segment.tenant, segment.rules)

    def validate_rules(self, value):
        try:
            return segments.validate(value)
        except segments.SegmentError as error:
            raise serializers.ValidationError(error.message) from None

    def validate_name(self, value: str) -> str:
        tenant = self.context.get("tenant")
        taken = Segment.objects.for_tenant(tenant).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("You have a segment with this name already.")
        return value


class SegmentPreviewSerializer(serializers.Serializer):
    rules = serializers.JSONField(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    def validate_rules(self, value):
        try:
            return segments.validate(value)
        except segments.SegmentError as error:
            raise serializers.ValidationError(error.message) from None


class CampaignSerializer(_TenantScoped, serializers.ModelSerializer):
    connection = serializers.PrimaryKeyRelatedField(queryset=Connection.objects.none())
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.none(), allow_null=True, required=False)
    status = serializers.ChoiceField(choices=CampaignStatus.choices, read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "uuid",
            "name",
            "channel",
            "connection",
            "segment",
            "subject",
            "subject_b",
            "ab_share",
            "ab_wait_minutes",
            "ab_winner",
            "body",
            "html",
            "discount_code",
            "status",
            "scheduled_at",
            "started_at",
            "finished_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "uuid",
            "status",
            "scheduled_at",
            "started_at",
            "finished_at",
            "last_error",
            "ab_winner",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        if self.instance is not None and self.instance.status != CampaignStatus.DRAFT:
            raise serializers.ValidationError({"status": ["Only a draft can be changed."]})
        channel = attrs.get("channel", getattr(self.instance, "channel", None))
        connection = attrs.get("connection", getattr(self.instance, "connection", None))
        if connection is not None and messaging.channel_of(connection.platform) != channel:
            raise serializers.ValidationError(
                {"connection": [f"{connection.get_platform_display()} does not send {channel}."]}
            )
        for name in ("subject", "subject_b", "body", "html"):
            if name in attrs:
                try:
                    templating.check(attrs[name], field=name)
                except templating.TemplateProblem as problem:
                    raise serializers.ValidationError({name: [problem.message]}) from None
        attrs["updated_at"] = timezone.now()
        return attrs


class ScheduleSerializer(serializers.Serializer):
    scheduled_at = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="When to send (ISO 8601, e.g. 2026-12-01T09:00). Without an offset it is read in your time "
        "zone; empty: now.",
    )

    def validate_scheduled_at(self, value):
        """A time given without an offset is in the tenant's time zone (DRF would take UTC)."""
        if not value:
            return None
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise serializers.ValidationError("Use an ISO 8601 date-time, e.g. 2026-12-01T09:00.")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, zoneinfo.ZoneInfo(self.context["tenant"].time_zone))
        return moment


class CampaignStatsSerializer(serializers.Serializer):
    recipients = serializers.IntegerField()
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    failed = serializers.IntegerField()
    suppressed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    delivered_rate = serializers.FloatField()
    opened_rate = serializers.FloatField()
    clicked_rate = serializers.FloatField()
    bounced_rate = serializers.FloatField()
    unsubscribed_rate = serializers.FloatField()
    failed_rate = serializers.FloatField()


class SuppressionSerializer(serializers.ModelSerializer):
    reason = serializers.ChoiceField(choices=SuppressionReason.choices, read_only=True)

    class Meta:
        model = Suppression
        fields = ["id", "channel", "address", "reason", "detail", "campaign", "created_at"]
        read_only_fields = ["id", "reason", "campaign", "created_at"]

    def validate(self, attrs):
        try:
            if attrs["channel"] == Channel.SMS:
                attrs["address"] = messaging.check_phone(attrs["address"], field="address")
            else:
                attrs["address"] = messaging.check_email(attrs["address"], field="address").lower()
        except messaging.MessageError as error:
            raise serializers.ValidationError({error.field: [error.message]}) from None
        return attrs
