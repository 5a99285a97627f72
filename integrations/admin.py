from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from tenants import audit

from .forms import PREFIX, ConnectionForm
from .models import Connection, ConnectionStatus

STATUS_COLOURS = {
    ConnectionStatus.CONNECTED: "#1a7f37",
    ConnectionStatus.FAILING: "#b42318",
    ConnectionStatus.NEEDS_REAUTH: "#b54708",
    ConnectionStatus.DISABLED: "#667085",
    ConnectionStatus.UNTESTED: "#175cd3",
}


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "tenant", "platform", "status_badge", "sync_frequency", "enabled", "last_tested_at"]
    list_filter = ["platform", "status", "enabled", "tenant"]
    search_fields = ["name", "tenant__name", "uuid"]
    list_select_related = ["tenant"]
    readonly_fields = ["uuid", "status", "last_tested_at", "last_error", "created_at", "updated_at"]

    class Media:
        js = ["integrations/connection_form.js"]

    def _platform(self, request: HttpRequest, obj: Connection | None) -> str | None:
        if obj is not None:
            return obj.platform
        return request.POST.get("platform") or request.GET.get("platform")

    def get_form(self, request: HttpRequest, obj: Connection | None = None, change: bool = False, **kwargs):
        kwargs["form"] = ConnectionForm.for_platform(self._platform(request, obj))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Connection | None = None):
        form = ConnectionForm.for_platform(self._platform(request, obj))
        main = ["tenant", "platform", "name"]
        if form.spec is None:
            return [(None, {"fields": main, "description": "Choose the platform to see its credential fields."})]
        fieldsets = [
            (None, {"fields": main}),
            (
                f"{form.spec.label} credentials",
                {
                    "fields": [PREFIX + c.name for c in form.spec.credentials],
                    "description": "Secrets are write-only: they are encrypted at rest and never shown again.",
                },
            ),
            ("Sync", {"fields": ["sync_frequency", "enabled", "base_url"]}),
        ]
        if obj is not None:
            fieldsets.append(("State", {"fields": self.readonly_fields}))
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Connection, form: ConnectionForm, change: bool) -> None:
        changed = form.changed_credentials()
        super().save_model(request, obj, form, change)
        if changed:
            audit.record(
                "connection.credentials_changed" if change else "connection.created",
                request=request,
                tenant=obj.tenant,
                target=obj,
                fields=changed,
            )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Connection) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(obj.status, "#000"), obj.get_status_display()
        )
