"""The API's view of connections and sync runs.

Credentials are write-only: they are checked against the platform catalogue on the way in and come
back only masked (non-secret fields in full, secret ones as "set, ending …abcd").
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from tenants.fields import SecretDict

from .errors import UnsafeURL
from .http import validate_public_url
from .models import Connection, SyncRun
from .platforms import CATALOGUE, CredentialField, PlatformSpec

# What a connection without sync runs shows, so every connection carries the same keys.
EMPTY_STATS: dict[str, Any] = {
    "total": 0,
    "successful": 0,
    "failed": 0,
    "running": 0,
    "success_rate": None,
    "average_duration": None,
    "last_duration": None,
    "last_status": None,
    "last_finished_at": None,
}


def masked_credentials(connection: Connection) -> dict[str, str]:
    """The stored credentials as people may see them: non-secret catalogue fields in full, secret
    (and any field the catalogue does not know) masked."""
    stored = SecretDict(connection.credentials or {})
    masked = stored.masked()
    spec = CATALOGUE.get(connection.platform)
    public = {f.name for f in spec.credentials if not f.secret} if spec else set()
    return {name: str(value) if name in public else masked[name] for name, value in stored.items()}


def clean_credentials(
    spec: PlatformSpec, incoming: dict[str, Any], stored: dict[str, Any] | None = None
) -> tuple[SecretDict, list[str]]:
    """Check `incoming` against the catalogue and merge it into `stored` (empty on create).

    Unknown names are refused; values must be strings; secret values must be non-empty on create,
    and an empty secret on update keeps the stored one. Returns the merged credentials and the
    names (never values) of the fields that changed, or raises a ValidationError keyed by field.
    """
    updating = stored is not None
    merged = SecretDict(stored or {})
    fields = {f.name: f for f in spec.credentials}
    errors: dict[str, str] = {}
    changed: list[str] = []
    for name, value in incoming.items():
        cred = fields.get(name)
        if cred is None:
            errors[name] = f"{spec.label} has no credential “{name}”; its fields are {', '.join(fields)}."
            continue
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[name] = "Send the value as a string."
            continue
        value = value.strip()
        if not value:
            if cred.secret and updating:
                continue  # an empty secret keeps the stored one, as in the admin form
            if cred.secret:
                errors[name] = "A secret must be a non-empty string; leave out an optional one you do not have."
            elif cred.required:
                errors[name] = "This credential is required."
            elif name in merged:
                del merged[name]
                changed.append(name)
            continue
        if problem := value_problem(cred, value):
            errors[name] = problem
            continue
        if merged.get(name) != value:
            merged[name] = value
            changed.append(name)
    for cred in spec.credentials:
        if cred.required and not merged.get(cred.name) and cred.name not in errors:
            errors[cred.name] = "This credential is required."
    if errors:
        raise serializers.ValidationError({"credentials": errors})
    return merged, changed


def value_problem(cred: CredentialField, value: str) -> str | None:
    """Why a filled-in credential's value is refused (not one of its choices, an address that is not
    public), or None. The message never repeats a secret's value."""
    if cred.choices and value not in cred.choices:
        return f"Choose one of: {', '.join(cred.choices)}."
    if cred.name.endswith("_url"):
        try:
            validate_public_url(value)
        except UnsafeURL as error:
            return "This is not a public https:// address." if cred.secret else str(error)
    return None


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Credential field name → value, as the platform catalogue lists them. Secret values are "
        "write-only: they come back masked.",
    }
)
class CredentialsField(serializers.Field):
    """Reads as the masked credentials of the connection; writes a JSON object of name → value,
    checked against the platform in `ConnectionSerializer.validate`."""

    default_error_messages = {"not_a_dict": "Send the credentials as a JSON object of field names to values."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, connection: Connection) -> dict[str, str]:
        return masked_credentials(connection)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        return {"credentials": data}


