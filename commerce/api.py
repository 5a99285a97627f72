"""Read-only API for the commerce records of the caller's tenant: orders, products, customers and
stock. Every list is cursor-paginated, filters on `platform` and `updated_since`, and may be ordered
by the fields in its `ordering_fields`."""

from __future__ import annotations

from django.db.models import F, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api import UPDATED_SINCE, TenantScopedViewSet, parse_timestamp

from .fulfilment_api import FulfilmentSerializer, FulfilSerializer, fulfil_order
from .models import Customer, FulfillmentStatus, InventoryLevel, Order, OrderLine, OrderStatus, Product, ProductVariant
from .serializers import CustomerSerializer, InventoryLevelSerializer, OrderSerializer, ProductSerializer
from .stock_api import StockBySkuMixin

__all__ = ["CustomerViewSet", "InventoryViewSet", "OrderViewSet", "ProductViewSet", "parse_timestamp"]


def list_filters(*extra: OpenApiParameter) -> type:
    """The schema of a commerce list's query parameters: `platform`, `updated_since` and `extra`."""
    platform = OpenApiParameter("platform", OpenApiTypes.STR, description="Only records from this platform.")
    return extend_schema_view(list=extend_schema(parameters=[platform, UPDATED_SINCE, *extra]))


class CommerceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Base of the read-only commerce resources. `platform` filters on `platform_field`,
    `updated_since` on `updated_at`; subclasses add their own filters in `filter_rows`."""

    platform_field = "connection__platform"
    ordering: str | tuple[str, ...] = ("-updated_at", "-pk")
    ordering_fields: tuple[str, ...] = ("updated_at", "id")
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


@extend_schema(tags=["orders"])
@list_filters(
    OpenApiParameter("status", OpenApiTypes.STR, enum=OrderStatus.values, description="Only this status."),
    OpenApiParameter(
        "fulfillment_status", OpenApiTypes.STR, enum=FulfillmentStatus.values, description="Only this fulfilment."
    ),
)
class OrderViewSet(CommerceViewSet):
    """Orders of the caller's tenant. Filters: `platform`, `status`, `fulfillment_status`,
    `updated_since` (ISO 8601). Orders still to ship (`fulfillment_status` `unfulfilled` or
    `partial`) are listed oldest first unless `ordering` says otherwise."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    scope_resource = "orders"
    ordering = "-placed_at"
    ordering_fields = ("placed_at", "updated_at", "total", "id")
    platform_field = "channel"

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        # The raw platform payloads (and the addresses) are not served, so they are not loaded either.
        lines = OrderLine.objects.defer("raw")
        qs = qs.defer("raw", "billing_address", "shipping_address").prefetch_related(Prefetch("lines", queryset=lines))
        if status := params.get("status"):
            qs = qs.filter(status=status)
        if fulfillment := params.get("fulfillment_status"):
            qs = qs.filter(fulfillment_status=fulfillment)
            if fulfillment in (FulfillmentStatus.UNFULFILLED, FulfillmentStatus.PARTIAL):
                # Orders waiting to ship are a work queue: the oldest comes first.
                self.ordering = ("placed_at", "id")
        return qs

    @extend_schema(
        request=FulfilSerializer,
        responses={202: FulfilmentSerializer},
        description="Fulfil the order (`orders:write`): the carrier in any spelling the order's platform accepts "
        "(a 400 lists `accepted_carriers` otherwise), the lines shipped (absent: every line still unfulfilled; "
        "quantities at most what is left). Answers 202 with the fulfilment; its push to the platform follows "
        "(`GET /fulfillments/{id}`), and the order's `fulfillment_status` changes once the platform accepts it.",
    )
    @action(detail=True, methods=["post"], url_path="fulfil", parser_classes=[JSONParser])
    def fulfil(self, request: Request, pk: str | None = None) -> Response:
        return fulfil_order(request, self.get_object())


@extend_schema(tags=["products"])
@list_filters(OpenApiParameter("status", OpenApiTypes.STR, description="Only this status, e.g. active."))
class ProductViewSet(CommerceViewSet):
    """Products with their variants. Filters: `platform`, `status`, `updated_since`."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    scope_resource = "products"
    ordering_fields = ("updated_at", "created_at", "title", "id")

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        # The raw platform payloads are not served, so they are not loaded either.
        variants = ProductVariant.objects.defer("raw").order_by("pk")
        qs = qs.defer("raw").annotate(platform=F("connection__platform"))
        qs = qs.prefetch_related(Prefetch("variants", queryset=variants))
        if status := params.get("status"):
            qs = qs.filter(status=status)
        return qs


@extend_schema(tags=["customers"])
@list_filters()
class CustomerViewSet(CommerceViewSet):
    """Customers. Filters: `platform`, `updated_since`."""

    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    scope_resource = "customers"
    ordering_fields = ("updated_at", "created_at", "id")

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        return qs.defer("raw").annotate(platform=F("connection__platform"))


@extend_schema(tags=["inventory"])
@list_filters()
class InventoryViewSet(StockBySkuMixin, CommerceViewSet):
    """Stock per variant and location as the platforms report it (the list; filters: `platform`,
    `updated_since`), and one SKU's stock across channels by its SKU (`/inventory/{sku}`: read with
    `products:read`, set with `products:write`; commerce.stock_api)."""

    queryset = InventoryLevel.objects.all()
    serializer_class = InventoryLevelSerializer
    scope_resource = "products"
    ordering_fields = ("updated_at", "available", "id")

    def filter_rows(self, qs: QuerySet, params) -> QuerySet:
        return qs.defer("raw").annotate(
            platform=F("connection__platform"),
            sku=F("variant__sku"),
            variant_external_id=F("variant__external_id"),
            product_id=F("variant__product_id"),
        )
