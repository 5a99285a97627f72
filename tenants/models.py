from __future__ import annotations

import hashlib
import hmac
import secrets
import zoneinfo
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (use an IANA name such as Europe/London).")


def validate_currency(value: str) -> None:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValidationError("Use a three-letter ISO 4217 currency code, e.g. USD.")


class Tenant(models.Model):
    """A client company. Every tenant-owned row points at one."""

    name = models.CharField("company name", max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    contact_email = models.EmailField()
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE)
    base_currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    default_reorder_point = models.PositiveIntegerField(
        default=5, help_text="Stock at or below this is low, for variants without their own reorder point."
    )
    is_demo = models.BooleanField(default=False, help_text="Created by seed_demo; safe to delete.")
    # Moves on whenever the tenant's commerce data changes (a sync page, an upload); cached
    # dashboard figures are keyed by it, so every process sees the change, whatever its cache.
    data_version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:60]
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int | None) -> TenantQuerySet:
        """The one way to read tenant-owned rows. No tenant means no rows, never all rows."""
        if tenant is None:
            return self.none()
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base for every tenant-owned model: a tenant foreign key and the `for_tenant()` scoping path."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# Who may create, list and revoke a client's API keys.
KEY_MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(TenantOwned):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} · {self.tenant} ({self.get_role_display()})"


class ApiKeyScope(models.TextChoices):
    INTEGRATIONS_READ = "integrations:read", "Read integrations and sync runs"
    INTEGRATIONS_WRITE = "integrations:write", "Create, test and sync integrations"
    ORDERS_READ = "orders:read", "Read orders"
    ORDERS_WRITE = "orders:write", "Fulfil orders"
    PRODUCTS_READ = "products:read", "Read products and inventory"
    PRODUCTS_WRITE = "products:write", "Set inventory"
    CUSTOMERS_READ = "customers:read", "Read customers"
    CAMPAIGNS_READ = "campaigns:read", "Read campaigns"
    CAMPAIGNS_WRITE = "campaigns:write", "Create and send campaigns"
    PAYMENTS_READ = "payments:read", "Read payments"
    PAYMENTS_WRITE = "payments:write", "Create payments and refunds"
    HOOKS_READ = "hooks:read", "Read webhook subscriptions"
    HOOKS_WRITE = "hooks:write", "Manage webhook subscriptions"
    KEYS_READ = "keys:read", "Read API keys and their usage"
    KEYS_WRITE = "keys:write", "Create and revoke API keys"


# Managing keys is an administrator's power, so a new key gets it only when asked for.
KEY_MANAGEMENT_SCOPES = frozenset({ApiKeyScope.KEYS_READ, ApiKeyScope.KEYS_WRITE})


def default_scopes() -> list[str]:
    return [s.value for s in ApiKeyScope if s.value.endswith(":read") and s not in KEY_MANAGEMENT_SCOPES]


class ApiKeyTier(models.TextChoices):
    """How many requests an hour a key may make (settings API_RATE_DEFAULT and API_RATE_PREMIUM)."""

    DEFAULT = "default", "Default"
    PREMIUM = "premium", "Premium"


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_raw_key(word: str) -> tuple[str, str]:
    """A new (visible prefix, full key) pair of the form `<word>_<12 hex>_<43 random>`."""
    prefix = f"{word}_{secrets.token_hex(6)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


