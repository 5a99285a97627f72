"""Forms of the campaign pages (client dashboard) and of the SuperAdmin dashboard.

The checks are the ones the API makes (campaigns.campaign_serializers): a campaign's connection
sends its channel, its templates compile in the sandbox (an error lands on the field it is in),
its connection and segment are the tenant's own; segment rules go through `segments.validate`.

The segment editor sends rules as rows of text (a field, an operator and what was typed as the
value); `rules_from_rows` reads the text the way each field's type needs (lists split on commas,
"between" as two values, yes/no for a boolean) and leaves the judging to `segments.validate`.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.models import Connection

from . import consent, messaging, segments, templating
from .models import Campaign, Channel, Segment, Suppression
from .providers import PROVIDERS

TEMPLATE_FIELDS = ("subject", "subject_b", "body", "html")
TRUE_WORDS = {"yes", "true", "1", "on", "y"}
FALSE_WORDS = {"no", "false", "0", "off", "n"}


# --- Campaign content -----------------------------------------------------------------------------


def check_content(form: forms.Form, data: dict) -> None:
    """The checks every campaign form makes: channel against connection, templates, A/B share."""
    channel, connection = data.get("channel"), data.get("connection")
    if connection is not None and channel and messaging.channel_of(connection.platform) != channel:
        form.add_error(
            "connection", f"{connection.get_platform_display()} does not send {Channel(channel).label} messages."
        )
    if channel == Channel.SMS:
        # An SMS has only its text: what was typed in the email fields is not kept.
        data.update(subject="", subject_b="", html="", ab_share=0)
    for name in TEMPLATE_FIELDS:
        if data.get(name):
            try:
                templating.check(data[name], field=name)
            except templating.TemplateProblem as problem:
                form.add_error(name, problem.message)
    if data.get("ab_share") and not (data.get("subject_b", "").strip() and 2 <= data["ab_share"] <= 50):
        form.add_error("ab_share", "An A/B test needs a second subject and a share between 2 and 50 percent.")
    elif data.get("subject_b", "").strip() and not data.get("ab_share"):
        form.add_error("ab_share", "Say which share of the recipients tests the two subjects (2 to 50 percent).")


class ConnectionSelect(forms.Select):
    """A select whose options carry their connection's channel (`data-channel`), so the page can
    offer only the connections of the channel chosen."""

    channels: dict[int, str]

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        pk = getattr(value, "value", value)
        if pk in getattr(self, "channels", {}):
            option["attrs"]["data-channel"] = self.channels[pk]
        return option


class CampaignForm(forms.ModelForm):
    """A draft campaign on the client dashboard: the tenant's own connections and segments only."""

    class Meta:
        model = Campaign
        fields = [
            "name",
            "channel",
            "connection",
            "segment",
            "subject",
            "subject_b",
            "ab_share",
            "ab_wait_minutes",
            "body",
            "html",
            "discount_code",
        ]
        labels = {
            "subject_b": "Second subject (A/B test)",
            "ab_share": "Test share (%)",
            "ab_wait_minutes": "Wait before picking the winner (minutes)",
            "body": "Text",
            "html": "HTML",
        }
        help_texts = {
            "ab_share": "Percent of the recipients split between the two subjects; the subject with more opens "
            "goes to the rest. 0: no test.",
            "body": "The SMS, or the email's plain-text part (made from the HTML when empty).",
        }
        widgets = {
            "connection": ConnectionSelect,
            "subject": forms.TextInput(attrs={"size": 60}),
            "subject_b": forms.TextInput(attrs={"size": 60}),
            "body": forms.Textarea(attrs={"rows": 5, "cols": 70}),
            "html": forms.Textarea(attrs={"rows": 12, "cols": 70, "class": "mono"}),
            "ab_share": forms.NumberInput(attrs={"min": 0, "max": 50}),
        }

    def __init__(self, tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["channel"].choices = Channel.choices
        if self.instance.pk is None:
            self.fields["channel"].initial = Channel.EMAIL
        connections = list(messaging.messaging_connections(tenant).order_by("name", "pk"))
        self.fields["connection"].queryset = messaging.messaging_connections(tenant).order_by("name", "pk")
        self.fields["connection"].label_from_instance = _connection_label
        self.fields["connection"].widget.channels = {c.pk: messaging.channel_of(c.platform) for c in connections}
        self.fields["segment"].queryset = Segment.objects.for_tenant(tenant).order_by("name")
        self.fields["segment"].required = True
        self.fields["segment"].help_text = "Who it goes to: the segment's customers when it starts sending."

    def clean(self) -> dict:
        data = super().clean()
        check_content(self, data)
        return data


def _connection_label(connection: Connection) -> str:
    channel = messaging.channel_of(connection.platform)
    return f"{connection.name} ({connection.get_platform_display()}, {Channel(channel).label})"


class ScheduleForm(forms.Form):
    scheduled_at = forms.CharField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: now.",
    )

    def __init__(self, tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["scheduled_at"].label = f"Send at ({tenant.time_zone} time)"

    def clean_scheduled_at(self) -> datetime | None:
        """A time from the page is in the tenant's time zone."""
        value = (self.cleaned_data.get("scheduled_at") or "").strip()
        if not value:
            return None
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None
        if moment is None:
            raise forms.ValidationError("Give a date and time, e.g. 2026-12-01 09:00.")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, zoneinfo.ZoneInfo(self.tenant.time_zone))
        return moment


