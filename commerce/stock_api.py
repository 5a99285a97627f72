"""The API of the hub's stock figures: `GET /api/v1/inventory/{sku}` (`products:read`) shows a SKU's
figure, its channel listings with the state of their last push, and the platforms' per-location
levels; `PUT /api/v1/inventory/{sku}` (`products:write`) sets the figure and pushes it to every
listing. The list at `/api/v1/inventory` stays the platforms' per-location levels.

A SKU goes in the path URL-encoded; one the tenant has no stock item for, or another tenant's, is a
404 like any other unknown object."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Prefetch, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api import request_tenant

from . import stock
from .models import ConflictStatus, InventoryLevel, Oversell, StockConflict, StockItem, StockListing
from .serializers import InventoryLevelSerializer

SKU = OpenApiParameter(
    "sku", OpenApiTypes.STR, OpenApiParameter.PATH, description="The SKU, URL-encoded (`TEE%2FRED` for TEE/RED)."
)


class StockPushStateSerializer(serializers.Serializer):
    status = serializers.CharField(source="push_status")
    quantity = serializers.IntegerField(source="pushed_quantity", allow_null=True, help_text="The last that landed.")
    pushed_at = serializers.DateTimeField(allow_null=True, help_text="When a push last landed.")
    attempts = serializers.IntegerField(source="push_attempts")
    message = serializers.CharField(source="push_message", help_text="The platform's reason when a push failed.")
    next_attempt_at = serializers.DateTimeField(source="next_push_at", allow_null=True)
    remote_id = serializers.CharField()


class StockListingSerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    platform = serializers.CharField(source="connection.platform", read_only=True)
    variant_id = serializers.IntegerField(read_only=True, allow_null=True)
    push = StockPushStateSerializer(source="*", read_only=True)

    class Meta:
        model = StockListing
        fields = [
            "id",
            "connection",
            "platform",
            "variant_id",
            "product_external_id",
            "variant_external_id",
            "location_id",
            "linked_by",
            "push",
        ]


class StockConflictSerializer(serializers.ModelSerializer):
    """`hub_quantity` is the hub's figure when the platform's last differed from it."""

    listing = serializers.IntegerField(source="listing_id", read_only=True)

    class Meta:
        model = StockConflict
        fields = ["id", "listing", "hub_quantity", "platform_quantity", "platform_seen_at", "created_at"]


class OversellSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="order_id", read_only=True)

    class Meta:
        model = Oversell
        fields = ["id", "order", "line_external_id", "quantity", "short", "created_at"]


class StockItemSerializer(serializers.ModelSerializer):
    """A SKU's stock across channels. `reorder_point_in_force` is its own reorder point, else the
    tenant's default; `low_stock` is whether `on_hand` is at or below it."""

    reorder_point_in_force = serializers.IntegerField(read_only=True)
    low_stock = serializers.BooleanField(read_only=True)
    listings = StockListingSerializer(many=True, read_only=True)
    levels = serializers.SerializerMethodField(help_text="The platforms' own per-location levels of its listings.")
    open_conflicts = StockConflictSerializer(many=True, read_only=True)
    oversold = OversellSerializer(many=True, read_only=True, help_text="Sales it had no stock for, still open.")

    class Meta:
        model = StockItem
        fields = [
            "sku",
            "title",
            "on_hand",
            "reorder_point",
            "reorder_point_in_force",
            "low_stock",
            "changed_at",
            "listings",
            "levels",
            "open_conflicts",
            "oversold",
        ]

    @extend_schema_field(InventoryLevelSerializer(many=True))
    def get_levels(self, item: StockItem) -> list[dict]:
        levels = (
            InventoryLevel.objects.filter(variant__stock_listings__item=item)
            .defer("raw")
            .annotate(
                platform=F("connection__platform"),
                sku=F("variant__sku"),
                variant_external_id=F("variant__external_id"),
                product_id=F("variant__product_id"),
            )
            .order_by("connection_id", "location_id", "pk")
        )
        return InventoryLevelSerializer(levels, many=True).data


class SetStockSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=0, help_text="Units available to sell on every channel.")
    reorder_point = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, help_text="Absent: unchanged. Null: the tenant's default."
    )


def stock_item(request: Request, sku: str) -> StockItem:
    """The caller's tenant's stock item of this SKU, with what its page shows, or a 404."""
    tenant = request_tenant(request)
    items = (
        StockItem.objects.for_tenant(tenant)
        .annotate(reorder_point_in_force=stock.reorder_point(tenant))
        .annotate(low_stock=Q(on_hand__lte=F("reorder_point_in_force")))
        .prefetch_related(
            Prefetch("listings", queryset=StockListing.objects.select_related("connection").order_by("pk")),
            Prefetch(
                "conflicts",
                queryset=StockConflict.objects.filter(status=ConflictStatus.OPEN).order_by("pk"),
                to_attr="open_conflicts",
            ),
            Prefetch(
                "oversells",
                queryset=Oversell.objects.filter(resolved_at__isnull=True).order_by("pk"),
                to_attr="oversold",
            ),
        )
    )
    return get_object_or_404(items, sku=sku)


class StockBySkuMixin:
    """For the inventory viewset: one SKU's stock item by its SKU, read and set."""

    lookup_field = "sku"
    lookup_url_kwarg = "sku"
    # Anything up to an optional trailing slash: SKUs may hold slashes (URL-encoded or not).
    lookup_value_regex = ".+?"

    @extend_schema(
        parameters=[SKU],
        responses=StockItemSerializer,
        description="A SKU's stock across channels (`products:read`): the hub's figure, each channel listing "
        "with its last push, the platforms' per-location levels, open conflicts and oversold sales.",
    )
    def retrieve(self, request: Request, sku: str) -> Response:
        return Response(StockItemSerializer(stock_item(request, sku)).data)

    @extend_schema(
        parameters=[SKU],
        request=SetStockSerializer,
        responses=StockItemSerializer,
        description="Set a SKU's stock (`products:write`): the hub's figure changes at once and is pushed to "
        "every listing of the SKU, a task per listing; each listing's `push` shows how it went.",
    )
    def update(self, request: Request, sku: str) -> Response:
        item = stock_item(request, sku)
        body = SetStockSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            if "reorder_point" in body.validated_data:
                StockItem.objects.filter(pk=item.pk).update(reorder_point=body.validated_data["reorder_point"])
            stock.set_stock(item, body.validated_data["quantity"], via="api", request=request)
        return Response(StockItemSerializer(stock_item(request, sku)).data)
