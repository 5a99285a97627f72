"""The payments API: take a payment through one of the caller's gateways, list and read payments,
refund, capture, and the figures. Tenant-scoped through `TenantScopedViewSet` (another tenant's
payment is a 404); API keys need `payments:read` or `payments:write`.

- `POST /payments` → 201 with the payment, its status (succeeded, requires_action, failed, …) and,
  only in this answer, the client secret; a PayPal payment carries its approval link.
- `GET /payments` (filters `status`, `gateway`, `connection`, `currency`, `order`, `created_after`,
  `created_before`), `GET /payments/{id}`
- `POST /payments/{id}/refund` → 201 with the refund; `POST /payments/{id}/capture` → the payment
- `GET /payments/stats`
What the gateway answered is in the objects (status, failure code and message), never an error.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from commerce.models import Order
from tenants.api import TenantScopedViewSet, choice_param, parse_timestamp
from tenants.schema import ErrorSerializer

from . import service
from .gateways import GATEWAYS
from .gateways.base import PaymentStatus
from .models import Payment
from .serializers import (
    CaptureRequestSerializer,
    CreatePaymentSerializer,
    NewPaymentSerializer,
    PaymentSerializer,
    PaymentStatsSerializer,
    RefundRequestSerializer,
    RefundResultSerializer,
)
from .stats import available_gateways, figures

CONFLICT = OpenApiResponse(ErrorSerializer, description="The payment's status does not allow it.")
BAD_DATES = OpenApiResponse(ErrorSerializer, description="A date-time that is not ISO 8601.")
CREATED_RANGE = [
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Only payments created at or after this."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Only payments created before this."),
]
LIST_FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=PaymentStatus.values, description="Only this status."),
    OpenApiParameter("gateway", OpenApiTypes.STR, enum=list(GATEWAYS), description="Only this gateway."),
    OpenApiParameter("connection", OpenApiTypes.INT, description="Only this payment connection."),
    OpenApiParameter("currency", OpenApiTypes.STR, description="Only this currency, e.g. USD."),
    OpenApiParameter("order", OpenApiTypes.INT, description="Only payments of this order."),
    *CREATED_RANGE,
]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The payment's status does not allow this."
    default_code = "conflict"


def refused(error: service.PaymentError) -> APIException:
    if isinstance(error, service.StateConflict):
        return Conflict(error.message)
    return ValidationError({error.field: [error.message]})


def int_param(params, name: str) -> int | None:
    value = params.get(name)
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationError({name: "Use a whole number id."})
    return int(value)


@extend_schema(tags=["payments"])
@extend_schema_view(list=extend_schema(parameters=LIST_FILTERS))
class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The caller's payments, newest first."""

    queryset = Payment.objects.all()
    serializer_class = PaymentSerializer
    scope_resource = "payments"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-pk")
    ordering_fields = ("created_at", "amount", "id")

    def get_queryset(self):
        # Neither the raw gateway answer nor the (encrypted) client secret is served by these views.
        return (
            super()
            .get_queryset()
            .select_related("connection")
            .prefetch_related("refunds")
            .defer("raw", "client_secret")
        )

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if payment_status := choice_param(params, "status", PaymentStatus.values):
            queryset = queryset.filter(status=payment_status)
        if gateway := choice_param(params, "gateway", list(GATEWAYS)):
            queryset = queryset.filter(connection__platform=gateway)
        if (connection := int_param(params, "connection")) is not None:
            queryset = queryset.filter(connection_id=connection)
        if (order := int_param(params, "order")) is not None:
            queryset = queryset.filter(order_id=order)
        if currency := params.get("currency"):
            queryset = queryset.filter(currency=currency.upper())
        return created_range(queryset, params)

    @extend_schema(
        request=CreatePaymentSerializer,
        responses={201: NewPaymentSerializer, 200: NewPaymentSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Your own key for this payment (up to 255 characters). Sent again, it answers the "
                "payment made with it (200) and charges nothing; with another amount, currency or gateway it is a "
                "409. Send one, so a retry after your own timeout never charges twice.",
            )
        ],
        description="Charge (or, with `capture` false, authorise) through one of your gateway connections. The "
        "answer is the payment with its status: `succeeded`, `authorized`, `requires_action` (finish it in the "
        "customer's browser with `client_secret`, or send them to `approval_url`), `failed` (with the gateway's "
        "`failure_code` and `failure_message`, e.g. a declined card), or `processing` when the gateway has not "
        "answered yet. Send gateway tokens only, never card data.",
    )
    def create(self, request: Request) -> Response:
        client_key = (request.headers.get("Idempotency-Key") or "").strip()
        if len(client_key) > 255:
            raise ValidationError({"Idempotency-Key": ["Use a key of at most 255 characters."]})
        body = CreatePaymentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        connection = self._connection(data.get("gateway"), data.get("connection"))
        order = None
        if data.get("order"):
            order = Order.objects.for_tenant(self.tenant).filter(pk=data["order"]).first()
            if order is None:
                raise ValidationError({"order": ["No order of yours has this id."]})
        try:
            payment = service.create_payment(
                self.tenant,
                connection,
                data["amount"],
                data["currency"],
                customer=data["customer"],
                payment_method=data["payment_method"],
                description=data["description"],
                metadata=data["metadata"],
                order=order,
                capture=data["capture"],
                presentment_amount=data.get("presentment_amount"),
                presentment_currency=data.get("presentment_currency") or "",
                return_url=data["return_url"],
                cancel_url=data["cancel_url"],
                request=request,
                client_key=client_key,
            )
        except service.PaymentError as error:
            raise refused(error) from None
        replayed = getattr(payment, "replayed", False)
        return Response(
            NewPaymentSerializer(payment).data, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED
        )

    def _connection(self, gateway: str | None, connection_id: int | None):
        connections = service.gateway_connections(self.tenant)
        if connection_id:
            connection = connections.filter(pk=connection_id).first()
            if connection is None:
                raise ValidationError({"connection": ["No payment gateway connection of yours has this id."]})
            if gateway and connection.platform != gateway:
                raise ValidationError({"connection": [f"This connection is {connection.get_platform_display()}."]})
            return connection
        found = list(connections.filter(platform=gateway, enabled=True)[:2])
        if not found:
            raise ValidationError({"gateway": [f"You have no enabled {gateway} connection."]})
        if len(found) > 1:
            raise ValidationError({"connection": [f"You have several {gateway} connections: give the connection id."]})
        return found[0]

    @extend_schema(
        request=RefundRequestSerializer,
        responses={201: RefundResultSerializer, 409: CONFLICT},
        description="Refund all that is left (no `amount`) or part of it. More than was captured less what was "
        "refunded and what pending refunds hold is refused (400); a payment that did not succeed is a 409.",
    )
    @action(detail=True, methods=["post"], url_path="refund")
    def refund(self, request: Request, pk: str | None = None) -> Response:
        payment = self.get_object()
        body = RefundRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            row = service.refund(
                payment, body.validated_data.get("amount"), body.validated_data["reason"], request=request
            )
        except service.PaymentError as error:
            raise refused(error) from None
        row.payment = self.get_queryset().get(pk=payment.pk)
        return Response(RefundResultSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CaptureRequestSerializer,
        responses={200: PaymentSerializer, 409: CONFLICT},
        description="Capture an authorised payment, or one the customer approved at its approval link (PayPal), "
        "in full (no `amount`) or in part. A gateway refusal keeps its status, with the reason in `failure_message`.",
    )
    @action(detail=True, methods=["post"], url_path="capture")
    def capture(self, request: Request, pk: str | None = None) -> Response:
        payment = self.get_object()
        body = CaptureRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            payment = service.capture(payment, body.validated_data.get("amount"), request=request)
        except service.PaymentError as error:
            raise refused(error) from None
        return Response(PaymentSerializer(self.get_queryset().get(pk=payment.pk)).data)

    @extend_schema(
        parameters=CREATED_RANGE,
        responses={200: PaymentStatsSerializer, 400: BAD_DATES},
        description="Totals, volume per currency, average, per gateway, and your gateways active and available.",
    )
    @action(detail=False, methods=["get"], url_path="stats")
    def stats(self, request: Request) -> Response:
        payments = created_range(Payment.objects.for_tenant(self.tenant), request.query_params)
        active = service.gateway_connections(self.tenant).filter(enabled=True).order_by("name", "pk")
        body = {
            **figures(payments),
            "gateways_active": [
                {"id": c.pk, "name": c.name, "gateway": c.platform, "status": c.status}
                for c in active.only("pk", "name", "platform", "status")
            ],
            "gateways_available": available_gateways(),
        }
        return Response(PaymentStatsSerializer(body).data)


def created_range(queryset, params):
    if since := params.get("created_after"):
        queryset = queryset.filter(created_at__gte=parse_timestamp(since, "created_after"))
    if until := params.get("created_before"):
        queryset = queryset.filter(created_at__lt=parse_timestamp(until, "created_before"))
    return queryset
