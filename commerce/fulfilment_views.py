"""The client's fulfilment pages (`/dashboard/fulfilment/`): the orders still to ship across every
channel, oldest first, with a fulfil form each; a CSV upload for many at once; each fulfilment's
push result; the figures; the settings; and the auto-fulfilment rules with their dry run.

Every query is scoped with `for_tenant(request.tenant)`: another tenant's order or rule is a 404.
Viewers see everything; fulfilling, uploading and rules need an editor role or above, settings an
owner or admin."""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenants import audit
from tenants.api import WRITE_ROLES, member_role
from tenants.models import KEY_MANAGER_ROLES
from tenants.views import tenant_required

from . import carriers, pushes
from .fulfilment import FulfilmentError, fulfil, remaining_by_order, waiting_orders
from .fulfilment_bulk import BulkError, bulk_fulfil, rows_from_csv
from .fulfilment_metrics import analytics
from .fulfilment_rules import PREVIEW_DAYS, RuleError, check_rule, parse_skus, preview
from .metrics import channel_label
from .models import Fulfilment, FulfilmentRule, FulfilmentSettings, FulfilmentSource, Order
from .models import FulfilmentPushStatus as Status

ORDERS_PER_PAGE = 25
RECENT_FULFILMENTS = 25
READ_ONLY = "Your role in this client is read-only: ask an editor to fulfil orders."
SETTINGS_ROLES = "Only the client's owners and admins change the fulfilment settings."


def can_fulfil(request: HttpRequest) -> bool:
    return member_role(request, request.tenant) in WRITE_ROLES


def age(since, now=None) -> str:
    """How long ago, in days and hours (or hours and minutes under a day)."""
    seconds = int(((now or timezone.now()) - since).total_seconds())
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h" if days else f"{hours} h {rest // 60} min"


class SettingsForm(forms.ModelForm):
    class Meta:
        model = FulfilmentSettings
        fields = ["sla_hours", "notify_customers", "notify_via"]
        widgets = {"sla_hours": forms.NumberInput(attrs={"min": 1, "max": 8760})}

    def clean_sla_hours(self) -> int:
        hours = self.cleaned_data["sla_hours"]
        if not 1 <= hours <= 8760:
            raise forms.ValidationError("Use 1 to 8760 hours (a year).")
        return hours


class BulkForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with a header row: order number, tracking number, carrier, and optionally sku, quantity, "
        "channel."
    )


# --- The page ----------------------------------------------------------------------------------------


@tenant_required
def fulfilment_home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    orders = waiting_orders(tenant).defer("raw", "billing_address", "shipping_address")
    channel = request.GET.get("channel", "")[:32]
    if channel:
        orders = orders.filter(channel=channel)
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = _pending_rows(tenant, list(page.object_list), now)
    status = request.GET.get("status", "")
    recent = Fulfilment.objects.for_tenant(tenant).select_related("order")
    if status in Status.values:
        recent = recent.filter(status=status)
    settings_row = FulfilmentSettings.of(tenant)
    context = {
        "page": page,
        "rows": rows,
        "channel": channel,
        "channel_choices": [
            (c, channel_label(c))
            for c in waiting_orders(tenant).order_by("channel").values_list("channel", flat=True).distinct()
        ],
        "recent": recent.defer("order__raw", "order__billing_address", "order__shipping_address")[:RECENT_FULFILMENTS],
        "status": status if status in Status.values else "",
        "status_choices": Status.choices,
        "figures": analytics(tenant, 30, now=now),
        "settings_form": SettingsForm(instance=settings_row),
        "can_fulfil": can_fulfil(request),
        "can_change_settings": member_role(request, tenant) in KEY_MANAGER_ROLES,
        "bulk_form": BulkForm(),
        "rules": FulfilmentRule.objects.for_tenant(tenant).count(),
        "notify_default": settings_row.notify_customers,
    }
    return render(request, "dashboard/fulfilment.html", context)