def local_input_value(moment: datetime | None, time_zone: str) -> str:
    """A time as a datetime-local input shows it, in the tenant's time zone."""
    if moment is None:
        return ""
    return timezone.localtime(moment, zoneinfo.ZoneInfo(time_zone)).strftime("%Y-%m-%dT%H:%M")


# --- Segments -------------------------------------------------------------------------------------


def coerce_value(field: str, op: str, value: Any) -> Any:
    """A value typed into the editor in the shape `segments.validate` reads; anything it cannot
    read is passed on as it is, for validate to name the problem."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    kind = segments.FIELDS.get(field, {}).get("type")
    if op == "between":
        return [part.strip() for part in re.split(r"\s*(?:,|;|\band\b|\bto\b)\s*", text) if part.strip()]
    if kind in ("choices", "countries"):
        return [part for part in re.split(r"[\s,;]+", text) if part]
    if kind == "boolean":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
    return text


def value_text(value: Any) -> str:
    """A stored rule value as the editor shows it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def rules_from_rows(match: str, rows: list[dict]) -> tuple[dict, list[int]]:
    """The rules of the editor's rows (rows without a field are left out), and for each rule the
    row it came from, so a problem can be shown on its row."""
    rules, positions = [], []
    for index, row in enumerate(rows):
        field = str(row.get("field") or "")
        if not field:
            continue
        op = str(row.get("op") or "")
        rules.append({"field": field, "op": op, "value": coerce_value(field, op, row.get("value"))})
        positions.append(index)
    return {"match": match or "all", "rules": rules}, positions


def problem_row(error: segments.SegmentError, positions: list[int]) -> int | None:
    """The editor row a SegmentError is about ("rules[2].value" → the third rule's row)."""
    found = re.match(r"rules\[(\d+)\]", error.field)
    if not found or int(found.group(1)) >= len(positions):
        return None
    return positions[int(found.group(1))]


