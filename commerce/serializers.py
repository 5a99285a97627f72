from __future__ import annotations

from rest_framework import serializers

from .models import Order, OrderLine


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["external_id", "sku", "title", "quantity", "unit_price", "total"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    customer_email = serializers.EmailField(source="email", read_only=True)

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
