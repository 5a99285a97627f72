"""Campaigns in the SuperAdmin dashboard.

- Messages: the list with its filters (channel, status, connection, tenant) and no bodies, each
  message on its own page with its subject and body for a person looking into a delivery. Messages
  are sent through the API, never here; nothing is edited.
- Segments: rules validated as the API validates them; the live count on a segment's own page only
  (it is a query per segment, so never a column of the list).
- Campaigns: the list with sent and failed counted in the list's own query; a campaign's page with
  its figures (campaigns.sending.stats), its recipients by state and the buttons Schedule now,
  Pause, Resume and Cancel, which call campaigns.sending (a refusal shows as an error message).
  Only a draft is edited.
- Recipients: a read-only list (a campaign's page links to its own), no bodies.
- Suppressions: the list, and addresses added or removed by hand through campaigns.consent, which
  audits both.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from tenants import audit

from . import consent, segments, sending
from .forms import CampaignAdminForm, SegmentAdminForm, SuppressionAdminForm
from .models import (
    Campaign,
    CampaignStatus,
    Message,
    Recipient,
    RecipientState,
    Segment,
    Suppression,
    SuppressionReason,
)
from .views import describe, percent, reach


def _listing(request: HttpRequest) -> bool:
    return (getattr(request.resolver_match, "url_name", "") or "").endswith("changelist")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "connection",
        "channel",
        "status",
        "priority",
        "provider_id",
        "failure_code",
        "opens",
        "clicks",
    ]
    list_filter = ["channel", "status", "connection", "created_at", "tenant"]
    search_fields = ["provider_id", "uuid"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "connection"]
    fields = [
        "tenant",
        "connection",
        "channel",
        "uuid",
        "to",
        "subject",
        "body",
        "html",
        "priority",
        "status",
        "provider_id",
        "failure_code",
        "failure_message",
        "status_updated_at",
        "opens",
        "opened_at",
        "clicks",
        "clicked_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        # The list never shows a body, so it never reads one.
        return queryset.defer("body", "html", "raw") if _listing(request) else queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- Segments --------------------------------------------------------------------------------------


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ["name", "tenant", "rule_summary", "campaign_count", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__name"]
    list_select_related = ["tenant"]
    fields = ["tenant", "name", "description", "rules", "live_count", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(campaigns_using=Count("campaigns"))

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None):
        fixed = ["live_count", "created_at", "updated_at"]
        return [*fixed, "tenant"] if obj is not None else fixed

    @admin.display(description="rules")
    def rule_summary(self, obj: Segment) -> str:
        return describe(obj.rules)

    @admin.display(description="campaigns", ordering="campaigns_using")
    def campaign_count(self, obj: Segment) -> int:
        return obj.campaigns_using

    @admin.display(description="live count")
    def live_count(self, obj: Segment) -> str:
        if obj.pk is None:
            return "Counted once saved."
        try:
            found = reach(obj.tenant, obj.rules)
        except segments.SegmentError as error:
            return f"The stored rules cannot be used: {error.message}"
        return f"{found['customers']} customers now; {found['email']} reachable by email, {found['sms']} by SMS."

    def save_model(self, request: HttpRequest, obj: Segment, form, change: bool) -> None:
        obj.updated_at = timezone.now()
        obj.save()
        audit.record(f"segment.{'changed' if change else 'created'}", request=request, tenant=obj.tenant, target=obj)


# --- Campaigns -------------------------------------------------------------------------------------

CONTENT = ["subject", "subject_b", "ab_share", "ab_wait_minutes", "body", "html", "discount_code"]
STATE = [
    "uuid",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "recipients_frozen_at",
    "last_error",
    "figures",
    "recipients_by_state",
    "ab_winner",
    "ab_sent_at",
    "provider_campaign_id",
    "created_by",
    "created_at",
    "updated_at",
]
STATUS_COLOURS = {
    CampaignStatus.DRAFT: "#667085",
    CampaignStatus.SCHEDULED: "#175cd3",
    CampaignStatus.SENDING: "#175cd3",
    CampaignStatus.SENT: "#1a7f37",
    CampaignStatus.PAUSED: "#b54708",
    CampaignStatus.CANCELLED: "#667085",
    CampaignStatus.FAILED: "#b42318",
}
BUTTONS: dict[str, tuple[Callable, str]] = {
    "schedule": (sending.schedule, "scheduled to send now"),
    "pause": (sending.pause, "paused"),
    "resume": (sending.resume, "resumed"),
    "cancel": (sending.cancel, "cancelled"),
}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ["name", "tenant", "channel", "status_badge", "scheduled_at", "sent", "failed", "created_at"]
    list_filter = ["tenant", "status", "channel"]
    search_fields = ["name", "tenant__name", "uuid"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    actions = ["schedule_selected", "pause_selected", "resume_selected", "cancel_selected"]
    change_form_template = "admin/campaigns/campaign/change_form.html"

    # --- list ---

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if not _listing(request):
            return queryset
        # Counted in the list's own query (grouped by campaign), as sending.stats counts them.
        return queryset.defer("body", "html", "provider_report").annotate(
            sent_count=Count("recipients", filter=Q(recipients__state=RecipientState.SENT)),
            failed_count=Count(
                "recipients",
                filter=Q(recipients__state=RecipientState.FAILED)
                | Q(recipients__state=RecipientState.SENT, recipients__message__status__in=sending.NOT_DELIVERED),
            ),
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Campaign) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(obj.status, "#000"), obj.get_status_display()
        )

    @admin.display(description="sent", ordering="sent_count")
    def sent(self, obj: Campaign) -> int:
        return obj.sent_count

    @admin.display(description="failed", ordering="failed_count")
    def failed(self, obj: Campaign) -> int:
        return obj.failed_count

    # --- the page ---

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None):
        fieldsets = [
            (None, {"fields": ["tenant", "name", "channel", "connection", "segment"]}),
            ("Content", {"fields": CONTENT}),
        ]
        if obj is not None:
            fieldsets.append(("State and figures", {"fields": STATE}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return STATE
        if obj.status != CampaignStatus.DRAFT:
            return ["tenant", "name", "channel", "connection", "segment", *CONTENT, *STATE]
        return ["tenant", *STATE]

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        # A campaign that went out is the record of what was sent: only drafts are deleted.
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found

    @admin.display(description="figures")
    def figures(self, obj: Campaign) -> str:
        found = sending.stats(obj)
        rows = [("recipients", "Recipients", ""), ("pending", "Waiting to send", ""), ("sent", "Sent", "")]
        for name in ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"):
            rows.append((name, name.capitalize(), f"{percent(found[f'{name}_rate'])} of sent"))
        rows += [("suppressed", "Suppressed", "not sent"), ("cancelled", "Cancelled", "not sent")]
        body = format_html_join(
            "",
            '<tr data-figure="{}"><th>{}</th><td>{}</td><td>{}</td></tr>',
            ((name, label, found[name], note) for name, label, note in rows),
        )
        return format_html('<table class="campaign-figures">{}</table>', body)

    @admin.display(description="recipients")
    def recipients_by_state(self, obj: Campaign) -> str:
        counts = dict(obj.recipients.order_by().values_list("state").annotate(n=Count("pk")))
        url = reverse("admin:campaigns_recipient_changelist")
        parts = format_html_join(
            " · ",
            '<a href="{}?campaign__id__exact={}&amp;state__exact={}">{}: {}</a>',
            (
                (url, obj.pk, value, label, counts.get(value, 0))
                for value, label in RecipientState.choices
                if counts.get(value)
            ),
        )
        if not counts:
            return "None yet: they are settled when it starts sending."
        return format_html('{} (<a href="{}?campaign__id__exact={}">all</a>)', parts, url, obj.pk)

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        now = timezone.now()
        if not change:
            obj.created_by = request.user
            obj.updated_at = now
            obj.save()
            audit.record("campaign.created", request=request, tenant=obj.tenant, target=obj)
            return
        names = [name for name in form.changed_data if name in form.fields]
        if not names:
            return
        # Only while it is still a draft, and only what the form changed: the send task's fields
        # (status, lease, figures) are never written back from the page's copy.
        changed = Campaign.objects.filter(pk=obj.pk, status=CampaignStatus.DRAFT).update(
            **{name: getattr(obj, name) for name in names}, updated_at=now
        )
        if changed:
            audit.record("campaign.changed", request=request, tenant=obj.tenant, target=obj, fields=names)
        else:
            self.message_user(request, "It is no longer a draft: the changes were not saved.", messages.ERROR)

    # --- buttons and actions ---

    def get_urls(self):
        urls = [
            path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(self.button_view),
                {"action": name},
                name=f"campaigns_campaign_{name}",
            )
            for name in BUTTONS
        ]
        return urls + super().get_urls()

    def button_view(self, request: HttpRequest, pk: int, action: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_object_or_404(Campaign.objects.select_related("tenant", "connection", "segment"), pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        self._apply(request, [campaign], action)
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[pk]))

    def _apply(self, request: HttpRequest, campaigns, action: str) -> None:
        call, done = BUTTONS[action]
        for campaign in campaigns:
            try:
                call(campaign, request=request)
            except sending.CampaignError as error:
                self.message_user(request, f"{campaign.name}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign.name}: {done}.", messages.SUCCESS)

    def _selected(self, queryset):
        return queryset.select_related("tenant", "connection", "segment")

    @admin.action(description="Schedule now")
    def schedule_selected(self, request: HttpRequest, queryset) -> None:
        self._apply(request, self._selected(queryset), "schedule")

    @admin.action(description="Pause")
    def pause_selected(self, request: HttpRequest, queryset) -> None:
        self._apply(request, self._selected(queryset), "pause")

    @admin.action(description="Resume")
    def resume_selected(self, request: HttpRequest, queryset) -> None:
        self._apply(request, self._selected(queryset), "resume")

    @admin.action(description="Cancel")
    def cancel_selected(self, request: HttpRequest, queryset) -> None:
        self._apply(request, self._selected(queryset), "cancel")


# --- Recipients ------------------------------------------------------------------------------------


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    """Who a campaign went to, as frozen when it started; read only. Bodies are on the message's
    own page (linked), never here."""

    list_display = ["address", "campaign", "tenant", "state", "variant", "message_status", "short_error", "updated_at"]
    list_filter = ["state", "campaign__channel", "tenant"]
    search_fields = ["address", "campaign__name"]
    list_select_related = ["campaign", "tenant", "message"]
    fields = [
        "tenant",
        "campaign",
        "customer",
        "address",
        "first_name",
        "last_name",
        "variant",
        "state",
        "error",
        "message_link",
        "merge",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if _listing(request):
            return queryset.defer(
                "merge", "message__body", "message__html", "message__raw", "campaign__body", "campaign__html"
            )
        return queryset

    @admin.display(description="message")
    def message_status(self, obj: Recipient) -> str:
        return obj.message.get_status_display() if obj.message_id else "—"

    @admin.display(description="error")
    def short_error(self, obj: Recipient) -> str:
        return obj.error[:120]

    @admin.display(description="message")
    def message_link(self, obj: Recipient) -> str:
        if not obj.message_id:
            return "—"
        url = reverse("admin:campaigns_message_change", args=[obj.message_id])
        return format_html('<a href="{}">{}</a>', url, obj.message)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- Suppressions ----------------------------------------------------------------------------------


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionAdminForm
    list_display = ["address", "channel", "reason", "tenant", "campaign", "detail", "created_at"]
    list_filter = ["reason", "channel", "tenant"]
    search_fields = ["address"]
    list_select_related = ["tenant", "campaign"]

    def get_fields(self, request: HttpRequest, obj: Suppression | None = None):
        if obj is None:
            return ["tenant", "channel", "address", "detail"]
        return ["tenant", "channel", "address", "reason", "detail", "campaign", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # an address is added or removed, never changed

    def save_model(self, request: HttpRequest, obj: Suppression, form, change: bool) -> None:
        # Through consent.suppress, which audits the addition; the page then shows the stored row.
        consent.suppress(obj.tenant_id, obj.channel, obj.address, SuppressionReason.MANUAL, detail=obj.detail)
        stored = Suppression.objects.for_tenant(obj.tenant_id).get(channel=obj.channel, address=obj.address)
        obj.pk, obj.reason, obj.created_at = stored.pk, stored.reason, stored.created_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        consent.unsuppress(obj.tenant_id, obj.channel, obj.address)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for item in queryset:
            consent.unsuppress(item.tenant_id, item.channel, item.address)