class SegmentForm(forms.ModelForm):
    """A segment's name and description; its rules come from the editor's rows (`set_rules`)."""

    match = forms.ChoiceField(
        choices=[("all", "every rule"), ("any", "at least one rule")], initial="all", label="Customers matching"
    )

    class Meta:
        model = Segment
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, tenant, *args, rows: list[dict] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.rows = rows or []
        self.row_errors: dict[int, str] = {}
        if self.instance.pk and not self.is_bound:
            self.fields["match"].initial = (self.instance.rules or {}).get("match", "all")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Segment.objects.for_tenant(self.tenant).filter(name=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("You have a segment with this name already.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        rules, positions = rules_from_rows(data.get("match", "all"), self.rows)
        try:
            data["rules"] = segments.validate(rules)
        except segments.SegmentError as error:
            row = problem_row(error, positions)
            if row is None:
                self.add_error(None, error.message)
            else:
                self.row_errors[row] = error.message
                self.add_error(None, f"Rule {row + 1}: {error.message}")
        return data

    def save(self, commit: bool = True) -> Segment:
        segment = super().save(commit=False)
        segment.tenant = self.tenant
        segment.rules = self.cleaned_data["rules"]
        segment.updated_at = timezone.now()
        if commit:
            segment.save()
        return segment


def rows_from_post(data) -> list[dict]:
    """The editor's rows from a form post (the repeated field / op / value inputs)."""
    fields, ops, values = data.getlist("field"), data.getlist("op"), data.getlist("value")
    return [
        {"field": field, "op": ops[i] if i < len(ops) else "", "value": values[i] if i < len(values) else ""}
        for i, field in enumerate(fields)
    ]


def rows_of(segment: Segment | None) -> list[dict]:
    """A saved segment's rules as the editor's rows."""
    rules = (segment.rules or {}).get("rules", []) if segment is not None else []
    return [{"field": r["field"], "op": r["op"], "value": value_text(r.get("value"))} for r in rules]


# --- Suppressions ---------------------------------------------------------------------------------


def clean_address(form: forms.Form, channel: str | None, address: str) -> str:
    """The address in the form the suppression list holds it, or an error on the form's address."""
    if not channel:
        return address
    try:
        if channel == Channel.SMS:
            return consent.normalise(channel, messaging.check_phone(address, field="address"))
        return consent.normalise(channel, messaging.check_email(address, field="address"))
    except messaging.MessageError as error:
        form.add_error("address", error.message)
        return address


class SuppressionForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices)
    address = forms.CharField(max_length=320, help_text="An email address, or a phone number in E.164 (+14155552671).")
    detail = forms.CharField(max_length=255, required=False, label="Note")

    def clean(self) -> dict:
        data = super().clean()
        if "address" in data:
            data["address"] = clean_address(self, data.get("channel"), data["address"])
        return data


# --- SuperAdmin -----------------------------------------------------------------------------------


class SegmentAdminForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["tenant", "name", "description", "rules"]

    def clean_rules(self):
        try:
            return segments.validate(self.cleaned_data.get("rules"))
        except segments.SegmentError as error:
            raise forms.ValidationError(f"{error.field}: {error.message}") from None

    def clean(self) -> dict:
        data = super().clean()
        # With the tenant read only (a saved segment), the (tenant, name) constraint is not checked
        # by the form: a clash would only show as a database error.
        if "tenant" not in self.fields and data.get("name"):
            taken = Segment.objects.for_tenant(self.instance.tenant_id).filter(name=data["name"])
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("name", "This client has a segment with this name already.")
        return data


class CampaignAdminForm(forms.ModelForm):
    """A draft in the SuperAdmin: any tenant's, so its connection and segment must be that tenant's."""

    class Meta:
        model = Campaign
        fields = ["tenant", "name", "channel", "connection", "segment", *TEMPLATE_FIELDS]
        fields += ["ab_share", "ab_wait_minutes", "discount_code"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "connection" in self.fields:
            connections = Connection.objects.filter(platform__in=list(PROVIDERS)).select_related("tenant")
            self.fields["connection"].queryset = connections.order_by("tenant__name", "name")
            self.fields["connection"].label_from_instance = lambda c: f"{c.tenant.name}: {_connection_label(c)}"
        if "segment" in self.fields:
            segments_ = Segment.objects.select_related("tenant").order_by("tenant__name", "name")
            self.fields["segment"].queryset = segments_
            self.fields["segment"].label_from_instance = lambda s: f"{s.tenant.name}: {s.name}"

    def clean(self) -> dict:
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is not None:
            if data.get("connection") is not None and data["connection"].tenant_id != tenant.pk:
                self.add_error("connection", f"This connection is not {tenant.name}'s.")
            if data.get("segment") is not None and data["segment"].tenant_id != tenant.pk:
                self.add_error("segment", f"This segment is not {tenant.name}'s.")
        if "channel" in self.fields:
            check_content(self, data)
        return data


class SuppressionAdminForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["tenant", "channel", "address", "detail"]

    def clean(self) -> dict:
        data = super().clean()
        if "address" in data:
            data["address"] = clean_address(self, data.get("channel"), data["address"])
        return data
