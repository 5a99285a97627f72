from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, password_validation
from django.db import transaction
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from . import activity, audit, usage
from .models import (
    Activity,
    ActivityLevel,
    AdminApiKey,
    ApiKey,
    ApiKeyScope,
    ApiKeyTier,
    ApiUsage,
    AuditLog,
    Membership,
    Role,
    Tenant,
    TenantStatus,
)

User = get_user_model()


class AddClientForm(forms.ModelForm):
    """ "Add client": the tenant, its owner user and the owner's membership, in one form."""

    owner_email = forms.EmailField(label="Owner email", help_text="The client's login.")
    owner_password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    owner_password2 = forms.CharField(
        label="Password confirmation", strip=False, widget=forms.PasswordInput, help_text="The same password again."
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "contact_email", "base_currency", "time_zone", "status"]

    def clean_owner_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["owner_email"]).lower()
        if User.objects.filter(username__iexact=email).exists() or User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email

    def clean(self) -> dict:
        cleaned = super().clean()
        p1, p2 = cleaned.get("owner_password1"), cleaned.get("owner_password2")
        if p1 and p2 and p1 != p2:
            self.add_error("owner_password2", "The two passwords do not match.")
        elif p1 and cleaned.get("owner_email"):
            candidate = User(username=cleaned["owner_email"], email=cleaned["owner_email"])
            try:
                password_validation.validate_password(p1, candidate)
            except forms.ValidationError as error:
                self.add_error("owner_password1", error)
        return cleaned

    def create_owner(self, tenant: Tenant) -> Membership:
        email = self.cleaned_data["owner_email"]
        user = User.objects.create_user(username=email, email=email, password=self.cleaned_data["owner_password1"])
        return Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status_badge", "base_currency", "time_zone", "member_count", "created_at"]
    list_filter = ["status", "is_demo", "base_currency"]
    search_fields = ["name", "slug", "contact_email"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "is_demo"]
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    def get_form(self, request: HttpRequest, obj: Tenant | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = AddClientForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None):
        if obj is None:
            return [
                ("Client", {"fields": ["name", "slug", "contact_email", "base_currency", "time_zone", "status"]}),
                ("Owner login", {"fields": ["owner_email", "owner_password1", "owner_password2"]}),
            ]
        return [
            (
                None,
                {
                    "fields": [
                        "name",
                        "slug",
                        "contact_email",
                        "status",
                        "base_currency",
                        "time_zone",
                        "default_reorder_point",
                    ]
                },
            ),
            ("Record", {"fields": ["created_at", "is_demo"]}),
        ]

    def get_inlines(self, request: HttpRequest, obj: Tenant | None):
        return self.inlines if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:
        # The admin runs add/change views inside one transaction: tenant, user and membership
        # are created together or not at all.
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change and isinstance(form, AddClientForm):
                membership = form.create_owner(obj)
                audit.record("tenant.created", request=request, tenant=obj, target=obj, owner=membership.user.username)
            elif change and "status" in form.changed_data:
                audit.record(f"tenant.{obj.status}", request=request, tenant=obj, target=obj)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        instances = formset.save(commit=False)
        for membership in formset.deleted_objects:
            audit_membership(request, membership, "removed")
            membership.delete()
        for membership in instances:
            is_new = membership.pk is None
            membership.save()
            audit_membership(request, membership, "added" if is_new else "changed")
        formset.save_m2m()

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        audit.record("tenant.deleted", request=request, target=obj, slug=obj.slug)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for tenant in queryset:
            audit.record("tenant.deleted", request=request, target=tenant, slug=tenant.slug)
        super().delete_queryset(request, queryset)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Tenant) -> str:
        colour = "#1a7f37" if obj.status == TenantStatus.ACTIVE else "#b42318"
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description="members")
    def member_count(self, obj: Tenant) -> int:
        return obj.member_total

    def get_queryset(self, request: HttpRequest):
        from django.db.models import Count

        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.action(description="Suspend selected clients (their users and API keys are refused)")
    def suspend(self, request: HttpRequest, queryset) -> None:
        self._set_status(request, queryset, TenantStatus.SUSPENDED)

    @admin.action(description="Reactivate selected clients")
    def reactivate(self, request: HttpRequest, queryset) -> None:
        self._set_status(request, queryset, TenantStatus.ACTIVE)

    def _set_status(self, request: HttpRequest, queryset, status: str) -> None:
        changed = 0
        for tenant in queryset.exclude(status=status):
            tenant.status = status
            tenant.save(update_fields=["status"])
            audit.record(f"tenant.{status}", request=request, tenant=tenant, target=tenant)
            changed += 1
        self.message_user(request, f"{changed} client(s) now {status}.", messages.SUCCESS)


