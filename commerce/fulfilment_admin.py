"""Fulfilment in the SuperAdmin dashboard: every client's fulfilments with their push results, the
auto-fulfilment rules (with the dry run on each rule's page) and settings, and the order list's
"Awaiting fulfilment" filter (every channel, oldest first, with each order's age)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .fulfilment import WAITING
from .fulfilment_rules import RuleError, check_rule, preview
from .fulfilment_views import age
from .metrics import channel_label
from .models import Fulfilment, FulfilmentRule, FulfilmentSettings, OrderStatus

AWAITING = "awaiting"


class AwaitingFulfilmentFilter(admin.SimpleListFilter):
    """Orders still to ship: not cancelled, unfulfilled or partly fulfilled. The order admin lists
    them oldest first (`awaiting_ordering`)."""

    title = "awaiting fulfilment"
    parameter_name = AWAITING

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [("yes", "Awaiting fulfilment, oldest first")]

    def queryset(self, request: HttpRequest, queryset):
        if self.value() == "yes":
            return queryset.filter(fulfillment_status__in=WAITING).exclude(status=OrderStatus.CANCELLED)
        return queryset


def awaiting_ordering(request: HttpRequest) -> list[str] | None:
    return ["placed_at", "pk"] if request.GET.get(AWAITING) == "yes" else None


def order_age(order) -> str:
    return age(order.placed_at)


@admin.register(Fulfilment)
class FulfilmentAdmin(admin.ModelAdmin):
    """Read-only: fulfilments are made by clients (dashboard, API, rules) and pushed by the worker."""

    list_display = [
        "id",
        "order_link",
        "tenant",
        "channel",
        "status",
        "carrier",
        "tracking_number",
        "source",
        "attempts",
        "short_error",
        "created_at",
    ]
    list_filter = ["status", "source", "carrier", "tenant"]
    search_fields = ["tracking_number", "order__number", "remote_id"]
    list_select_related = ["order", "tenant"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Fulfilment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="order", ordering="order__number")
    def order_link(self, fulfilment: Fulfilment) -> str:
        return format_html('<a href="../order/{}/change/">#{}</a>', fulfilment.order_id, fulfilment.order.number)

    @admin.display(description="channel", ordering="order__channel")
    def channel(self, fulfilment: Fulfilment) -> str:
        return channel_label(fulfilment.order.channel)

    @admin.display(description="last error")
    def short_error(self, fulfilment: Fulfilment) -> str:
        return fulfilment.last_error[:120]


class RuleAdminForm(forms.ModelForm):
    class Meta:
        model = FulfilmentRule
        fields = [
            "tenant",
            "name",
            "enabled",
            "connection",
            "skus",
            "sku_prefix",
            "carrier",
            "tracking_number",
            "notify_customer",
        ]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors or not data.get("tenant"):
            return data
        try:
            data["carrier"] = check_rule(
                data["tenant"],
                carrier=data.get("carrier", ""),
                skus=data.get("skus") or [],
                sku_prefix=data.get("sku_prefix", ""),
                connection=data.get("connection"),
            )
        except RuleError as problem:
            field = problem.field if problem.field in self.fields else None
            self.add_error(field, str(problem))
        return data


@admin.register(FulfilmentRule)
class FulfilmentRuleAdmin(admin.ModelAdmin):
    form = RuleAdminForm
    list_display = [
        "name",
        "tenant",
        "enabled",
        "carrier",
        "sku_prefix",
        "connection",
        "orders_fulfilled",
        "last_error",
    ]
    list_filter = ["enabled", "tenant"]
    search_fields = ["name", "sku_prefix"]
    list_select_related = ["tenant", "connection"]
    readonly_fields = ["enabled_at", "orders_fulfilled", "last_error", "last_error_at", "created_at", "dry_run"]

    @admin.display(description="Dry run (recent orders still to ship it matches)")
    def dry_run(self, rule: FulfilmentRule) -> str:
        if not rule.pk:
            return "Save the rule to preview it."
        matches = preview(rule)
        if not matches:
            return "No recent order still to ship matches it."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>#{} ({}, {}): {}</li>",
                (
                    (
                        m.order.number,
                        channel_label(m.order.channel),
                        f"{m.order.placed_at:%Y-%m-%d %H:%M} UTC",
                        ", ".join(f"{q} x {label}" for _, label, q in m.lines) or "every line left",
                    )
                    for m in matches
                ),
            ),
        )


@admin.register(FulfilmentSettings)
class FulfilmentSettingsAdmin(admin.ModelAdmin):
    list_display = ["tenant", "sla_hours", "notify_customers", "updated_at"]
    list_select_related = ["tenant"]
    readonly_fields = ["updated_at"]


class FulfilmentInline(admin.TabularInline):
    """An order's fulfilments with their push results, on the order's admin page."""

    model = Fulfilment
    fields = ["status", "carrier", "tracking_number", "lines", "source", "attempts", "last_error", "remote_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