class HashedKey(models.Model):
    """What every kind of key shares: only its SHA-256 hash and a visible prefix are stored, and the
    full key is shown once, when it is issued. Keys are revoked, never deleted."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def matches(self, raw_key: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_api_key(raw_key))

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class ApiKeyQuerySet(TenantQuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(TenantOwned, HashedKey):
    """A tenant's key to the public API, with its scopes and rate tier."""

    scopes = models.JSONField(default=default_scopes, blank=True)
    tier = models.CharField(
        max_length=16,
        choices=ApiKeyTier.choices,
        default=ApiKeyTier.DEFAULT,
        help_text="Premium keys get API_RATE_PREMIUM requests an hour instead of API_RATE_DEFAULT.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    @classmethod
    def generate(
        cls,
        tenant: Tenant,
        name: str,
        scopes: list[str] | None = None,
        created_by: AbstractBaseUser | None = None,
        tier: str = ApiKeyTier.DEFAULT,
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with the full secret, which is never stored or shown again."""
        prefix, raw_key = new_raw_key(settings.API_KEY_PREFIX)
        key = cls(
            tenant=tenant, name=name, prefix=prefix, key_hash=hash_api_key(raw_key), created_by=created_by, tier=tier
        )
        if scopes is not None:
            key.scopes = list(scopes)
        key.full_clean()
        key.save()
        return key, raw_key

    def clean(self) -> None:
        unknown = sorted(set(self.scopes or []) - set(ApiKeyScope.values))
        if unknown:
            raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}."})


class ApiUsage(TenantOwned):
    """How many requests one API key made on one day (UTC) to one endpoint with one method, by
    response status. Written in batches from counters in the cache (`tenants.usage`)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    endpoint = models.CharField(max_length=200, help_text="The route, e.g. /api/v1/orders/{pk}.")
    method = models.CharField(max_length=10)
    status_code = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "API usage"
        verbose_name_plural = "API usage"
        ordering = ["-day", "endpoint", "method", "status_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "day", "endpoint", "method", "status_code"], name="apiusage_one_row_per_counter"
            )
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="apiusage_tenant_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.method} {self.endpoint} → {self.status_code}: {self.count}"

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400


class AdminApiKey(HashedKey):
    """A superadmin's key to the admin API (`/api/v1/admin/`). It acts as its user, who must still
    be an active superuser whenever it is used; it reaches no tenant's API. Keys look like
    `<API_KEY_PREFIX>adm_<12 hex>_<secret>`, so they never pass for a tenant's key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = "admin API key"
        ordering = ["-created_at"]

    @classmethod
    def generate(cls, user: AbstractBaseUser, name: str) -> tuple[AdminApiKey, str]:
        prefix, raw_key = new_raw_key(admin_key_word())
        key = cls.objects.create(user=user, name=name, prefix=prefix, key_hash=hash_api_key(raw_key))
        return key, raw_key


def admin_key_word() -> str:
    return f"{settings.API_KEY_PREFIX}adm"


class AuditLog(models.Model):
    """Who did what to which tenant's data, from where. Append-only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=200, blank=True, help_text="Who acted, kept even if the user or key is deleted."
    )
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="auditlog_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label or 'system'} {self.action} {self.target}"


class ActivityLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class ActivityKind(models.TextChoices):
    """What happened. Apps record these through `tenants.activity.record`; tenants knows their
    names only, never their models."""

    SYNC_COMPLETED = "sync.completed", "Sync completed"
    SYNC_FAILED = "sync.failed", "Sync failed"
    WEBHOOK_PROCESSED = "webhook.processed", "Webhook events processed"
    WEBHOOK_PARKED = "webhook.parked", "Webhook event parked"
    PAYMENT_PROCESSED = "payment.processed", "Payment processed"
    CAMPAIGN_SENT = "campaign.sent", "Campaign sent"
    CONNECTION_FAILING = "connection.failing", "Connection failing"
    CONNECTION_PAUSED = "connection.paused", "Scheduled syncs paused"
    CONNECTION_RECOVERED = "connection.recovered", "Connection recovered"


class Activity(TenantOwned):
    """One thing that happened to a tenant's data or connections, for the activity stream on the
    dashboards and in the API. Written once, after the change it describes commits; kept for
    ACTIVITY_RETENTION_DAYS. The connection is a plain id (tenants imports no app), and `subject`
    names the object in words or as `<type>:<id>`."""

    kind = models.CharField(max_length=32, choices=ActivityKind.choices)
    level = models.CharField(max_length=8, choices=ActivityLevel.choices, default=ActivityLevel.INFO)
    message = models.CharField(max_length=500)
    connection_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "activity"
        ordering = ["-id"]
        indexes = [
            # The feed polls "newer than the last id I have" per tenant; lists order by time.
            models.Index(fields=["tenant", "id"], name="activity_tenant_id"),
            models.Index(fields=["tenant", "-created_at"], name="activity_tenant_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind}: {self.message[:80]}"