def _pending_rows(tenant, orders: list[Order], now) -> list[dict]:
    left = remaining_by_order(order.pk for order in orders)
    by_order: dict[int, list[Fulfilment]] = {}
    for fulfilment in Fulfilment.objects.for_tenant(tenant).filter(order__in=orders).order_by("-created_at", "-pk"):
        by_order.setdefault(fulfilment.order_id, []).append(fulfilment)
    accepted: dict[int, list[tuple[str, str]]] = {}
    rows = []
    for order in orders:
        if order.connection_id not in accepted:
            codes = pushes.pusher().carriers(tenant.pk, order.connection_id)
            accepted[order.connection_id] = [(c, carriers.CARRIERS[c].name) for c in codes if c in carriers.CARRIERS]
        remaining = left[order.pk]
        rows.append(
            {
                "order": order,
                "channel": channel_label(order.channel),
                "age": age(order.placed_at, now),
                "lines": [
                    {"id": pk, "label": remaining.labels[pk], "left": quantity}
                    for pk, quantity in remaining.lines.items()
                ],
                "anything_left": remaining.anything,
                "fulfilments": by_order.get(order.pk, []),
                "carriers": accepted[order.connection_id],
            }
        )
    return rows


# --- Fulfilling --------------------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    base = reverse("dashboard:fulfilment")
    return redirect(target if target.startswith(base) and "//" not in target else base)


