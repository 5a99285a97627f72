"""Messages in the SuperAdmin dashboard: the list with its filters (channel, status, connection,
tenant) and no bodies, each message on its own page with its subject and body for a person looking
into a delivery. Messages are sent through the API, never here; nothing is edited."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "connection",
        "channel",
        "status",
        "priority",
        "provider_id",
        "failure_code",
        "opens",
        "clicks",
    ]
    list_filter = ["channel", "status", "connection", "created_at", "tenant"]
    search_fields = ["provider_id", "uuid"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "connection"]
    fields = [
        "tenant",
        "connection",
        "channel",
        "uuid",
        "to",
        "subject",
        "body",
        "html",
        "priority",
        "status",
        "provider_id",
        "failure_code",
        "failure_message",
        "status_updated_at",
        "opens",
        "opened_at",
        "clicks",
        "clicked_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        # The list never shows a body, so it never reads one.
        listing = (getattr(request.resolver_match, "url_name", "") or "").endswith("changelist")
        return queryset.defer("body", "html", "raw") if listing else queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