def audit_membership(request: HttpRequest, membership: Membership, action: str) -> None:
    audit.record(
        f"membership.{action}",
        request=request,
        tenant=membership.tenant,
        target=membership.user,
        role=membership.role,
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or form.changed_data:
            audit_membership(request, obj, "changed" if change else "added")

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        audit_membership(request, obj, "removed")
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for membership in queryset.select_related("tenant", "user"):
            audit_membership(request, membership, "removed")
        super().delete_queryset(request, queryset)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, required=False)
    tier = forms.ChoiceField(
        choices=ApiKeyTier.choices,
        initial=ApiKeyTier.DEFAULT,
        required=False,
        help_text="Premium keys get API_RATE_PREMIUM requests an hour instead of API_RATE_DEFAULT.",
    )

    def clean_tier(self) -> str:
        return self.cleaned_data.get("tier") or ApiKeyTier.DEFAULT

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "tier"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "tenant",
        "prefix",
        "tier",
        "scope_list",
        "created_at",
        "last_used_at",
        "requests_30_days",
        "error_rate_30_days",
        "state",
    ]
    list_filter = ["tier", "tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "tenant__name"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at", "usage_report"]
    list_select_related = ["tenant"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return ["tenant", "name", "scopes", "tier"]
        return [
            "tenant",
            "name",
            "scopes",
            "tier",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "usage_report",
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        usage.drain()
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest):
        # Each key's last 30 days, for the list's columns (one subquery per figure).
        since, _ = usage.usage_window()
        recent = ApiUsage.objects.filter(api_key=OuterRef("pk"), day__gte=since).order_by().values("api_key")
        total = recent.annotate(n=Sum("count")).values("n")
        errors = recent.filter(status_code__gte=400).annotate(n=Sum("count")).values("n")
        return (
            super()
            .get_queryset(request)
            .annotate(requests_30=Coalesce(Subquery(total), 0), errors_30=Coalesce(Subquery(errors), 0))
        )

    @admin.display(description="requests (30 d)", ordering="requests_30")
    def requests_30_days(self, obj: ApiKey) -> int:
        return obj.requests_30

    @admin.display(description="errors (30 d)", ordering="errors_30")
    def error_rate_30_days(self, obj: ApiKey) -> str:
        if not obj.requests_30:
            return "—"
        return f"{obj.errors_30} ({round(100 * obj.errors_30 / obj.requests_30, 1)}%)"

    @admin.display(description="usage, last 30 days (UTC)")
    def usage_report(self, obj: ApiKey) -> SafeString:
        usage.drain()
        summary = usage.key_summary(obj)
        url = reverse("admin:tenants_apiusage_changelist") + f"?api_key__id__exact={obj.pk}"
        return render_to_string("admin/tenants/apikey/usage.html", {"usage": summary, "rows_url": url})

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        # A key's tenant never changes after it is issued.
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Keys are revoked, never deleted, so the audit trail and usage history keep their subject.
        return False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            if form.changed_data:
                audit.record(
                    "api_key.changed",
                    request=request,
                    tenant=obj.tenant,
                    target=obj,
                    fields=form.changed_data,
                    scopes=obj.scopes,
                )
            return
        key, raw_key = ApiKey.generate(
            tenant=obj.tenant,
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
            tier=form.cleaned_data["tier"],
        )
        obj.pk, obj.prefix = key.pk, key.prefix
        audit.record("api_key.created", request=request, tenant=key.tenant, target=key, scopes=key.scopes)
        # Kept on the request only, for response_add: never in a message, session or cookie.
        request._new_api_key = raw_key

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None):
        raw_key = getattr(request, "_new_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "raw_key": raw_key,
            "title": "API key created",
        }
        return TemplateResponse(request, "admin/tenants/apikey/created.html", context)

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="state")
    def state(self, obj: ApiKey) -> str:
        return "revoked" if obj.is_revoked else "active"

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            key.revoke()
            audit.record("api_key.revoked", request=request, tenant=key.tenant, target=key)
            revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


