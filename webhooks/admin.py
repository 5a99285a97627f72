from __future__ import annotations

import contextlib
import json
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from tenants import audit
from tenants.logging import redact

from .health import delivery_health
from .models import (
    DeliveryStatus,
    EventStatus,
    HookDelivery,
    HookSubscription,
    Milestone,
    WebhookEvent,
    WebhookSubscription,
)
from .processing import replay

STATUS_COLOURS = {
    EventStatus.PROCESSED: "#1a7f37",
    EventStatus.IGNORED: "#667085",
    EventStatus.RECEIVED: "#175cd3",
    EventStatus.PROCESSING: "#175cd3",
    EventStatus.RETRYING: "#b54708",
    EventStatus.PARKED: "#b42318",
    EventStatus.REJECTED: "#b42318",
}


def pretty(text: str) -> str:
    """Readable JSON (or the text as it came), with anything shaped like a secret hidden."""
    with contextlib.suppress(TypeError, ValueError):
        text = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>', redact(text))


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "provider",
        "connection",
        "topic",
        "status_badge",
        "event_id",
        "attempts",
        "duplicates",
        "short_outcome",
    ]
    list_filter = ["status", "provider", "topic", ("connection", admin.RelatedOnlyFieldListFilter), "tenant"]
    list_select_related = ["connection", "tenant"]
    search_fields = ["event_id", "resource_id", "topic"]
    date_hierarchy = "received_at"
    fields = [
        "tenant",
        "connection",
        "provider",
        "service",
        "topic",
        "event_id",
        "resource_id",
        "resource_updated_at",
        "status",
        "signature_valid",
        "received_at",
        "attempts",
        "next_attempt_at",
        "processed_at",
        "outcome",
        "error",
        "duplicates",
        "last_duplicate_at",
        "headers_display",
        "body_display",
    ]
    readonly_fields = fields
    actions = ["replay_selected"]
    change_form_template = "admin/webhooks/webhookevent/change_form.html"
    change_list_template = "admin/webhooks/webhookevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Nothing is edited; "change" is the permission replays need.
        return request.user.is_superuser

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        # Read-only page: the change permission only lets superusers replay.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="status", ordering="status")
    def status_badge(self, event: WebhookEvent) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(event.status, "#000"), event.get_status_display()
        )

    @admin.display(description="outcome")
    def short_outcome(self, event: WebhookEvent) -> str:
        return (event.error or event.outcome)[:120]

    @admin.display(description="headers")
    def headers_display(self, event: WebhookEvent) -> str:
        return pretty(json.dumps(event.headers))

    @admin.display(description="body")
    def body_display(self, event: WebhookEvent) -> str:
        if event.payload is not None:
            return pretty(json.dumps(event.payload))
        return pretty(event.body)

    # --- replay ---

    @admin.action(description="Replay selected events")
    def replay_selected(self, request: HttpRequest, queryset) -> None:
        count = replay(queryset)
        skipped = queryset.count() - count
        audit.record("webhooks.replayed", request=request, count=count)
        message = f"{count} event(s) queued again."
        if skipped:
            message += f" {skipped} skipped: rejected events are never processed, and processing ones are in hand."
        self.message_user(request, message, messages.SUCCESS if count else messages.WARNING)

    def get_urls(self):
        urls = [
            path("<int:pk>/replay/", self.admin_site.admin_view(self.replay_view), name="webhooks_webhookevent_replay"),
            path("health/", self.admin_site.admin_view(self.health_view), name="webhooks_webhookevent_health"),
        ]
        return urls + super().get_urls()

    def replay_view(self, request: HttpRequest, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        event = get_object_or_404(WebhookEvent, pk=pk)
        count = replay(WebhookEvent.objects.filter(pk=pk))
        if count:
            audit.record("webhooks.replayed", request=request, tenant=event.tenant, target=event, count=1)
            self.message_user(request, "The event is queued again.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"A {event.get_status_display().lower()} event cannot be replayed.", messages.ERROR
            )
        return HttpResponseRedirect(reverse("admin:webhooks_webhookevent_change", args=[pk]))

    def health_view(self, request: HttpRequest):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Webhook delivery health (last 24 hours)",
            "rows": delivery_health(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/webhooks/health.html", context)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["connection", "topic", "address", "remote_id", "registered_at"]
    list_filter = [("connection", admin.RelatedOnlyFieldListFilter), "tenant"]
    list_select_related = ["connection"]
    readonly_fields = ["tenant", "connection", "topic", "address", "remote_id", "registered_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- Outbound hooks ----------------------------------------------------------------------------------

DELIVERY_COLOURS = {
    DeliveryStatus.SUCCEEDED: "#1a7f37",
    DeliveryStatus.PENDING: "#175cd3",
    DeliveryStatus.RETRYING: "#b54708",
    DeliveryStatus.FAILED: "#b42318",
    DeliveryStatus.CANCELLED: "#667085",
}


@admin.register(HookSubscription)
class HookSubscriptionAdmin(admin.ModelAdmin):
    """Clients' outbound hooks. The signing secret is never shown (the client saw it once)."""

    list_display = ["created_at", "tenant", "event", "target_host", "active", "failing_since", "deliveries_link"]
    list_filter = ["active", "event", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["target_url"]
    fields = [
        "tenant",
        "event",
        "target_url",
        "payload_template",
        "active",
        "created_at",
        "created_by_key",
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "deliveries_link",
    ]
    readonly_fields = fields
    actions = ["switch_off_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Nothing is edited; "change" is the permission switching off needs.
        return request.user.is_superuser

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="target")
    def target_host(self, subscription: HookSubscription) -> str:
        return urlsplit(subscription.target_url).hostname or subscription.target_url

    @admin.display(description="deliveries")
    def deliveries_link(self, subscription: HookSubscription) -> str:
        url = reverse("admin:webhooks_hookdelivery_changelist") + f"?subscription__id__exact={subscription.pk}"
        return format_html('<a href="{}">delivery log</a>', url)

    @admin.action(description="Switch off selected subscriptions")
    def switch_off_selected(self, request: HttpRequest, queryset) -> None:
        from .outbound.delivery import switch_off

        count = sum(
            switch_off(subscription, f"Switched off by {request.user.get_username()} (superadmin).", notify=False)
            for subscription in queryset.filter(active=True).select_related("tenant")
        )
        self.message_user(request, f"{count} subscription(s) switched off.", messages.SUCCESS)


@admin.register(HookDelivery)
class HookDeliveryAdmin(admin.ModelAdmin):
    """The outbound delivery log: each message, its attempts and the target's last answer."""

    list_display = [
        "created_at",
        "tenant",
        "event",
        "subscription",
        "status_badge",
        "attempts",
        "response_code",
        "response_ms",
        "short_error",
    ]
    list_filter = ["status", "event", "tenant"]
    list_select_related = ["tenant", "subscription"]
    search_fields = ["webhook_id"]
    date_hierarchy = "created_at"
    fields = [
        "tenant",
        "subscription",
        "event",
        "webhook_id",
        "status",
        "attempts",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "response_code",
        "response_ms",
        "error",
        "response_display",
        "payload_display",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, item: HookDelivery) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', DELIVERY_COLOURS.get(item.status, "#000"), item.get_status_display()
        )

    @admin.display(description="error")
    def short_error(self, item: HookDelivery) -> str:
        return item.error[:120]

    @admin.display(description="response body (first 2 KB)")
    def response_display(self, item: HookDelivery) -> str:
        return pretty(item.response_body)

    @admin.display(description="payload")
    def payload_display(self, item: HookDelivery) -> str:
        return pretty(json.dumps(item.payload))


@admin.register(Milestone)
class MilestoneAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "kind", "threshold", "currency", "reached_at", "reached_value"]
    list_filter = ["kind", "tenant"]
    readonly_fields = ["tenant", "kind", "threshold", "currency", "reached_at", "reached_value", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