class SyncStatsSerializer(serializers.Serializer):
    """A connection's sync figures (`connection_stats`)."""

    total = serializers.IntegerField(help_text="Finished runs.")
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    running = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="Per cent of finished runs that succeeded.")
    average_duration = serializers.FloatField(allow_null=True, help_text="Seconds, over successful runs.")
    last_duration = serializers.FloatField(allow_null=True, help_text="Seconds.")
    last_status = serializers.CharField(allow_null=True)
    last_finished_at = serializers.DateTimeField(allow_null=True)


class ConnectionSerializer(serializers.ModelSerializer):
    platform = serializers.ChoiceField(
        choices=[(p, spec.label) for p, spec in CATALOGUE.items()],
        error_messages={"invalid_choice": "“{input}” is not a platform; GET /api/v1/platforms lists them."},
    )
    credentials = CredentialsField()
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = [
            "id",
            "uuid",
            "platform",
            "name",
            "status",
            "last_tested_at",
            "last_test_result",
            "last_error",
            "sync_frequency",
            "enabled",
            "base_url",
            "credentials",
            "cursors",
            "created_at",
            "updated_at",
            "stats",
        ]
        read_only_fields = [
            "id",
            "uuid",
            "status",
            "last_tested_at",
            "last_test_result",
            "last_error",
            "cursors",
            "created_at",
            "updated_at",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed_credentials: list[str] = []
        self.changed_fields: list[str] = []

    @extend_schema_field(SyncStatsSerializer)
    def get_stats(self, connection: Connection) -> dict[str, Any]:
        return {**EMPTY_STATS, **self.context.get("stats", {}).get(connection.pk, {})}

    def validate_base_url(self, value: str) -> str:
        if value:
            try:
                validate_public_url(value)
            except UnsafeURL as error:
                raise serializers.ValidationError(str(error)) from error
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            if attrs.pop("platform", self.instance.platform) != self.instance.platform:
                raise serializers.ValidationError(
                    {"platform": "A connection's platform cannot change; create a new connection instead."}
                )
            spec, stored = self.instance.spec, self.instance.credentials or {}
        else:
            spec, stored = CATALOGUE[attrs["platform"]], None
        if "credentials" in attrs:
            attrs["credentials"], self.changed_credentials = clean_credentials(spec, attrs["credentials"], stored)
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Connection:
        self.changed_credentials = sorted(validated_data.get("credentials", {}))
        return Connection.objects.create(**validated_data)

    def update(self, instance: Connection, validated_data: dict[str, Any]) -> Connection:
        # Save only what the request changed: a running sync updates the lease and cursors on the
        # same row, and a full save from this (possibly stale) copy would overwrite them.
        for name, value in validated_data.items():
            if getattr(instance, name) != value:
                setattr(instance, name, value)
                self.changed_fields.append(name)
        if self.changed_fields:
            instance.save(update_fields=[*self.changed_fields, "updated_at"])
        return instance


class ConnectionStatusSerializer(serializers.ModelSerializer):
    """One line of `GET /integrations/status`: the connection's state and its sync figures."""

    stats = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = ["id", "name", "platform", "status", "enabled", "last_tested_at", "last_error", "stats"]
        read_only_fields = fields

    @extend_schema_field(SyncStatsSerializer)
    def get_stats(self, connection: Connection) -> dict[str, Any]:
        return {**EMPTY_STATS, **self.context.get("stats", {}).get(connection.pk, {})}


class SyncRequestSerializer(serializers.Serializer):
    """The optional body of `POST /integrations/{id}/sync`."""

    streams = serializers.ListField(child=serializers.CharField(), required=False)
    full = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        spec: PlatformSpec = self.context["connection"].spec
        if not spec.streams:
            raise serializers.ValidationError({"streams": f"{spec.label} connections have nothing to sync."})
        streams = list(dict.fromkeys(attrs.get("streams") or []))
        unknown = [s for s in streams if s not in spec.streams]
        if unknown:
            raise serializers.ValidationError(
                {"streams": f"Unknown stream(s): {', '.join(unknown)}. {spec.label} syncs: {', '.join(spec.streams)}."}
            )
        attrs["streams"] = streams
        return attrs


class SyncRunSerializer(serializers.ModelSerializer):
    connection = serializers.IntegerField(source="connection_id", read_only=True)
    totals = serializers.ReadOnlyField()
    percent = serializers.ReadOnlyField()
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "connection",
            "trigger",
            "streams",
            "full",
            "status",
            "progress",
            "counts",
            "totals",
            "percent",
            "error",
            "error_code",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True, help_text="Seconds; null until the run finishes."))
    def get_duration_seconds(self, run: SyncRun) -> float | None:
        duration = run.duration
        return round(duration.total_seconds(), 2) if duration is not None else None