@require_POST
@tenant_required
def fulfil_order(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_fulfil(request):
        return HttpResponseForbidden(READ_ONLY)
    order = get_object_or_404(Order.objects.for_tenant(request.tenant), pk=pk)
    lines = []
    for key, value in request.POST.items():
        if key.startswith("qty-") and value.strip():
            try:
                lines.append((int(key.removeprefix("qty-")), int(value)))
            except ValueError:
                messages.error(request, f"Order #{order.number}: quantities are whole numbers.")
                return _back(request)
    try:
        fulfilment = fulfil(
            order,
            request.POST.get("tracking_number", ""),
            request.POST.get("carrier", ""),
            lines,
            notify_customer=request.POST.get("notify_customer") == "on",
            by=request.user,
            source=FulfilmentSource.MANUAL,
        )
    except FulfilmentError as problem:
        messages.error(request, f"Order #{order.number} was not fulfilled: {problem}")
        return _back(request)
    audit.record("order.fulfilment_created", request=request, tenant=request.tenant, target=order)
    messages.success(
        request, f"Order #{order.number}: fulfilment {fulfilment.pk} stored; it is being pushed to its platform."
    )
    return _back(request)


@require_POST
@tenant_required
def bulk_upload(request: HttpRequest) -> HttpResponse:
    if not can_fulfil(request):
        return HttpResponseForbidden(READ_ONLY)
    form = BulkForm(request.POST, request.FILES)
    result = error = None
    if form.is_valid():
        try:
            rows = rows_from_csv(form.cleaned_data["file"])
            result = bulk_fulfil(request.tenant, rows, by=request.user, source=FulfilmentSource.CSV)
        except BulkError as problem:
            error = str(problem)
        else:
            audit.record(
                "order.fulfilment_bulk",
                request=request,
                tenant=request.tenant,
                rows=result.rows,
                created=len(result.created),
                failed=len(result.failures),
            )
    else:
        error = "Choose a CSV file."
    context = {"result": result, "error": error, "bulk_form": form}
    return render(request, "dashboard/fulfilment_bulk.html", context, status=400 if error else 200)


@require_POST
@tenant_required
def fulfilment_settings(request: HttpRequest) -> HttpResponse:
    if member_role(request, request.tenant) not in KEY_MANAGER_ROLES:
        return HttpResponseForbidden(SETTINGS_ROLES)
    form = SettingsForm(request.POST, instance=FulfilmentSettings.of(request.tenant))
    if form.is_valid():
        row = form.save(commit=False)
        row.updated_at = timezone.now()
        row.save()
        audit.record("fulfilment.settings_changed", request=request, tenant=request.tenant, sla_hours=row.sla_hours)
        messages.success(request, "Fulfilment settings saved.")
    else:
        messages.error(request, "Settings not saved: " + " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("dashboard:fulfilment")


# --- Rules -------------------------------------------------------------------------------------------


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    skus = forms.CharField(
        label="SKUs", required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One a line, or commas."
    )
    sku_prefix = forms.CharField(label="SKU prefix", max_length=128, required=False)
    connection = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any connection")
    carrier = forms.CharField(max_length=100, help_text="e.g. UPS, Royal Mail.")
    tracking_number = forms.CharField(max_length=128, required=False, help_text="Empty for digital goods.")
    notify_customer = forms.BooleanField(required=False, initial=True)
    enabled = forms.BooleanField(required=False, initial=False, help_text="Off: preview it first.")

    def __init__(self, tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["connection"].queryset = (
            apps.get_model("integrations", "Connection").objects.for_tenant(tenant).order_by("name")
        )

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        data["skus"] = parse_skus(data.get("skus", ""))
        try:
            data["carrier"] = check_rule(
                self.tenant,
                carrier=data["carrier"],
                skus=data["skus"],
                sku_prefix=data.get("sku_prefix", "").strip(),
                connection=data.get("connection"),
            )
        except RuleError as problem:
            raise forms.ValidationError(str(problem)) from None
        return data


@tenant_required
def rules(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.tenant, request.POST or None)
    if request.method == "POST":
        if not can_fulfil(request):
            return HttpResponseForbidden(READ_ONLY)
        if form.is_valid():
            data = form.cleaned_data
            rule = FulfilmentRule.objects.create(
                tenant=request.tenant,
                name=data["name"],
                skus=data["skus"],
                sku_prefix=data["sku_prefix"].strip(),
                connection=data["connection"],
                carrier=data["carrier"],
                tracking_number=data["tracking_number"].strip(),
                notify_customer=data["notify_customer"],
                enabled=data["enabled"],
                created_by=request.user,
            )
            audit.record("fulfilment_rule.created", request=request, tenant=request.tenant, target=rule)
            messages.success(request, f"Rule “{rule.name}” saved.")
            return redirect("dashboard:fulfilment-rule-preview", pk=rule.pk)
    context = {
        "rules": FulfilmentRule.objects.for_tenant(request.tenant).select_related("connection"),
        "form": form,
        "can_fulfil": can_fulfil(request),
    }
    return render(request, "dashboard/fulfilment_rules.html", context, status=400 if form.errors else 200)


@require_POST
@tenant_required
def rule_change(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_fulfil(request):
        return HttpResponseForbidden(READ_ONLY)
    rule = get_object_or_404(FulfilmentRule.objects.for_tenant(request.tenant), pk=pk)
    change = request.POST.get("change")
    if change == "delete":
        audit.record("fulfilment_rule.deleted", request=request, tenant=request.tenant, target=rule)
        rule.delete()
        messages.success(request, f"Rule “{rule.name}” deleted.")
    elif change in ("enable", "disable"):
        rule.enabled = change == "enable"
        rule.save()
        audit.record("fulfilment_rule.changed", request=request, tenant=request.tenant, target=rule, change=change)
        messages.success(request, f"Rule “{rule.name}” switched {'on' if rule.enabled else 'off'}.")
    return redirect("dashboard:fulfilment-rules")


@tenant_required
def rule_preview(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(FulfilmentRule.objects.for_tenant(request.tenant).select_related("connection"), pk=pk)
    matches = preview(rule)
    context = {
        "rule": rule,
        "matches": [(m, channel_label(m.order.channel)) for m in matches],
        "days": PREVIEW_DAYS,
        "carrier": carriers.CARRIERS[rule.carrier].name if rule.carrier in carriers.CARRIERS else rule.carrier,
        "can_fulfil": can_fulfil(request),
    }
    return render(request, "dashboard/fulfilment_rule_preview.html", context)
