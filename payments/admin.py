"""Payments in the SuperAdmin dashboard: the list with its filters and per-gateway figures, each
payment with its refunds, a Refund action that asks for the amount, and "Ask the gateway again" for
a charge or refund whose answer never came. Payments are made through the API, never here; no card
data is shown anywhere (there is none: the hub keeps gateway tokens only), nor the client secret."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from integrations.platforms import CATALOGUE

from . import service
from .gateways import GATEWAYS
from .gateways.base import PaymentStatus, RefundStatus
from .models import Payment, Refund, format_amount
from .stats import figures

CARDLIKE = re.compile(r"card|account|last4|bin|expir", re.IGNORECASE)
COLOURS = {
    PaymentStatus.SUCCEEDED: "#1a7f37",
    PaymentStatus.FAILED: "#b42318",
    PaymentStatus.DISPUTED: "#b42318",
    PaymentStatus.REQUIRES_ACTION: "#b54708",
    PaymentStatus.PROCESSING: "#175cd3",
    PaymentStatus.AUTHORIZED: "#175cd3",
    PaymentStatus.PARTIALLY_REFUNDED: "#667085",
    PaymentStatus.REFUNDED: "#667085",
    PaymentStatus.CANCELED: "#667085",
}


class GatewayFilter(admin.SimpleListFilter):
    title = "gateway"
    parameter_name = "gateway"

    def lookups(self, request, model_admin):
        return [(platform, CATALOGUE[platform].label) for platform in GATEWAYS if platform in CATALOGUE]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(connection__platform=self.value())
        return queryset


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ["created_at", "amount", "currency", "status", "source", "reason", "gateway_id", "failure_message"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.0001"),
        max_digits=18,
        decimal_places=4,
        help_text="Empty: all that is left of each payment. An amount refunds part of one payment.",
    )
    reason = forms.CharField(required=False, max_length=500)


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "gateway",
        "amount_display",
        "status_badge",
        "refunded_display",
        "gateway_id",
        "failure_code",
    ]
    list_filter = ["status", GatewayFilter, "currency", "created_at", "tenant"]
    search_fields = ["gateway_id", "gateway_reference", "idempotency_key", "refunds__gateway_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "connection"]
    inlines = [RefundInline]
    actions = ["refund_selected", "resend_selected"]
    change_list_template = "admin/payments/payment/change_list.html"
    fields = [
        "tenant",
        "connection",
        "order",
        "uuid",
        "amount",
        "currency",
        "presentment_amount",
        "presentment_currency",
        "status",
        "capture",
        "amount_captured",
        "amount_refunded",
        "gateway_id",
        "gateway_reference",
        "approval_url",
        "failure_code",
        "failure_message",
        "description",
        "customer",
        "payment_method",
        "metadata",
        "gateway_ids",
        "idempotency_key",
        "status_updated_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="gateway ids")
    def gateway_ids(self, payment: Payment) -> str:
        # The ids a gateway answered beside its own (capture, charge, order); never what describes a
        # card, even masked (Authorize.Net keeps the masked number its refunds need).
        shown = {k: v for k, v in (payment.extra or {}).items() if not CARDLIKE.search(k)}
        return ", ".join(f"{k}: {v}" for k, v in sorted(shown.items())) or "—"

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_payment")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("raw", "client_secret")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            # Over every payment the filters select, not only this page.
            response.context_data["gateway_figures"] = figures(cl.queryset)
        return response

    @admin.display(description="gateway", ordering="connection__platform")
    def gateway(self, payment: Payment) -> str:
        return payment.connection.get_platform_display()

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return f"{format_amount(payment.amount, payment.currency)} {payment.currency}"

    @admin.display(description="refunded", ordering="amount_refunded")
    def refunded_display(self, payment: Payment) -> str:
        return format_amount(payment.amount_refunded, payment.currency) if payment.amount_refunded else "—"

    @admin.display(description="status", ordering="status")
    def status_badge(self, payment: Payment) -> str:
        colour = COLOURS.get(payment.status, "#000")
        return format_html('<strong style="color:{}">{}</strong>', colour, payment.get_status_display())

    @admin.action(description="Refund…", permissions=["refund"])
    def refund_selected(self, request: HttpRequest, queryset):
        payments = list(queryset.select_related("connection", "tenant").prefetch_related("refunds"))
        form = RefundForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
            if amount is not None and len(payments) > 1:
                form.add_error("amount", "Choose one payment to refund part of it, or leave it empty.")
            else:
                for payment in payments:
                    self._refund(request, payment, amount, reason)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund payments",
            "opts": self.model._meta,
            "form": form,
            "payments": [
                (p, f"{format_amount(p.refundable, p.currency)} {p.currency}", p.status in service.REFUNDABLE)
                for p in payments
            ],
            "action": "refund_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    def _refund(self, request: HttpRequest, payment: Payment, amount, reason: str) -> None:
        try:
            refund = service.refund(payment, amount, reason, request=request)
        except service.PaymentError as error:
            self.message_user(request, f"Payment {payment.pk}: {error.message}", messages.ERROR)
            return
        text = f"Payment {payment.pk}: refund of {format_amount(refund.amount, refund.currency)} {refund.currency}"
        if refund.status == RefundStatus.FAILED:
            self.message_user(request, f"{text} failed: {refund.failure_message}", messages.ERROR)
        elif refund.status == RefundStatus.PENDING:
            note = f" ({refund.failure_message})" if refund.failure_message else ""
            self.message_user(request, f"{text} is pending at the gateway{note}.", messages.WARNING)
        else:
            self.message_user(request, f"{text} succeeded.", messages.SUCCESS)

    @admin.action(description="Ask the gateway again (same idempotency keys)", permissions=["refund"])
    def resend_selected(self, request: HttpRequest, queryset) -> None:
        for payment in queryset.select_related("connection", "tenant"):
            payment = service.resend(payment)
            self.message_user(request, f"Payment {payment.pk}: {payment.get_status_display()}.", messages.INFO)
