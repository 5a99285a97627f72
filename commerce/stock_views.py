"""The client's stock pages: every SKU with its figure across channels (on the stock page, beside
the platforms' own low-stock variants), one SKU's page (its listings and their pushes, the
platforms' per-location levels, conflicts and oversold sales), and the forms that set stock, relink
listings, take a CSV and choose how conflicts are settled. Every query is scoped with
`for_tenant(request.tenant)`; another tenant's SKU is a 404."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from integrations.models import Connection
from integrations.platforms import CATALOGUE, Kind
from tenants.api import WRITE_ROLES
from tenants.models import KEY_MANAGER_ROLES, Tenant
from tenants.views import tenant_required

from . import stock
from .metrics import stock_figures
from .models import (
    ConflictStatus,
    ConflictStrategy,
    InventoryLevel,
    LinkSource,
    Oversell,
    ProductVariant,
    PushStatus,
    StockAlertSettings,
    StockChannelSettings,
    StockConflict,
    StockItem,
    StockListing,
)
from .stock_csv import import_stock

ITEMS_PER_PAGE = 50
READ_ONLY = "Your role in this client is read-only: ask an editor to change stock."
SETTINGS_ONLY = "Only the client's owners and admins change the stock settings."


def can_edit(request: HttpRequest) -> bool:
    return getattr(request.tenant, "member_role", None) in WRITE_ROLES


def can_configure(request: HttpRequest) -> bool:
    return getattr(request.tenant, "member_role", None) in KEY_MANAGER_ROLES


def items_of(tenant: Tenant):
    """The tenant's stock items with their reorder point in force, low flag and push summary."""
    return (
        StockItem.objects.for_tenant(tenant)
        .annotate(point=stock.reorder_point(tenant))
        .annotate(
            low=Q(on_hand__lte=F("point")),
            channels=Count("listings", distinct=True),
            failed=Count("listings", filter=Q(listings__push_status=PushStatus.FAILED), distinct=True),
            waiting=Count(
                "listings",
                filter=Q(listings__push_status__in=[PushStatus.QUEUED, PushStatus.PUSHING, PushStatus.RETRYING]),
                distinct=True,
            ),
            conflicts_open=Count("conflicts", filter=Q(conflicts__status=ConflictStatus.OPEN), distinct=True),
            oversold=Count("oversells", filter=Q(oversells__resolved_at__isnull=True), distinct=True),
        )
    )


def stock_context(request: HttpRequest) -> dict:
    """What the stock page shows of the hub's figures (commerce.views.stock adds the platforms')."""
    tenant = request.tenant
    show = request.GET.get("show", "")
    q = request.GET.get("q", "").strip()[:128]
    items = items_of(tenant)
    if show == "low":
        items = items.filter(low=True)
    if q:
        items = items.filter(Q(sku__icontains=q) | Q(title__icontains=q))
    items = items.order_by("-low", "on_hand", "sku") if show == "low" else items.order_by("sku")
    connections = list(Connection.objects.for_tenant(tenant).order_by("name"))
    strategies = dict(StockChannelSettings.objects.for_tenant(tenant).values_list("connection_id", "conflict_strategy"))
    return {
        "items_page": Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("items")),
        "item_figures": stock_figures(tenant),
        "show": show,
        "q": q,
        "open_conflicts": StockConflict.objects.for_tenant(tenant).filter(status=ConflictStatus.OPEN).count(),
        "open_oversells": Oversell.objects.for_tenant(tenant).filter(resolved_at__isnull=True).count(),
        "can_edit": can_edit(request),
        "can_configure": can_configure(request),
        "email_owners": StockAlertSettings.objects.filter(tenant=tenant, email_owners=True).exists(),
        # The shops' connections: payment, messaging and CRM ones hold no stock, uploads no platform.
        "channel_strategies": [
            (c, strategies.get(c.pk, ConflictStrategy.TIMESTAMP))
            for c in connections
            if c.platform in CATALOGUE and CATALOGUE[c.platform].kind == Kind.COMMERCE and c.platform != "manual"
        ],
        "strategy_choices": ConflictStrategy.choices,
    }


# --- One SKU --------------------------------------------------------------------------------------


class SetStockForm(forms.Form):
    quantity = forms.IntegerField(min_value=0)
    reorder_point = forms.IntegerField(min_value=0, required=False, help_text="Empty: the client's default.")


