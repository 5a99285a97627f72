from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant, Refund


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
    ]
    list_filter = ["channel", "status", "financial_status", "fulfillment_status", "tenant"]
    search_fields = ["number", "external_id", "email"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, RefundInline]
    exclude = ["raw"]


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
