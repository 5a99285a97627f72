"""The SuperAdmin's side of stock across channels: SKUs with their figure (editing it pushes it to
every listing), their listings (linked by SKU, or by hand: adding or changing one here pins it), the
state of each push with a "Push again" action, conflicts waiting for a person with accept-hub and
accept-platform actions, oversold sales, and the per-connection and per-client settings."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from integrations.models import Connection

from . import stock
from .models import (
    ConflictStatus,
    LinkSource,
    Oversell,
    StockAlertSettings,
    StockChannelSettings,
    StockConflict,
    StockItem,
    StockListing,
)

PUSH_FIELDS = ["push_status", "push_attempts", "push_message", "pushed_quantity", "pushed_at", "next_push_at"]


class ListingForm(forms.ModelForm):
    class Meta:
        model = StockListing
        fields = ["item", "connection", "product_external_id", "variant_external_id", "location_id"]

    def clean(self) -> dict:
        data = super().clean()
        item, connection = data.get("item") or getattr(self.instance, "item", None), data.get("connection")
        if item is not None and connection is not None and connection.tenant_id != item.tenant_id:
            raise ValidationError("The connection belongs to another client than the SKU.")
        return data


def save_listing_by_hand(listing: StockListing) -> None:
    """A listing a person added or changed: pinned (sync never moves it), pointing at the synced
    variant of its ids when there is one, and given the hub's figure."""
    from .models import ProductVariant

    listing.tenant_id = listing.item.tenant_id
    listing.linked_by = LinkSource.MANUAL
    listing.variant = (
        ProductVariant.objects.filter(connection=listing.connection, external_id=listing.variant_external_id).first()
        if listing.variant_external_id
        else None
    )
    listing.save()
    stock.queue_pushes(StockListing.objects.filter(pk=listing.pk))


class StockListingInline(admin.TabularInline):
    model = StockListing
    form = ListingForm
    fk_name = "item"
    fields = ["connection", "product_external_id", "variant_external_id", "location_id", "linked_by", *PUSH_FIELDS]
    readonly_fields = ["linked_by", *PUSH_FIELDS]
    extra = 0

    def get_formset(self, request: HttpRequest, obj: StockItem | None = None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Only the SKU's own client's connections can list it.
        connections = Connection.objects.for_tenant(obj.tenant) if obj else Connection.objects.none()
        formset.form.base_fields["connection"].queryset = connections
        return formset


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "tenant", "title", "on_hand", "reorder_point", "is_low", "channels", "changed_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["sku", "title", "tenant__name"]
    readonly_fields = ["version", "changed_at", "counted_at", "low_since", "created_at"]
    inlines = [StockListingInline]
    actions = ["push_again"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(channel_count=Count("listings"))

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # A SKU's client and the SKU itself are fixed once it exists (listings hang on them).
        return [*self.readonly_fields, *(["tenant", "sku"] if obj else [])]

    @admin.display(description="channels", ordering="channel_count")
    def channels(self, item: StockItem) -> int:
        return item.channel_count

    @admin.display(description="low", boolean=True)
    def is_low(self, item: StockItem) -> bool:
        point = item.reorder_point if item.reorder_point is not None else item.tenant.default_reorder_point
        return item.on_hand <= point

    def save_model(self, request: HttpRequest, obj: StockItem, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            stock.check_low_stock(obj.tenant, [obj.pk])
            return
        with transaction.atomic():
            StockItem.objects.filter(pk=obj.pk).update(title=obj.title, reorder_point=obj.reorder_point)
            if "on_hand" in form.changed_data:
                stock.set_stock(obj, obj.on_hand, via="admin", request=request)
            elif "reorder_point" in form.changed_data:
                stock.check_low_stock(obj.tenant, [obj.pk])

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not StockListing:
            return super().save_formset(request, form, formset, change)
        listings = formset.save(commit=False)
        for listing in formset.deleted_objects:
            listing.delete()
        for listing in listings:
            listing.item = form.instance
            save_listing_by_hand(listing)
        formset.save_m2m()

    @admin.action(description="Push the figure to every channel again")
    def push_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        queued = stock.queue_pushes(StockListing.objects.filter(item__in=queryset))
        self.message_user(request, f"Pushing to {len(queued)} listing(s).", messages.SUCCESS)


@admin.register(StockListing)
class StockListingAdmin(admin.ModelAdmin):
    form = ListingForm
    list_display = ["item", "tenant", "connection", "variant_external_id", "location_id", "linked_by"]
    list_display += ["push_status", "pushed_quantity", "short_message", "pushed_at"]
    list_filter = ["push_status", "linked_by", "tenant"]
    list_select_related = ["item", "tenant", "connection"]
    search_fields = ["item__sku", "variant_external_id", "product_external_id"]
    raw_id_fields = ["item"]
    readonly_fields = [*PUSH_FIELDS, "remote_id", "linked_by", "adopted_at"]
    actions = ["push_again"]

    @admin.display(description="message")
    def short_message(self, listing: StockListing) -> str:
        return listing.push_message[:120]

    def save_model(self, request: HttpRequest, obj: StockListing, form, change: bool) -> None:
        save_listing_by_hand(obj)

    @admin.action(description="Push again")
    def push_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        queued = stock.queue_pushes(queryset)
        self.message_user(request, f"Pushing to {len(queued)} listing(s).", messages.SUCCESS)


@admin.register(StockConflict)
class StockConflictAdmin(admin.ModelAdmin):
    list_display = ["item", "tenant", "listing", "hub_quantity", "platform_quantity", "platform_seen_at", "status"]
    list_filter = ["status", "tenant"]
    list_select_related = ["item", "tenant", "listing__connection"]
    search_fields = ["item__sku"]
    actions = ["accept_hub", "accept_platform"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Open ones first.
        return super().get_queryset(request).order_by(F("resolved_at").desc(nulls_first=True), "-created_at")

    def _resolve(self, request: HttpRequest, queryset: QuerySet, accept: str) -> None:
        done = sum(
            stock.resolve_conflict(c, accept, request=request) for c in queryset.filter(status=ConflictStatus.OPEN)
        )
        self.message_user(request, f"{done} conflict(s) settled with the {accept}'s figure.", messages.SUCCESS)

    @admin.action(description="Accept the hub's figure (push it to the platform)")
    def accept_hub(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, "hub")

    @admin.action(description="Accept the platform's figure (push it to the other channels)")
    def accept_platform(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, "platform")


@admin.register(Oversell)
class OversellAdmin(admin.ModelAdmin):
    list_display = ["sku", "tenant", "order", "line_external_id", "quantity", "short", "created_at", "resolved_at"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "tenant"]
    list_select_related = ["tenant", "order"]
    search_fields = ["sku", "order__number"]
    actions = ["mark_resolved"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Mark as dealt with")
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now(), resolved_by=request.user)
        self.message_user(request, f"{done} oversold sale(s) marked as dealt with.", messages.SUCCESS)


@admin.register(StockChannelSettings)
class StockChannelSettingsAdmin(admin.ModelAdmin):
    list_display = ["connection", "tenant", "conflict_strategy"]
    list_filter = ["conflict_strategy", "tenant"]
    list_select_related = ["connection", "tenant"]
    fields = ["connection", "conflict_strategy"]

    def save_model(self, request: HttpRequest, obj: StockChannelSettings, form, change: bool) -> None:
        obj.tenant_id = obj.connection.tenant_id
        super().save_model(request, obj, form, change)


@admin.register(StockAlertSettings)
class StockAlertSettingsAdmin(admin.ModelAdmin):
    list_display = ["tenant", "email_owners"]
    list_filter = ["email_owners"]
