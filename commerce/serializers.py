from __future__ import annotations

from rest_framework import serializers

from .models import Customer, InventoryLevel, Order, OrderLine, Product, ProductVariant


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        # `id` is what a fulfilment names a line by (POST /orders/{id}/fulfil).
        fields = ["id", "external_id", "sku", "title", "quantity", "unit_price", "total"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    customer_email = serializers.EmailField(source="email", read_only=True, allow_blank=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "external_id",
            "number",
            "channel",
            "status",
            "financial_status",
            "fulfillment_status",
            "currency",
            "subtotal",
            "discounts",
            "shipping",
            "tax",
            "total",
            "placed_at",
            "platform_updated_at",
            "updated_at",
            "customer_email",
            "lines",
        ]


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductVariant
        fields = ["id", "external_id", "sku", "title", "price", "currency", "reorder_point", "platform_updated_at"]


class ProductSerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    platform = serializers.CharField(read_only=True)
    variants = VariantSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "external_id",
            "connection",
            "platform",
            "title",
            "vendor",
            "product_type",
            "status",
            "platform_updated_at",
            "created_at",
            "updated_at",
            "variants",
        ]


class CustomerSerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    platform = serializers.CharField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "connection",
            "platform",
            "email",
            "first_name",
            "last_name",
            "phone",
            "country",
            "accepts_marketing",
            "tags",
            "platform_created_at",
            "platform_updated_at",
            "created_at",
            "updated_at",
        ]


class InventoryLevelSerializer(serializers.ModelSerializer):
    """One variant's stock at one location. `sku`, `variant_external_id`, `product_id` and
    `platform` are annotated on the queryset, so a page is one query."""

    connection = serializers.IntegerField(source="connection_id", read_only=True)
    platform = serializers.CharField(read_only=True)
    sku = serializers.CharField(read_only=True)
    variant_id = serializers.IntegerField(read_only=True)
    variant_external_id = serializers.CharField(read_only=True)
    product_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = InventoryLevel
        fields = [
            "id",
            "external_id",
            "connection",
            "platform",
            "sku",
            "variant_id",
            "variant_external_id",
            "product_id",
            "location_id",
            "location_name",
            "available",
            "platform_updated_at",
            "updated_at",
        ]
