"""The client's campaign pages (`/dashboard/campaigns/`): the campaigns with their figures, the
draft editor with its preview, a campaign's page (figures, schedule, pause, resume, cancel), the
segment editor with its live count, and the suppression list.

The pages do what the campaigns API does (campaigns.campaign_api), through the same functions:
`campaigns.sending` for a campaign's life, `campaigns.segments` for rules and counts,
`campaigns.templating` for checks and previews, `campaigns.consent` for the suppression list.
Every query is scoped with `for_tenant(request.tenant)`: another tenant's campaign or segment is a
404. Viewers see everything; every POST needs an editor role or above.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenants import audit
from tenants.api import WRITE_ROLES, member_role
from tenants.views import tenant_required

from . import consent, messaging, segments, sending, templating
from .forms import (
    CampaignForm,
    ScheduleForm,
    SegmentForm,
    SuppressionForm,
    local_input_value,
    problem_row,
    rows_from_post,
    rows_of,
    rules_from_rows,
    value_text,
)
from .models import (
    Campaign,
    CampaignStatus,
    Channel,
    MessageStatus,
    Recipient,
    RecipientState,
    Segment,
    Suppression,
    SuppressionReason,
)

CAMPAIGNS_PER_PAGE = 25
SUPPRESSIONS_PER_PAGE = 50
READ_ONLY = "Your role in this client is read-only: ask an editor to change campaigns."
# The dashboard's badge classes (static/css/app.css) for each status.
BADGES = {
    CampaignStatus.DRAFT: "untested",
    CampaignStatus.SCHEDULED: "scheduled",
    CampaignStatus.SENDING: "running",
    CampaignStatus.SENT: "connected",
    CampaignStatus.PAUSED: "low",
    CampaignStatus.CANCELLED: "disabled",
    CampaignStatus.FAILED: "failing",
}
RATED = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")
UNSUBSCRIBES = (SuppressionReason.UNSUBSCRIBED, SuppressionReason.STOP)


def can_edit(request: HttpRequest) -> bool:
    return member_role(request, request.tenant) in WRITE_ROLES


def campaign_page(view: Callable) -> Callable:
    """A campaigns page: signed in with a current tenant; anyone reads, editors and up post."""

    @tenant_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST" and not can_edit(request):
            return HttpResponseForbidden(READ_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


# --- Figures ---------------------------------------------------------------------------------------


def _recipient_counts() -> dict:
    """The counts of sending.stats, as aggregates over a campaign's recipients."""
    return {
        "recipients": Count("pk"),
        "pending": Count("pk", filter=Q(state__in=[RecipientState.PENDING, RecipientState.SENDING])),
        "sent": Count("pk", filter=Q(state=RecipientState.SENT)),
        "delivered": Count("pk", filter=Q(message__status__in=sending.DELIVERED) | Q(message__opened_at__isnull=False)),
        "opened": Count("pk", filter=Q(message__opened_at__isnull=False)),
        "clicked": Count("pk", filter=Q(message__clicked_at__isnull=False)),
        "bounced": Count("pk", filter=Q(message__status=MessageStatus.BOUNCED)),
        "failed": Count(
            "pk",
            filter=Q(state=RecipientState.FAILED)
            | Q(state=RecipientState.SENT, message__status__in=sending.NOT_DELIVERED),
        ),
        "suppressed": Count("pk", filter=Q(state=RecipientState.SUPPRESSED)),
        "cancelled": Count("pk", filter=Q(state=RecipientState.CANCELLED)),
    }


def figures_by_campaign(tenant, campaigns: list[Campaign]) -> dict[int, dict]:
    """The figures of many campaigns, as `sending.stats` gives one's, in two queries whatever
    their number: the recipients' counts grouped by campaign, and the unsubscribes likewise."""
    ids = [campaign.pk for campaign in campaigns]
    counts = _recipient_counts()
    figures = {pk: {**dict.fromkeys(counts, 0), "unsubscribed": 0} for pk in ids}
    if not ids:
        return figures
    rows = (
        Recipient.objects.for_tenant(tenant)
        .filter(campaign_id__in=ids)
        .order_by()
        .values("campaign_id")
        .annotate(**counts)
    )
    for row in rows:
        figures[row.pop("campaign_id")].update(row)
    unsubscribed = (
        Suppression.objects.for_tenant(tenant)
        .filter(campaign_id__in=ids, reason__in=UNSUBSCRIBES)
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
    )
    for row in unsubscribed:
        figures[row["campaign_id"]]["unsubscribed"] = row["n"]
    for campaign in campaigns:
        found = figures[campaign.pk]
        if campaign.provider_campaign_id:
            # The provider sent it and counts its opens and clicks (as sending.stats reads them).
            found.update({k: v for k, v in (campaign.provider_report or {}).items() if k in found})
        with_rates(found)
    return figures


