"""The messaging API: send one SMS or one email through one of the caller's messaging connections,
and list and read the messages. Tenant-scoped through `TenantScopedViewSet` (another tenant's
message is a 404); API keys need `campaigns:write` to send and `campaigns:read` to read.

- `POST /sms/send`, `POST /email/send` → 201 with the message: its status (queued or sent when the
  provider took it, failed with the provider's code and reason) and the provider's message id.
- `GET /messages` (filters `channel`, `status`, `connection`, `created_after`, `created_before`),
  `GET /messages/{id}`
What the provider answered is in the message, never an error; what the hub refuses is a 400.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api import TenantScopedViewSet, choice_param, parse_timestamp

from . import messaging
from .models import Channel, Message, MessageStatus
from .serializers import MessageSerializer, SendEmailSerializer, SendSmsSerializer

LIST_FILTERS = [
    OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values, description="Only this channel."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=MessageStatus.values, description="Only this status."),
    OpenApiParameter("connection", OpenApiTypes.INT, description="Only this messaging connection."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Only messages created at or after this."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Only messages created before this."),
]
SENT = (
    "The answer is the message with its status: `queued` or `sent` when the provider took it (with its "
    "`provider_id`), or `failed` with the provider's `failure_code` and `failure_message`. When the provider "
    "does not answer, the message is `failed` with code `unconfirmed` and is not sent again: it may have gone "
    "out. Delivery is reported later by the provider's callbacks and shows on `GET /messages/{id}`."
)


@extend_schema(tags=["messages"])
@extend_schema_view(list=extend_schema(parameters=LIST_FILTERS))
class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The caller's messages, newest first."""

    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    scope_resource = "campaigns"
    lookup_value_regex = "[0-9]+"
    ordering = ("-created_at", "-pk")
    ordering_fields = ("created_at", "id")

    def get_queryset(self):
        # Bodies and the provider's raw answer are not served by the API.
        return super().get_queryset().select_related("connection").defer("body", "html", "raw")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if channel := choice_param(params, "channel", Channel.values):
            queryset = queryset.filter(channel=channel)
        if message_status := choice_param(params, "status", MessageStatus.values):
            queryset = queryset.filter(status=message_status)
        if (connection := int_param(params, "connection")) is not None:
            queryset = queryset.filter(connection_id=connection)
        return created_range(queryset, params)

    @extend_schema(
        operation_id="sms_send",
        request=SendSmsSerializer,
        responses={201: MessageSerializer},
        description="Send one SMS through your Twilio connection. `to` must be E.164. " + SENT,
    )
    def send_sms(self, request: Request) -> Response:
        body = SendSmsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            connection = messaging.pick_connection(self.tenant, Channel.SMS, data.get("connection"))
            message = messaging.send_sms(
                self.tenant, connection, data["to"], data["body"], data["priority"], request=request
            )
        except messaging.MessageError as error:
            raise ValidationError({error.field: [error.message]}) from None
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="email_send",
        request=SendEmailSerializer,
        responses={201: MessageSerializer},
        description="Send one email through your SendGrid connection, with `html`, `text` or both; an HTML email "
        "without `text` gets a plain-text part derived from the HTML (links kept as URLs). " + SENT,
    )
    def send_email(self, request: Request) -> Response:
        body = SendEmailSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            connection = messaging.pick_connection(self.tenant, Channel.EMAIL, data.get("connection"))
            message = messaging.send_email(
                self.tenant,
                connection,
                data["to"],
                data["subject"],
                html=data["html"],
                text=data["text"],
                priority=data["priority"],
                request=request,
            )
        except messaging.MessageError as error:
            raise ValidationError({error.field: [error.message]}) from None
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


def int_param(params, name: str) -> int | None:
    value = params.get(name)
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationError({name: "Use a whole number id."})
    return int(value)


def created_range(queryset, params):
    if since := params.get("created_after"):
        queryset = queryset.filter(created_at__gte=parse_timestamp(since, "created_after"))
    if until := params.get("created_before"):
        queryset = queryset.filter(created_at__lt=parse_timestamp(until, "created_before"))
    return queryset
