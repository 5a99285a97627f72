"""Read-only API for the commerce records of the caller's tenant: orders, products, customers and
stock. Every list is cursor-paginated and filters on `platform` and `updated_since`."""

from __future__ import annotations

import datetime

from django.db.models import F, Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import mixins
from rest_framework.exceptions import ValidationError

from tenants.api import TenantScopedViewSet

from .models import Customer, InventoryLevel, Order, Product, ProductVariant
from .serializers import CustomerSerializer, InventoryLevelSerializer, OrderSerializer, ProductSerializer


def parse_timestamp(value: str, param: str = "updated_since") -> datetime.datetime:
    """An ISO 8601 date-time from a query parameter; a naive one is taken as UTC."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({param: "Use an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return moment


class CommerceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Base of the read-only commerce resources. `platform` filters on `platform_field`,
    `updated_since` on `updated_at`; subclasses add their own filters in `filter_rows`."""

    platform_field = "connection__platform"
    ordering: str | tuple[str, ...] = ("-updated_at", "-pk")
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet:
        qs = super().get_queryset()
        params = self.request.query_params
        if platform := params.get("platform"):
            qs = qs.filter(**{self.platform_field: platform})
        if since := params.get("updated_since"):
            qs = qs.filter(updated_at__gte=parse_timestamp(since))
        return self.filter_rows(qs, params)

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        return qs


class OrderViewSet(CommerceViewSet):
    """Orders of the caller's tenant. Filters: `platform`, `status`, `fulfillment_status`,
    `updated_since` (ISO 8601)."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    scope_resource = "orders"
    ordering = "-placed_at"
    platform_field = "channel"

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        qs = qs.prefetch_related("lines")
        if status := params.get("status"):
            qs = qs.filter(status=status)
        if fulfillment := params.get("fulfillment_status"):
            qs = qs.filter(fulfillment_status=fulfillment)
        return qs


class ProductViewSet(CommerceViewSet):
    """Products with their variants. Filters: `platform`, `status`, `updated_since`."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    scope_resource = "products"

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        # The raw platform payloads are not served, so they are not loaded either.
        variants = ProductVariant.objects.defer("raw").order_by("pk")
        qs = qs.defer("raw").annotate(platform=F("connection__platform"))
        qs = qs.prefetch_related(Prefetch("variants", queryset=variants))
        if status := params.get("status"):
            qs = qs.filter(status=status)
        return qs


class CustomerViewSet(CommerceViewSet):
    """Customers. Filters: `platform`, `updated_since`."""

    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    scope_resource = "customers"

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        return qs.defer("raw").annotate(platform=F("connection__platform"))


class InventoryViewSet(CommerceViewSet):
    """Stock per variant and location. Filters: `platform`, `updated_since`. Needs `products:read`."""

    queryset = InventoryLevel.objects.all()
    serializer_class = InventoryLevelSerializer
    scope_resource = "products"

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        return qs.defer("raw").annotate(
            platform=F("connection__platform"),
            sku=F("variant__sku"),
            variant_external_id=F("variant__external_id"),
            product_id=F("variant__product_id"),
        )