def with_rates(figures: dict) -> dict:
    sent = figures["sent"]
    for name in RATED:
        figures[f"{name}_rate"] = round(figures[name] / sent, 4) if sent else 0.0
    return figures


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _rates(figures: dict) -> dict[str, str]:
    """The rates as the list shows them: a share of the sent ones, or a dash before any is sent."""
    return {name: percent(figures[f"{name}_rate"]) if figures["sent"] else "—" for name in RATED}


def _cards(figures: dict) -> list[dict]:
    """The figures as the campaign page's cards: a count, and its share of the sent ones."""
    waiting = f"{figures['pending']} waiting · {figures['suppressed']} suppressed · {figures['cancelled']} cancelled"
    cards = [
        {"name": "recipients", "label": "Recipients", "value": figures["recipients"], "foot": waiting},
        {"name": "sent", "label": "Sent", "value": figures["sent"], "foot": "handed to the provider"},
    ]
    labels = {
        "delivered": "Delivered",
        "opened": "Opened",
        "clicked": "Clicked",
        "bounced": "Bounced",
        "unsubscribed": "Unsubscribed",
        "failed": "Failed",
    }
    for name, label in labels.items():
        foot = f"{percent(figures[f'{name}_rate'])} of sent" if figures["sent"] else "none sent yet"
        tone = "bad" if name in ("bounced", "failed") and figures[name] else ""
        cards.append({"name": name, "label": label, "value": figures[name], "foot": foot, "tone": tone})
    return cards


# --- Campaigns -------------------------------------------------------------------------------------


@campaign_page
def campaign_list(request: HttpRequest) -> HttpResponse:
    """The tenant's campaigns, newest first, 25 a page; their figures in two queries a page."""
    tenant = request.tenant
    campaigns = Campaign.objects.for_tenant(tenant).select_related("segment").defer("body", "html")
    status = request.GET.get("status", "")
    if status in CampaignStatus.values:
        campaigns = campaigns.filter(status=status)
    page = Paginator(campaigns.order_by("-created_at", "-pk"), CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    items = list(page.object_list)
    figures = figures_by_campaign(tenant, items)
    rows = [
        {
            "campaign": campaign,
            "badge": BADGES.get(campaign.status, ""),
            "figures": figures[campaign.pk],
            "rates": _rates(figures[campaign.pk]),
        }
        for campaign in items
    ]
    context = {
        "page": page,
        "rows": rows,
        "status": status if status in CampaignStatus.values else "",
        "status_choices": CampaignStatus.choices,
        "can_edit": can_edit(request),
        "tab": "campaigns",
    }
    return render(request, "dashboard/campaigns/list.html", context)


@campaign_page
def campaign_new(request: HttpRequest) -> HttpResponse:
    return _campaign_form(request, None)


@campaign_page
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.for_tenant(request.tenant), pk=pk)
    if campaign.status != CampaignStatus.DRAFT:
        messages.error(request, "Only a draft can be changed.")
        return redirect("campaigns:detail", pk=campaign.pk)
    return _campaign_form(request, campaign)


