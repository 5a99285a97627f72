"""The payments API's bodies. Amounts are strings with the currency's own places ("10.50", ¥"500")."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .gateways import GATEWAYS
from .gateways.base import PaymentStatus, RefundStatus
from .models import Payment, Refund, RefundSource, format_amount

# Amounts are served as strings in the currency's own places, never as floats.
AMOUNT_SCHEMA = {"type": "string", "format": "decimal", "example": "10.50"}
AMOUNT_HELP = "A decimal string with no more places than the currency has: 10.50 USD, 500 JPY, 1.234 KWD."


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """A model's amount written with its currency's number of places."""

    def __init__(self, currency_field: str = "currency", **kwargs) -> None:
        self.currency_field = currency_field
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return super().get_attribute(instance), getattr(instance, self.currency_field)

    def to_representation(self, value) -> str | None:
        amount, currency = value
        return None if amount is None else format_amount(amount, currency)


class RefundSerializer(serializers.ModelSerializer):
    amount = AmountField()
    status = serializers.ChoiceField(choices=RefundStatus.choices, read_only=True)
    source = serializers.ChoiceField(choices=RefundSource.choices, read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "amount",
            "currency",
            "reason",
            "status",
            "source",
            "gateway_id",
            "idempotency_key",
            "failure_code",
            "failure_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    gateway = serializers.CharField(source="connection.platform", read_only=True, help_text="e.g. stripe")
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    order = serializers.IntegerField(source="order_id", read_only=True, allow_null=True)
    amount = AmountField()
    presentment_amount = AmountField(currency_field="presentment_currency", allow_null=True)
    amount_captured = AmountField()
    amount_refunded = AmountField()
    amount_refundable = serializers.SerializerMethodField(help_text="Captured, less refunded and pending refunds.")
    status = serializers.ChoiceField(choices=PaymentStatus.choices, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "uuid",
            "gateway",
            "connection",
            "order",
            "amount",
            "currency",
            "presentment_amount",
            "presentment_currency",
            "status",
            "capture",
            "amount_captured",
            "amount_refunded",
            "amount_refundable",
            "gateway_id",
            "approval_url",
            "failure_code",
            "failure_message",
            "description",
            "customer",
            "payment_method",
            "metadata",
            "idempotency_key",
            "refunds",
            "status_updated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(AMOUNT_SCHEMA)
    def get_amount_refundable(self, payment: Payment) -> str:
        return format_amount(payment.refundable, payment.currency)


class NewPaymentSerializer(PaymentSerializer):
    client_secret = serializers.SerializerMethodField(
        help_text="For the customer's browser to finish a payment that requires action (Stripe). Only in this "
        "answer: it is never shown again."
    )

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "client_secret"]
        read_only_fields = fields

    def get_client_secret(self, payment: Payment) -> str:
        return payment.client_secret or ""


class CreatePaymentSerializer(serializers.Serializer):
    gateway = serializers.ChoiceField(
        choices=list(GATEWAYS),
        required=False,
        help_text="The gateway: your one enabled connection of it is used (give `connection` if you have several).",
    )
    connection = serializers.IntegerField(required=False, min_value=1, help_text="Your payment connection's id.")
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=4, min_value=Decimal("0.0001"), coerce_to_string=True, help_text=AMOUNT_HELP
    )
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217, e.g. USD.")
    presentment_amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        required=False,
        allow_null=True,
        help_text="The amount in the customer-facing currency, where it differs.",
    )
    presentment_currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, allow_blank=True)
    customer = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    payment_method = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="The gateway's payment method id or token (pm_…, a nonce, an opaque data token). Never card data.",
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    metadata = serializers.DictField(
        child=serializers.CharField(max_length=500, allow_blank=True), required=False, default=dict
    )
    order = serializers.IntegerField(required=False, allow_null=True, min_value=1, help_text="Your order's id.")
    capture = serializers.BooleanField(required=False, default=True, help_text="False: authorise only.")
    return_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    cancel_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("gateway") and not attrs.get("connection"):
            raise serializers.ValidationError({"gateway": "Give the gateway or the connection's id."})
        return attrs


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        required=False,
        allow_null=True,
        help_text="Absent: all that is left. " + AMOUNT_HELP,
    )
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CaptureRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        required=False,
        allow_null=True,
        help_text="Absent: the whole authorised amount.",
    )


class PaymentSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    amount_refunded = serializers.CharField()
    amount_refundable = serializers.CharField()


class RefundResultSerializer(RefundSerializer):
    payment = serializers.SerializerMethodField()

    class Meta(RefundSerializer.Meta):
        fields = [*RefundSerializer.Meta.fields, "payment"]
        read_only_fields = fields

    @extend_schema_field(PaymentSummarySerializer)
    def get_payment(self, refund: Refund) -> dict:
        payment = refund.payment
        return {
            "id": payment.pk,
            "status": payment.status,
            "amount_refunded": format_amount(payment.amount_refunded, payment.currency),
            "amount_refundable": format_amount(payment.refundable, payment.currency),
        }


# --- Stats -------------------------------------------------------------------------------------------


class CurrencyFiguresSerializer(serializers.Serializer):
    currency = serializers.CharField()
    successful = serializers.IntegerField()
    volume = serializers.CharField(help_text="Captured by the successful payments.")
    refunded = serializers.CharField()
    net = serializers.CharField()
    average = serializers.CharField(help_text="Volume per successful payment.")


class CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    successful = serializers.IntegerField(help_text="Taken: succeeded, partially refunded, refunded or disputed.")
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="Per cent of those that ended (taken or failed).")


class GatewayFiguresSerializer(CountsSerializer):
    gateway = serializers.CharField()
    label = serializers.CharField()
    volume = CurrencyFiguresSerializer(many=True)


class ActiveGatewaySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    gateway = serializers.CharField()
    status = serializers.CharField(help_text="The connection's status (connected, failing, …).")


class AvailableGatewaySerializer(serializers.Serializer):
    gateway = serializers.CharField()
    label = serializers.CharField()


class PaymentStatsSerializer(CountsSerializer):
    by_status = serializers.DictField(child=serializers.IntegerField())
    volume = CurrencyFiguresSerializer(many=True, help_text="Per currency: mixed currencies are never added up.")
    gateways = GatewayFiguresSerializer(many=True)
    gateways_active = ActiveGatewaySerializer(many=True, help_text="Your enabled payment connections.")
    gateways_available = AvailableGatewaySerializer(many=True, help_text="Every gateway the hub supports.")