# --- Schema-only shapes: what the catalogue and a connection test return ---


class CredentialFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    secret = serializers.BooleanField()
    required = serializers.BooleanField()
    help_text = serializers.CharField()
    example = serializers.CharField()
    choices = serializers.ListField(child=serializers.CharField())


class PlatformSerializer(serializers.Serializer):
    """One platform of the catalogue (`PlatformSpec.as_dict()`)."""

    platform = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField()
    credentials = CredentialFieldSerializer(many=True)
    scopes = serializers.ListField(child=serializers.CharField())
    streams = serializers.ListField(child=serializers.CharField())
    rate_limit = serializers.FloatField(help_text="Requests per second one connection may make.")
    rate_burst = serializers.IntegerField()
    docs_url = serializers.CharField()
    oauth = serializers.BooleanField()
    extra = serializers.DictField()


# One object holding the list: `many=False` keeps drf-spectacular from wrapping the `list` action's
# response in an array.
@extend_schema_serializer(many=False)
class PlatformListSerializer(serializers.Serializer):
    results = PlatformSerializer(many=True)


class CheckResultSerializer(serializers.Serializer):
    """The result of a connection test (`CheckResult.as_dict()`)."""

    ok = serializers.BooleanField()
    message = serializers.CharField()
    hint = serializers.CharField()
    error_code = serializers.CharField()
    granted = serializers.ListField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.CharField())
    samples = serializers.DictField(child=serializers.IntegerField())
    warnings = serializers.ListField(child=serializers.CharField())
    latency_ms = serializers.IntegerField(allow_null=True)
    details = serializers.DictField()


# --- Schema-only shapes: the setup status (`setup_status.setup_status`) ---


class LastSyncSerializer(serializers.Serializer):
    finished_at = serializers.DateTimeField()
    status = serializers.CharField(help_text="succeeded, failed or skipped.")


class RecordCountsSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    products = serializers.IntegerField()
    customers = serializers.IntegerField()
    inventory = serializers.IntegerField(help_text="Stock levels (a variant at a location).")


class ConfigurationSerializer(serializers.Serializer):
    complete = serializers.BooleanField(help_text="Nothing missing, nothing invalid.")
    missing = serializers.ListField(
        child=serializers.CharField(), help_text="Credential fields that must be filled in, by name."
    )
    invalid = serializers.DictField(
        child=serializers.CharField(),
        help_text="Credential field name → why its value is refused. A secret's value is never repeated.",
    )


class SetupConnectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    enabled = serializers.BooleanField()
    last_sync = LastSyncSerializer(allow_null=True, help_text="The last sync that finished; null before the first.")
    records = RecordCountsSerializer(help_text="The tenant's rows that came from this connection.")
    configuration = ConfigurationSerializer()


class SetupPlatformSerializer(serializers.Serializer):
    platform = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField()
    connected = serializers.BooleanField(help_text="An enabled connection of this platform is connected.")
    connections = SetupConnectionSerializer(many=True)


@extend_schema_serializer(many=False)
class SetupStatusSerializer(serializers.Serializer):
    results = SetupPlatformSerializer(many=True, help_text="Every platform of the catalogue, in its order.")