@admin.register(ApiUsage)
class ApiUsageAdmin(admin.ModelAdmin):
    """Every key's daily counts by endpoint, method and status, read-only."""

    list_display = ["day", "api_key", "tenant", "method", "endpoint", "status_code", "count"]
    list_filter = ["day", "method", "status_code", "tenant"]
    search_fields = ["endpoint", "api_key__prefix", "api_key__name", "tenant__name"]
    date_hierarchy = "day"
    list_select_related = ["api_key", "tenant"]
    raw_id_fields = ["api_key"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        usage.drain()
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiUsage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiUsage | None = None) -> bool:
        return False


class AdminApiKeyForm(forms.ModelForm):
    class Meta:
        model = AdminApiKey
        fields = ["user", "name"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "user" in self.fields:  # read-only once the key exists
            self.fields["user"].queryset = User.objects.filter(is_superuser=True, is_active=True)
            self.fields["user"].help_text = "The key acts as this superuser on the admin API (/api/v1/admin/)."


@admin.register(AdminApiKey)
class AdminApiKeyAdmin(admin.ModelAdmin):
    """Superadmins' keys to the admin API. Only superusers see or issue them."""

    form = AdminApiKeyForm
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: AdminApiKey | None = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: AdminApiKey | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: AdminApiKey | None = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: AdminApiKey | None = None):
        return ["user", "name"] if obj is None else ["user", "name", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: AdminApiKey | None = None):
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: AdminApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw_key = AdminApiKey.generate(form.cleaned_data["user"], obj.name)
        obj.pk, obj.prefix = key.pk, key.prefix
        audit.record("admin_api_key.created", request=request, target=key, user=key.user.get_username())
        request._new_api_key = raw_key

    def response_add(self, request: HttpRequest, obj: AdminApiKey, post_url_continue: str | None = None):
        raw_key = getattr(request, "_new_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "raw_key": raw_key,
            "title": "Admin API key created",
        }
        return TemplateResponse(request, "admin/tenants/adminapikey/created.html", context)

    @admin.display(description="state")
    def state(self, obj: AdminApiKey) -> str:
        return "revoked" if obj.is_revoked else "active"

    @admin.action(description="Revoke selected admin API keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoke()
            audit.record("admin_api_key.revoked", request=request, target=key)
            revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "tenant", "action", "target", "ip_address"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_label", "target", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False


LEVEL_COLOURS = {ActivityLevel.INFO: "#175cd3", ActivityLevel.WARNING: "#b54708", ActivityLevel.ERROR: "#b42318"}


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """Every client's activity stream, newest first, with a live panel that polls for new entries."""

    list_display = ["created_at", "tenant", "level_badge", "kind", "message", "connection_link"]
    list_filter = ["level", "kind", "tenant"]
    search_fields = ["message", "subject"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = ["tenant", "kind", "level", "message", "connection_id", "subject", "data", "created_at"]
    change_list_template = "admin/tenants/activity/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Activity | None = None) -> bool:
        return False

    @admin.display(description="level", ordering="level")
    def level_badge(self, obj: Activity) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', LEVEL_COLOURS.get(obj.level, "#000"), obj.get_level_display()
        )

    @admin.display(description="connection")
    def connection_link(self, obj: Activity) -> str:
        if obj.connection_id is None:
            return "—"
        try:
            url = reverse("admin:integrations_connection_change", args=[obj.connection_id])
        except NoReverseMatch:
            return f"#{obj.connection_id}"
        return format_html('<a href="{}">#{}</a>', url, obj.connection_id)

    def get_urls(self):
        feed = path("feed/", self.admin_site.admin_view(self.feed_view), name="tenants_activity_feed")
        return [feed, *super().get_urls()]

    def feed_view(self, request: HttpRequest) -> JsonResponse:
        """JSON for the live panel: entries of every client (or of `?tenant=<id>`) above `after`."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "Not allowed."}, status=403)
        try:
            after = activity.parse_after(request.GET.get("after"))
            tenant = activity.parse_after(request.GET.get("tenant") or request.GET.get("tenant__id__exact"))
        except ValueError:
            return JsonResponse({"error": "`after` and `tenant` must be ids."}, status=400)
        entries = Activity.objects.all() if tenant is None else Activity.objects.for_tenant(tenant)
        payload = activity.feed(entries, after, with_tenant=True)
        return JsonResponse(payload, headers={"Cache-Control": "no-store"})
