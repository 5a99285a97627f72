from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tenants.models import Tenant, TenantStatus

from . import stock_admin  # noqa: F401  (registers the stock-across-channels pages)
from .fulfilment_admin import AwaitingFulfilmentFilter, FulfilmentInline, awaiting_ordering, order_age
from .models import (
    Customer,
    Fee,
    ImportJob,
    ImportKind,
    InventoryLevel,
    Order,
    OrderLine,
    Product,
    ProductVariant,
    Refund,
    Settlement,
)
from .upload_formats import UploadError
from .upload_views import job_page
from .uploads import create_job, max_upload_bytes


class ReadOnlyAdmin(admin.ModelAdmin):
    """Commerce rows come from the platforms (sync, webhooks, uploads): the admin shows them."""

    list_select_related = ["tenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["sku", "title", "quantity", "unit_price", "total"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ["amount", "currency", "reason", "refunded_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "tenant",
        "channel",
        "status",
        "financial_status",
        "fulfillment_status",
        "total",
        "currency",
        "placed_at",
        "age",
    ]
    list_filter = [AwaitingFulfilmentFilter, "channel", "status", "financial_status", "fulfillment_status", "tenant"]
    search_fields = ["number", "external_id", "email"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, RefundInline, FulfilmentInline]
    exclude = ["raw"]

    def get_ordering(self, request: HttpRequest):
        # "Awaiting fulfilment" lists every channel's orders still to ship, the oldest first.
        return awaiting_ordering(request) or super().get_ordering(request)

    @admin.display(description="age", ordering="placed_at")
    def age(self, order: Order) -> str:
        return order_age(order)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "email", "tenant", "country", "accepts_marketing", "platform_created_at"]
    list_filter = ["accepts_marketing", "country", "tenant"]
    search_fields = ["email", "first_name", "last_name", "external_id"]
    exclude = ["raw"]


class VariantInline(admin.TabularInline):
    model = ProductVariant
    fields = ["sku", "title", "price", "currency", "reorder_point"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = ["title", "tenant", "vendor", "product_type", "status"]
    list_filter = ["status", "tenant"]
    search_fields = ["title", "external_id", "variants__sku"]
    inlines = [VariantInline]
    exclude = ["raw"]


@admin.register(InventoryLevel)
class InventoryLevelAdmin(ReadOnlyAdmin):
    list_display = ["variant", "tenant", "location_name", "available", "platform_updated_at"]
    list_filter = ["tenant", "location_name"]
    search_fields = ["variant__sku", "variant__product__title"]
    list_select_related = ["tenant", "variant"]
    exclude = ["raw"]


@admin.register(Fee)
class FeeAdmin(ReadOnlyAdmin):
    list_display = ["posted_at", "tenant", "type", "platform_type", "event_type", "amount", "currency", "order", "sku"]
    list_filter = ["type", "event_type", "currency", "tenant"]
    search_fields = ["order_external_id", "external_id", "sku", "platform_type"]
    list_select_related = ["tenant", "order"]
    date_hierarchy = "posted_at"
    exclude = ["raw"]


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "tenant", "status", "started_at", "ended_at", "total", "currency", "transferred_at"]
    list_filter = ["status", "currency", "tenant"]
    search_fields = ["external_id"]
    date_hierarchy = "started_at"
    exclude = ["raw"]


class AdminUploadForm(forms.Form):
    tenant = forms.ModelChoiceField(label="Client", queryset=Tenant.objects.filter(status=TenantStatus.ACTIVE))
    kind = forms.ChoiceField(label="What the file holds", choices=ImportKind.choices)
    file = forms.FileField()


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Every client's uploads, read-only. "Add" uploads a file on a client's behalf, and each job
    opens on the same preview, mapping, errors and progress page the client sees."""

    list_display = [
        "original_filename",
        "tenant",
        "kind",
        "status",
        "rows_total",
        "rows_invalid",
        "rows_imported",
        "records_created",
        "records_updated",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "kind", "tenant"]
    list_select_related = ["tenant", "created_by"]
    search_fields = ["original_filename", "tenant__name"]
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = AdminUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                job = create_job(data["tenant"], data["file"], data["kind"], user=request.user, request=request)
            except UploadError as error:
                form.add_error("file", str(error))
            else:
                return redirect("admin:commerce_importjob_change", job.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload for a client",
            "opts": self.opts,
            "form": form,
            "max_megabytes": max_upload_bytes() // (1024 * 1024),
        }
        return render(request, "uploads/admin_new.html", context, status=400 if form.errors else 200)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        job = get_object_or_404(ImportJob.objects.select_related("tenant", "created_by"), pk=object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": str(job), "opts": self.opts}
        return job_page(
            request, job, editable=self.has_add_permission(request), template="uploads/admin_job.html", extra=context
        )