class ListingForm(forms.Form):
    """A listing added or changed by hand: the connection and the platform's ids."""

    connection = forms.ModelChoiceField(queryset=Connection.objects.none())
    product_external_id = forms.CharField(max_length=128, required=False, label="Product id")
    variant_external_id = forms.CharField(max_length=128, required=False, label="Variant id")
    location_id = forms.CharField(max_length=128, required=False, label="Location id")

    def __init__(self, tenant: Tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = Connection.objects.for_tenant(tenant).order_by("name")


def item_url(item: StockItem) -> str:
    return reverse("dashboard:stock-item", args=[item.sku])


@tenant_required
def item_page(request: HttpRequest, sku: str) -> HttpResponse:
    tenant = request.tenant
    item = get_object_or_404(items_of(tenant), sku=sku)
    if request.method == "POST":
        if not can_edit(request):
            return HttpResponseForbidden(READ_ONLY)
        return _act(request, item)
    listings = list(
        StockListing.objects.for_tenant(tenant).filter(item=item).select_related("connection").order_by("pk")
    )
    levels = (
        InventoryLevel.objects.for_tenant(tenant)
        .filter(variant__stock_listings__item=item)
        .select_related("connection", "variant")
        .order_by("connection__name", "location_name", "location_id")
    )
    context = {
        "item": item,
        "listings": listings,
        "levels": levels,
        "conflicts": StockConflict.objects.for_tenant(tenant)
        .filter(item=item, status=ConflictStatus.OPEN)
        .select_related("listing__connection"),
        "oversells": Oversell.objects.for_tenant(tenant)
        .filter(item=item, resolved_at__isnull=True)
        .select_related("order"),
        "set_form": SetStockForm(initial={"quantity": item.on_hand, "reorder_point": item.reorder_point}),
        "listing_form": ListingForm(tenant),
        "other_items": StockItem.objects.for_tenant(tenant)
        .exclude(pk=item.pk)
        .order_by("sku")
        .values_list("sku")[:500],
        "can_edit": can_edit(request),
    }
    return render(request, "dashboard/stock_item.html", context)


def _act(request: HttpRequest, item: StockItem) -> HttpResponse:
    """The item page's forms, by their `action`."""
    tenant, action = request.tenant, request.POST.get("action", "")
    if action == "set":
        form = SetStockForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Enter a quantity of zero or more (and a reorder point of zero or more, or none).")
            return redirect(item_url(item))
        with transaction.atomic():
            StockItem.objects.filter(pk=item.pk).update(reorder_point=form.cleaned_data["reorder_point"])
            stock.set_stock(item, form.cleaned_data["quantity"], via="dashboard", request=request)
        messages.success(request, f"{item.sku} is now {form.cleaned_data['quantity']}: pushing it to every channel.")
    elif action == "push":
        listing = get_object_or_404(StockListing.objects.for_tenant(tenant), pk=request.POST.get("listing"), item=item)
        stock.queue_pushes(StockListing.objects.filter(pk=listing.pk))
        messages.success(request, f"Pushing {item.sku} to {listing.connection.name} again.")
    elif action in ("add_listing", "edit_listing"):
        return _save_listing(request, item, action)
    elif action == "move_listing":
        listing = get_object_or_404(StockListing.objects.for_tenant(tenant), pk=request.POST.get("listing"), item=item)
        target = StockItem.objects.for_tenant(tenant).filter(sku=request.POST.get("sku", "").strip()).first()
        if target is None:
            messages.error(request, "No stock item has that SKU.")
            return redirect(item_url(item))
        relink(listing, target)
        messages.success(request, f"The {listing.connection.name} listing now counts towards {target.sku}.")
    elif action in ("accept_hub", "accept_platform"):
        conflict = get_object_or_404(
            StockConflict.objects.for_tenant(tenant), pk=request.POST.get("conflict"), item=item
        )
        accept = "hub" if action == "accept_hub" else "platform"
        if stock.resolve_conflict(conflict, accept, request=request):
            messages.success(request, f"Conflict settled: the {accept}'s figure is kept.")
    elif action == "resolve_oversell":
        Oversell.objects.for_tenant(tenant).filter(pk=request.POST.get("oversell"), item=item).update(
            resolved_at=timezone.now(), resolved_by=request.user
        )
        messages.success(request, "Marked as dealt with.")
    else:
        messages.error(request, "Unknown action.")
    return redirect(item_url(item))


def relink(listing: StockListing, target: StockItem) -> None:
    """Move a listing to another SKU by hand (sync never moves it back) and give it that SKU's
    figure; a conflict it had was about the other SKU's."""
    with transaction.atomic():
        StockListing.objects.filter(pk=listing.pk).update(item=target, linked_by=LinkSource.MANUAL)
        StockConflict.objects.filter(listing=listing, status=ConflictStatus.OPEN).update(
            status=ConflictStatus.SETTLED, resolved_at=timezone.now()
        )
        stock.queue_pushes(StockListing.objects.filter(pk=listing.pk))


def _save_listing(request: HttpRequest, item: StockItem, action: str) -> HttpResponse:
    tenant = request.tenant
    form = ListingForm(tenant, request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of your connections for the listing.")
        return redirect(item_url(item))
    data = form.cleaned_data
    connection = data["connection"]
    variant = _variant(tenant, connection, data["variant_external_id"]) if data["variant_external_id"] else None
    fields = {
        "connection": connection,
        "product_external_id": data["product_external_id"] or (variant.product.external_id if variant else ""),
        "variant_external_id": data["variant_external_id"],
        "location_id": data["location_id"],
        "variant": variant,
        "linked_by": LinkSource.MANUAL,
    }
    taken = StockListing.objects.for_tenant(tenant).filter(
        connection=connection, variant_external_id=data["variant_external_id"]
    )
    if action == "edit_listing":
        listing = get_object_or_404(StockListing.objects.for_tenant(tenant), pk=request.POST.get("listing"), item=item)
        taken = taken.exclude(pk=listing.pk)
    if taken.exists():
        messages.error(request, "That listing is already linked to a SKU: move it from there.")
        return redirect(item_url(item))
    if action == "edit_listing":
        StockListing.objects.filter(pk=listing.pk).update(**fields)
    else:
        listing = StockListing.objects.create(tenant=tenant, item=item, **fields)
    stock.queue_pushes(StockListing.objects.filter(pk=listing.pk))
    messages.success(request, f"Saved: {item.sku} on {connection.name}, pushing the hub's figure there.")
    return redirect(item_url(item))


def _variant(tenant: Tenant, connection: Connection, external_id: str) -> ProductVariant | None:
    return (
        ProductVariant.objects.for_tenant(tenant)
        .filter(connection=connection, external_id=external_id)
        .select_related("product")
        .first()
    )


# --- Stock page forms -----------------------------------------------------------------------------


@require_POST
@tenant_required
def set_quantity(request: HttpRequest) -> HttpResponse:
    """The stock list's quick "set" per SKU."""
    if not can_edit(request):
        return HttpResponseForbidden(READ_ONLY)
    item = get_object_or_404(StockItem.objects.for_tenant(request.tenant), sku=request.POST.get("sku", ""))
    form = SetStockForm({"quantity": request.POST.get("quantity")})
    if form.is_valid():
        stock.set_stock(item, form.cleaned_data["quantity"], via="dashboard", request=request)
        messages.success(request, f"{item.sku} is now {form.cleaned_data['quantity']}: pushing it to every channel.")
    else:
        messages.error(request, f"Enter a quantity of zero or more for {item.sku}.")
    return redirect(request.POST.get("next") or reverse("dashboard:stock"), permanent=False)


class CsvForm(forms.Form):
    file = forms.FileField(help_text="sku,quantity rows, with or without that header.")


@require_POST
@tenant_required
def upload_csv(request: HttpRequest) -> HttpResponse:
    if not can_edit(request):
        return HttpResponseForbidden(READ_ONLY)
    form = CsvForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file of sku,quantity rows.")
        return redirect("dashboard:stock")
    result = import_stock(request.tenant, form.cleaned_data["file"].file, via="csv", request=request)
    if result.ok:
        messages.success(request, f"Stock set for {result.rows} SKU(s) from the file: pushing it to every channel.")
    else:
        shown = "; ".join(result.errors[:10]) + ("; …" if len(result.errors) > 10 else "")
        messages.error(request, f"Nothing was set. {shown}")
    return redirect("dashboard:stock")


@require_POST
@tenant_required
def save_settings(request: HttpRequest) -> HttpResponse:
    """The low-stock email and each connection's conflict strategy."""
    if not can_configure(request):
        return HttpResponseForbidden(SETTINGS_ONLY)
    tenant = request.tenant
    StockAlertSettings.objects.update_or_create(
        tenant=tenant, defaults={"email_owners": request.POST.get("email_owners") == "on"}
    )
    for connection in Connection.objects.for_tenant(tenant):
        chosen = request.POST.get(f"strategy-{connection.pk}")
        if chosen in ConflictStrategy.values:
            StockChannelSettings.objects.update_or_create(
                connection=connection, defaults={"tenant": tenant, "conflict_strategy": chosen}
            )
    messages.success(request, "Stock settings saved.")
    return redirect("dashboard:stock")