def _campaign_form(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    tenant = request.tenant
    form = CampaignForm(tenant, request.POST or None, instance=campaign)
    preview = None
    if request.method == "POST" and form.is_valid():
        if "preview" in request.POST:
            preview = _preview(form, tenant)
        else:
            saved = _save_draft(request, form, campaign)
            if saved is not None:
                messages.success(request, f"Draft “{saved.name}” saved.")
                return redirect("campaigns:detail", pk=saved.pk)
    context = {
        "form": form,
        "campaign": campaign,
        "preview": preview,
        "merge_fields": templating.MERGE_FIELDS,
        "opt_out": consent.SMS_OPT_OUT_FOOTER,
        "has_segments": Segment.objects.for_tenant(tenant).exists(),
        "has_connections": messaging.messaging_connections(tenant).exists(),
        "can_edit": can_edit(request),
        "tab": "campaigns",
    }
    return render(request, "dashboard/campaigns/form.html", context, status=400 if form.errors else 200)


def _save_draft(request: HttpRequest, form: CampaignForm, campaign: Campaign | None) -> Campaign | None:
    tenant = request.tenant
    now = timezone.now()
    if campaign is None:
        created = form.save(commit=False)
        created.tenant = tenant
        created.created_by = request.user
        created.updated_at = now
        created.save()
        audit.record("campaign.created", request=request, tenant=tenant, target=created)
        return created
    # Only while it is still a draft: someone may have scheduled it since the form was opened, and
    # the send task's fields (status, lease) are never written from a stale copy.
    fields = {name: form.cleaned_data[name] for name in CampaignForm.Meta.fields}
    changed = (
        Campaign.objects.for_tenant(tenant)
        .filter(pk=campaign.pk, status=CampaignStatus.DRAFT)
        .update(**fields, updated_at=now)
    )
    if not changed:
        messages.error(request, "The campaign is no longer a draft: your changes were not saved.")
        return None
    campaign.refresh_from_db()
    audit.record("campaign.changed", request=request, tenant=tenant, target=campaign)
    return campaign


def _preview(form: CampaignForm, tenant) -> dict | None:
    """The content filled in for a made-up customer (templating.sample_context); a template that
    fails while filling in is an error on its field."""
    data = form.cleaned_data
    context = templating.sample_context(tenant)
    zone = tenant.time_zone

    def fill(name: str, *, html: bool = False) -> str:
        return templating.render(data.get(name) or "", context, html=html, field=name, time_zone=zone)

    try:
        if data["channel"] == Channel.SMS:
            return {"channel": Channel.SMS, "text": fill("body").strip()}
        html = fill("html", html=True) if (data.get("html") or "").strip() else ""
        text = fill("body") if (data.get("body") or "").strip() else messaging.text_alternative(html)
        return {
            "channel": Channel.EMAIL,
            "subject": fill("subject"),
            "subject_b": fill("subject_b") if data.get("subject_b") else "",
            "html": html,
            "text": text,
        }
    except templating.TemplateProblem as problem:
        form.add_error(problem.field if problem.field in form.fields else None, problem.message)
        return None


@campaign_page
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = request.tenant
    campaign = get_object_or_404(
        Campaign.objects.for_tenant(tenant).select_related("connection", "segment", "created_by"), pk=pk
    )
    figures = sending.stats(campaign)
    states = dict(
        Recipient.objects.for_tenant(tenant)
        .filter(campaign=campaign)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    schedule_form = ScheduleForm(
        tenant,
        initial={
            "scheduled_at": local_input_value(campaign.scheduled_at, tenant.time_zone)
            if campaign.status == CampaignStatus.SCHEDULED
            else ""
        },
    )
    context = {
        "campaign": campaign,
        "badge": BADGES.get(campaign.status, ""),
        "figures": figures,
        "cards": _cards(figures),
        "states": [(value, label, states.get(value, 0)) for value, label in RecipientState.choices],
        "schedule_form": schedule_form,
        "can_edit": can_edit(request),
        "can_schedule": campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED),
        "can_pause": campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
        "can_resume": campaign.status == CampaignStatus.PAUSED,
        "can_cancel": campaign.status in sending.STOPPABLE,
        "tab": "campaigns",
    }
    return render(request, "dashboard/campaigns/detail.html", context)


ACTIONS: dict[str, tuple[Callable, str]] = {
    "pause": (sending.pause, "Paused: nothing more is sent until you resume it."),
    "resume": (sending.resume, "Resumed."),
    "cancel": (sending.cancel, "Cancelled: the recipients not yet sent will never be sent."),
}


@require_POST
@campaign_page
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Schedule, pause, resume or cancel: campaigns.sending decides what the status allows."""
    tenant = request.tenant
    campaign = get_object_or_404(Campaign.objects.for_tenant(tenant).select_related("connection", "segment"), pk=pk)
    try:
        if action == "schedule":
            form = ScheduleForm(tenant, request.POST)
            if not form.is_valid():
                messages.error(request, " ".join(form.errors["scheduled_at"]))
                return redirect("campaigns:detail", pk=pk)
            at = form.cleaned_data["scheduled_at"]
            sending.schedule(campaign, at, request=request)
            when = timezone.localtime(at, zoneinfo.ZoneInfo(tenant.time_zone)) if at else None
            done = f"Scheduled for {when:%d %b %Y, %H:%M} ({tenant.time_zone})." if when else "Scheduled to send now."
        else:
            call, done = ACTIONS[action]
            call(campaign, request=request)
    except sending.CampaignError as error:
        messages.error(request, f"Not done: {error.message}")
    else:
        messages.success(request, done)
    return redirect("campaigns:detail", pk=pk)


# --- Segments --------------------------------------------------------------------------------------


def describe(rules: dict | None) -> str:
    """Rules in words: "Country is one of US and Total spent more than 100"."""
    items = (rules or {}).get("rules") or []
    if not items:
        return "Every customer"
    joiner = " and " if (rules or {}).get("match", "all") == "all" else " or "
    return joiner.join(
        f"{segments.FIELDS.get(r['field'], {}).get('label', r['field'])} {segments.OPS.get(r['op'], r['op'])} "
        f"{value_text(r.get('value'))}".strip()
        for r in items
    )


def reach(tenant, rules: dict) -> dict[str, int]:
    """The live count: matching customers, and the distinct addresses email and SMS reach."""
    return {
        "customers": segments.count(tenant, rules),
        "email": segments.count(tenant, rules, Channel.EMAIL),
        "sms": segments.count(tenant, rules, Channel.SMS),
    }


@campaign_page
def segment_list(request: HttpRequest) -> HttpResponse:
    # No counts here: each is a query of its own, so they are on each segment's page.
    found = Segment.objects.for_tenant(request.tenant).annotate(campaign_count=Count("campaigns")).order_by("name")
    context = {
        "rows": [(segment, describe(segment.rules)) for segment in found],
        "can_edit": can_edit(request),
        "tab": "segments",
    }
    return render(request, "dashboard/campaigns/segments.html", context)


@campaign_page
def segment_new(request: HttpRequest) -> HttpResponse:
    return _segment_form(request, None)


@campaign_page
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _segment_form(request, get_object_or_404(Segment.objects.for_tenant(request.tenant), pk=pk))


def _segment_form(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    tenant = request.tenant
    rows = rows_from_post(request.POST) if request.method == "POST" else rows_of(segment)
    form = SegmentForm(tenant, request.POST or None, instance=segment, rows=rows)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        audit.record(f"segment.{'changed' if segment else 'created'}", request=request, tenant=tenant, target=saved)
        messages.success(request, f"Segment “{saved.name}” saved: {segments.count(tenant, saved.rules)} customers now.")
        return redirect("campaigns:segments")
    if request.method == "POST":
        match = request.POST.get("match", "all")
    else:
        match = (segment.rules or {}).get("match", "all") if segment else "all"
    rules, _ = rules_from_rows(match, rows)
    try:
        counts = reach(tenant, segments.validate(rules))
    except segments.SegmentError:
        counts = None
    editor_rows = [
        {
            **row,
            "ops": [(op, segments.OPS[op]) for op in segments.FIELDS.get(row["field"], {}).get("ops", segments.OPS)],
            "error": form.row_errors.get(index, ""),
        }
        for index, row in enumerate(rows)
    ]
    context = {
        "form": form,
        "segment": segment,
        "rows": editor_rows,
        "counts": counts,
        "fields": segments.FIELDS,
        "editor": {"fields": segments.FIELDS, "ops": segments.OPS},
        "campaigns": list(segment.campaigns.order_by("-created_at")[:10]) if segment else [],
        "can_edit": can_edit(request),
        "tab": "segments",
    }
    return render(request, "dashboard/campaigns/segment_form.html", context, status=400 if form.errors else 200)


@require_POST
@campaign_page
def segment_count(request: HttpRequest) -> JsonResponse:
    """The live count while editing: `{"match", "rules": [{"field", "op", "value"}]}` (values as
    typed) → `{"customers", "email", "sms"}`, or 400 `{"error", "row"}` naming the row at fault."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("rules") or [], list):
        problem = 'Send {"match": …, "rules": [{"field", "op", "value"}, …]}.'
        return JsonResponse({"error": problem, "row": None}, status=400)
    rows = [row if isinstance(row, dict) else {} for row in body.get("rules") or []]
    rules, positions = rules_from_rows(str(body.get("match") or "all"), rows)
    try:
        valid = segments.validate(rules)
    except segments.SegmentError as error:
        return JsonResponse({"error": error.message, "row": problem_row(error, positions)}, status=400)
    return JsonResponse(reach(request.tenant, valid))


# --- Suppressions ----------------------------------------------------------------------------------


@campaign_page
def suppression_list(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    form = SuppressionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # consent.suppress audits the addition (once, when it is new).
        added = consent.suppress(
            tenant.pk, data["channel"], data["address"], SuppressionReason.MANUAL, detail=data["detail"]
        )
        if added:
            messages.success(request, f"{data['address']} is on the suppression list: campaigns never go to it.")
        else:
            messages.info(request, f"{data['address']} was on the suppression list already.")
        return redirect("campaigns:suppressions")
    items = Suppression.objects.for_tenant(tenant).select_related("campaign")
    channel = request.GET.get("channel", "")
    if channel in Channel.values:
        items = items.filter(channel=channel)
    query = request.GET.get("q", "").strip()[:320]
    if query:
        items = items.filter(address__icontains=query)
    page = Paginator(items.order_by("-created_at", "-pk"), SUPPRESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "form": form,
        "channel": channel if channel in Channel.values else "",
        "channel_choices": Channel.choices,
        "query": query,
        "can_edit": can_edit(request),
        "tab": "suppressions",
    }
    return render(request, "dashboard/campaigns/suppressions.html", context, status=400 if form.errors else 200)


@require_POST
@campaign_page
def suppression_remove(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Suppression.objects.for_tenant(request.tenant), pk=pk)
    consent.unsuppress(item.tenant_id, item.channel, item.address)
    messages.success(request, f"{item.address} is off the suppression list: campaigns can reach it again.")
    return redirect("campaigns:suppressions")
