from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from tenants import audit

from .connectors import CONNECTORS
from .connectors.base import CheckResult
from .forms import PREFIX, ConnectionForm
from .http import RateBudget
from .models import (
    HUB_WEBHOOK_SECRET,
    Connection,
    ConnectionStatus,
    Incident,
    QuarantinedRecord,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from .oauth.providers import PROVIDERS
from .platforms import CATALOGUE
from .services import connection_stats, request_sync, test_connection

STATUS_COLOURS = {
    ConnectionStatus.CONNECTED: "#1a7f37",
    ConnectionStatus.FAILING: "#b42318",
    ConnectionStatus.NEEDS_REAUTH: "#b54708",
    ConnectionStatus.DISABLED: "#667085",
    ConnectionStatus.UNTESTED: "#175cd3",
    ConnectionStatus.DISCONNECTED: "#b54708",
    SyncStatus.SUCCEEDED: "#1a7f37",
    SyncStatus.FAILED: "#b42318",
    SyncStatus.RUNNING: "#175cd3",
    SyncStatus.QUEUED: "#667085",
    SyncStatus.SKIPPED: "#667085",
}
# Fields the connection form owns. Saving only these keeps a running sync's lease and cursors,
# which the sync engine updates behind the page's back, from being overwritten by a stale copy.
FORM_FIELDS = ["name", "credentials", "base_url", "sync_frequency", "enabled", "updated_at"]


def badge(value: str, label: str) -> str:
    return format_html('<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(value, "#000"), label)


def progress_bar(run: SyncRun) -> str:
    percent = run.percent
    seen = sum(int(p.get("seen", 0)) for p in run.progress.values())
    if percent is None:
        return format_html("{} records", seen)
    return format_html(
        '<progress max="100" value="{}" title="{}%"></progress> {}% · {} records', percent, percent, percent, seen
    )


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = [
        "name",
        "tenant",
        "platform",
        "status_badge",
        "sync_frequency",
        "enabled",
        "last_sync",
        "success_rate",
        "open_quarantine",
    ]
    list_filter = ["platform", "status", "enabled", "tenant"]
    search_fields = ["name", "tenant__name", "uuid"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "uuid",
        "status",
        "last_tested_at",
        "last_error",
        "check_result",
        "rate_budget",
        "cursors",
        "sync_history",
        "webhooks",
        "circuit_breaker",
        "incidents",
        "created_at",
        "updated_at",
    ]
    actions = ["test_selected", "sync_selected"]
    change_form_template = "admin/integrations/connection/change_form.html"

    class Media:
        js = ["integrations/connection_form.js"]

    # --- list ---

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(quarantine_open=Count("quarantined", filter=Q(quarantined__resolved_at__isnull=True)))
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            # One query for every connection on the page, not one per row.
            self._stats = connection_stats(list(cl.result_list))
        return response

    def _stat(self, obj: Connection, key: str):
        return getattr(self, "_stats", {}).get(obj.pk, {}).get(key)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Connection) -> str:
        if obj.is_paused:
            return format_html("{} · paused", badge(obj.status, obj.get_status_display()))
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="last sync")
    def last_sync(self, obj: Connection) -> str:
        when, status = self._stat(obj, "last_finished_at"), self._stat(obj, "last_status")
        if not when:
            return "never"
        return format_html("{} {}", badge(status, status or ""), when.strftime("%Y-%m-%d %H:%M"))

    @admin.display(description="success rate")
    def success_rate(self, obj: Connection) -> str:
        rate = self._stat(obj, "success_rate")
        return "—" if rate is None else f"{rate}%"

    @admin.display(description="quarantined", ordering="quarantine_open")
    def open_quarantine(self, obj: Connection) -> str:
        if not obj.quarantine_open:
            return "0"
        url = reverse("admin:integrations_quarantinedrecord_changelist")
        return format_html('<a href="{}?connection__id__exact={}&open=1">{}</a>', url, obj.pk, obj.quarantine_open)

    # --- form ---

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
            state = ["uuid", "status", "last_tested_at", "last_error", "check_result", "circuit_breaker", "incidents"]
            fieldsets.append(("State", {"fields": state}))
            fieldsets.append(("Sync history (newest first)", {"fields": ["sync_history"]}))
            fieldsets.append(("Webhooks", {"fields": ["webhooks"]}))
            fieldsets.append(("Sync position", {"fields": ["rate_budget", "cursors"], "classes": ["collapse"]}))
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Connection, form: ConnectionForm, change: bool) -> None:
        changed = form.changed_credentials()
        if change:
            obj.save(update_fields=FORM_FIELDS)
        else:
            obj.save()
        if changed:
            audit.record(
                "connection.credentials_changed" if change else "connection.created",
                request=request,
                tenant=obj.tenant,
                target=obj,
                fields=changed,
            )

    @admin.display(description="last check")
    def check_result(self, obj: Connection) -> str:
        if not obj.last_test_result:
            return "Not tested yet: press “Test connection”."
        return format_html_check(obj.last_test_result)

    @admin.display(description="circuit breaker")
    def circuit_breaker(self, obj: Connection) -> str:
        if obj.is_paused:
            return format_html(
                '<strong style="color:#b42318">Paused until {} UTC</strong> because {} Scheduled syncs wait; '
                "Sync now still runs, and a successful test or sync closes the breaker.",
                obj.paused_until.strftime("%Y-%m-%d %H:%M"),
                obj.pause_reason,
            )
        if obj.consecutive_failures:
            return format_html(
                "Closed; {} failure(s) in a row so far (scheduled syncs pause at {}).",
                obj.consecutive_failures,
                settings.CIRCUIT_BREAKER_FAILURES,
            )
        return "Closed."

    @admin.display(description="incidents")
    def incidents(self, obj: Connection) -> str:
        rows = list(obj.incidents.order_by("-opened_at")[:10])
        if not rows:
            return "None."
        open_mark = mark_safe('<strong style="color:#b42318">open</strong>')
        items = [
            format_html(
                '<li><a href="{}">{}</a> · {} · opened {} · {}</li>',
                reverse("admin:integrations_incident_change", args=[i.pk]),
                i.title,
                i.get_kind_display(),
                i.opened_at.strftime("%Y-%m-%d %H:%M"),
                f"resolved {i.resolved_at:%Y-%m-%d %H:%M}" if i.resolved_at else open_mark,
            )
            for i in rows
        ]
        return format_html("<ul>{}</ul>", format_html("".join(["{}"] * len(items)), *items))

    @admin.display(description="latest runs")
    def sync_history(self, obj: Connection) -> str:
        runs = list(obj.sync_runs.order_by("-queued_at")[:20])
        if not runs:
            return "No sync yet."
        header = mark_safe(
            "<tr><th>Run</th><th>Queued</th><th>Trigger</th><th>Status</th><th>Progress</th>"
            "<th>Created / updated / unchanged / failed</th><th>Duration</th><th>Error</th></tr>"
        )
        rows = [
            format_html(
                '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td><td>{}</td></tr>",
                reverse("admin:integrations_syncrun_change", args=[run.pk]),
                run.pk,
                run.queued_at.strftime("%Y-%m-%d %H:%M:%S"),
                run.get_trigger_display(),
                badge(run.status, run.get_status_display()),
                progress_bar(run),
                " / ".join(str(run.totals[k]) for k in ("created", "updated", "unchanged", "failed")),
                f"{run.duration.total_seconds():.1f} s" if run.duration else "—",
                run.error[:200],
            )
            for run in runs
        ]
        return format_html(
            '<table class="sync-history">{}{}</table>', header, format_html("".join(["{}"] * len(rows)), *rows)
        )

    @admin.display(description="webhooks")
    def webhooks(self, obj: Connection) -> str:
        # Presentation only: what the webhooks app knows of this connection, shown where people look.
        from webhooks.health import delivery_health
        from webhooks.receivers import PROVIDER_PLATFORMS

        base = settings.PUBLIC_BASE_URL or "https://<PUBLIC_BASE_URL>"
        lines = []
        if obj.platform in PROVIDER_PLATFORMS:
            address = reverse("webhooks:receive", kwargs={"provider": obj.platform, "connection_uuid": obj.uuid})
            lines.append(format_html("Address: <code>{}{}</code>", base, address))
        generic = reverse("webhooks:third-party", kwargs={"service": "SERVICE", "connection_uuid": obj.uuid})
        secret = "set" if (obj.credentials or {}).get(HUB_WEBHOOK_SECRET) else "not set"
        lines.append(
            format_html(
                "Third-party address: <code>{}{}</code> (replace SERVICE with the sender's name; signing secret {})",
                base,
                generic.replace("SERVICE", "<service>"),
                secret,
            )
        )
        topics = sorted(obj.webhook_subscriptions.values_list("topic", flat=True))
        lines.append(format_html("Registered topics: {}", ", ".join(topics) or "none"))
        health = delivery_health([obj.pk])
        if health:
            row = health[0]
            lines.append(
                format_html(
                    "Last 24 h: {} received, {} processed, {} waiting, {} retrying, {} parked, {} rejected, "
                    "{} duplicates",
                    *(row[k] for k in ("received", "processed", "waiting", "retrying", "parked", "rejected")),
                    row["duplicates"],
                )
            )
        events = reverse("admin:webhooks_webhookevent_changelist")
        lines.append(format_html('<a href="{}?connection__id__exact={}">Webhook event log</a>', events, obj.pk))
        return format_html("<br>".join(["{}"] * len(lines)), *lines)

    @admin.display(description="request budget")
    def rate_budget(self, obj: Connection) -> str:
        spec = obj.spec
        info = RateBudget(f"connection:{obj.pk}", spec.rate_limit, spec.rate_burst).describe()
        text = f"{info['remaining']} of {info['limit']} requests left in this {info['window_seconds']} s window"
        if info["paused_for"]:
            text += f"; paused {info['paused_for']} s by the platform (429)"
        return text

    # --- buttons and actions ---

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        # The page shows "Connect with <platform>" for platforms that connect by OAuth.
        extra_context = {**(extra_context or {}), "oauth_platforms": list(PROVIDERS)}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        urls = [
            path("<int:pk>/test/", self.admin_site.admin_view(self.test_view), name="integrations_connection_test"),
            path("<int:pk>/sync/", self.admin_site.admin_view(self.sync_view), name="integrations_connection_sync"),
            path(
                "<int:pk>/webhook-secret/",
                self.admin_site.admin_view(self.webhook_secret_view),
                name="integrations_connection_webhook_secret",
            ),
        ]
        return urls + super().get_urls()

    def _button_target(self, request: HttpRequest, pk: int) -> Connection:
        connection = get_object_or_404(Connection.objects.select_related("tenant"), pk=pk)
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        return connection

    def test_view(self, request: HttpRequest, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self._button_target(request, pk)
        result = test_connection(connection, request=request)
        self._report_check(request, connection, result)
        return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[pk]))

    def sync_view(self, request: HttpRequest, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self._button_target(request, pk)
        full = request.POST.get("full") == "1"
        if not connection.enabled:
            self.message_user(request, "This connection is disabled: enable it first.", messages.ERROR)
        elif connection.platform not in CONNECTORS:
            self.message_user(
                request,
                f"{connection.get_platform_display()} cannot be synced yet: it has no connector.",
                messages.ERROR,
            )
        elif not connection.spec.streams:
            self.message_user(
                request,
                f"{connection.get_platform_display()} connections have nothing to sync (a payment gateway is "
                "only tested).",
                messages.WARNING,
            )
        else:
            run = request_sync(connection, full=full, trigger=SyncTrigger.MANUAL, request=request)
            self.message_user(
                request,
                f"Sync #{run.pk} queued{' (full)' if full else ''}; its progress shows in the history below.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[pk]))

    def webhook_secret_view(self, request: HttpRequest, pk: int):
        """A new signing secret for the connection's third-party webhook address, shown once. The
        one it replaces keeps verifying for WEBHOOK_SECRET_GRACE_SECONDS, so senders can switch."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self._button_target(request, pk)
        secret = secrets.token_urlsafe(32)
        connection.credentials = {**(connection.credentials or {}), HUB_WEBHOOK_SECRET: secret}
        connection.save(update_fields=["credentials", "updated_at"])
        audit.record("connection.webhook_secret_created", request=request, tenant=connection.tenant, target=connection)
        context = {
            **self.admin_site.each_context(request),
            "title": "New webhook signing secret",
            "connection": connection,
            "secret": secret,
            "address": reverse(
                "webhooks:third-party", kwargs={"service": "SERVICE", "connection_uuid": connection.uuid}
            ),
            "grace_minutes": settings.WEBHOOK_SECRET_GRACE_SECONDS // 60,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/integrations/connection/webhook_secret.html", context)

    def _report_check(self, request: HttpRequest, connection: Connection, result: CheckResult) -> None:
        if result.ok:
            text = f"{connection.name}: connected ({result.latency_ms} ms)."
            if result.warnings:
                text += " " + " ".join(result.warnings)
            self.message_user(request, text, messages.WARNING if result.warnings else messages.SUCCESS)
        else:
            hint = f" {result.hint}" if result.hint else ""
            self.message_user(request, f"{connection.name}: {result.message}{hint}", messages.ERROR)

    @admin.action(description="Test connection")
    def test_selected(self, request: HttpRequest, queryset) -> None:
        for connection in queryset.select_related("tenant"):
            self._report_check(request, connection, test_connection(connection, request=request))

    @admin.action(description="Sync now")
    def sync_selected(self, request: HttpRequest, queryset) -> None:
        queued = 0
        syncable = [platform for platform in CONNECTORS if CATALOGUE[platform].streams]
        for connection in queryset.filter(enabled=True, platform__in=syncable).select_related("tenant"):
            request_sync(connection, trigger=SyncTrigger.MANUAL, request=request)
            queued += 1
        skipped = queryset.exclude(enabled=True, platform__in=syncable).count()
        text = f"{queued} sync(s) queued."
        if skipped:
            text += f" {skipped} disabled, not yet syncable or nothing-to-sync connection(s) skipped."
        self.message_user(request, text, messages.SUCCESS)


def format_html_check(result: dict) -> str:
    rows = [format_html("<strong>{}</strong>", "OK" if result.get("ok") else "Failed")]
    if result.get("message"):
        rows.append(format_html("{}", result["message"]))
    if result.get("hint"):
        rows.append(format_html("<em>{}</em>", result["hint"]))
    if result.get("latency_ms") is not None:
        rows.append(format_html("Latency: {} ms", result["latency_ms"]))
    if result.get("granted"):
        rows.append(format_html("Granted: {}", ", ".join(result["granted"])))
    if result.get("missing"):
        rows.append(format_html('<span style="color:#b42318">Missing: {}</span>', ", ".join(result["missing"])))
    for name, count in (result.get("samples") or {}).items():
        rows.append(format_html("{}: {}", name, count))
    for warning in result.get("warnings") or []:
        rows.append(format_html('<span style="color:#b54708">{}</span>', warning))
    return format_html("<br>".join(["{}"] * len(rows)), *rows)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "connection",
        "tenant",
        "trigger",
        "status_badge",
        "progress_display",
        "queued_at",
        "duration",
    ]
    list_filter = ["status", "trigger", "connection__platform", "tenant"]
    list_select_related = ["connection", "tenant"]
    search_fields = ["connection__name", "tenant__name", "error"]
    date_hierarchy = "queued_at"
    readonly_fields = [
        "tenant",
        "connection",
        "trigger",
        "streams",
        "full",
        "status",
        "progress",
        "counts",
        "error",
        "error_code",
        "queued_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: SyncRun) -> str:
        return badge(run.status, run.get_status_display())

    @admin.display(description="progress")
    def progress_display(self, run: SyncRun) -> str:
        return progress_bar(run)


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("1", "Open"), ("0", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "0":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(QuarantinedRecord)
class QuarantinedRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "connection", "stream", "external_id", "short_error", "attempts", "resolved_at"]
    list_filter = [OpenFilter, "stream", "connection__platform", "tenant"]
    list_select_related = ["connection"]
    search_fields = ["external_id", "error"]
    readonly_fields = [
        "tenant",
        "connection",
        "sync_run",
        "stream",
        "external_id",
        "payload",
        "error",
        "attempts",
        "created_at",
        "resolved_at",
    ]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, obj: QuarantinedRecord) -> str:
        return obj.error[:120]

    @admin.action(description="Retry selected records")
    def retry(self, request: HttpRequest, queryset) -> None:
        from .sync import retry_quarantined

        ok = failed = 0
        for record in queryset.filter(resolved_at__isnull=True).select_related("connection", "connection__tenant"):
            if retry_quarantined(record):
                ok += 1
            else:
                failed += 1
        self.message_user(
            request,
            f"{ok} record(s) stored; {failed} still failing (see their new errors).",
            messages.SUCCESS if not failed else messages.WARNING,
        )


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """What the alerts found (integrations.alerts): open ones first, then the resolved history."""

    list_display = ["title", "kind", "tenant", "connection", "state", "since", "opened_at", "resolved_at", "notified"]
    list_filter = [OpenFilter, "kind", "tenant"]
    list_select_related = ["tenant", "connection"]
    search_fields = ["title", "subject", "details"]
    date_hierarchy = "opened_at"
    readonly_fields = [
        "kind",
        "subject",
        "title",
        "details",
        "tenant",
        "connection",
        "since",
        "opened_at",
        "resolved_at",
        "notified_at",
        "notify_error",
    ]

    def get_ordering(self, request: HttpRequest):
        # Open incidents (no resolved_at) first, newest first within each.
        return [F("resolved_at").desc(nulls_first=True), "-opened_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="state", ordering="resolved_at")
    def state(self, obj: Incident) -> str:
        if obj.is_open:
            return format_html('<strong style="color:#b42318">{}</strong>', "open")
        return "resolved"

    @admin.display(description="notified", boolean=True)
    def notified(self, obj: Incident) -> bool:
        return obj.notified_at is not None and not obj.notify_error
