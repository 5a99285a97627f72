"""The messaging API's bodies. Message bodies are taken, never served back by the API."""

from __future__ import annotations

from rest_framework import serializers

from .messaging import SMS_MAX_CHARS, SUBJECT_MAX_CHARS
from .models import Channel, Message, MessageStatus, Priority

CONNECTION_HELP = "The messaging connection's id; leave it out when you have only one enabled for the channel."


class SendSmsSerializer(serializers.Serializer):
    connection = serializers.IntegerField(required=False, min_value=1, help_text=CONNECTION_HELP)
    to = serializers.CharField(max_length=32, help_text="E.164: + then country code and number, e.g. +14155552671.")
    body = serializers.CharField(max_length=SMS_MAX_CHARS, trim_whitespace=False)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)


class SendEmailSerializer(serializers.Serializer):
    connection = serializers.IntegerField(required=False, min_value=1, help_text=CONNECTION_HELP)
    to = serializers.CharField(max_length=320, help_text="The recipient's email address.")
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    html = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="The plain-text part; derived from `html` when left out.",
    )
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)


class MessageSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="connection.platform", read_only=True, help_text="twilio or sendgrid")
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices, read_only=True)
    status = serializers.ChoiceField(choices=MessageStatus.choices, read_only=True)
    priority = serializers.ChoiceField(choices=Priority.choices, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "uuid",
            "channel",
            "provider",
            "connection",
            "to",
            "subject",
            "priority",
            "status",
            "provider_id",
            "failure_code",
            "failure_message",
            "status_updated_at",
            "opens",
            "clicks",
            "opened_at",
            "clicked_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
