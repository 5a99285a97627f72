"""The client's own dashboard. Every query is scoped with `for_tenant(request.tenant)`."""

from __future__ import annotations

from datetime import timedelta

from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from integrations.models import Connection
from tenants.views import tenant_required

from .models import FulfillmentStatus, Order, OrderStatus

PERIODS = {"7": 7, "30": 30, "90": 90}


@tenant_required
def home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    days = PERIODS.get(request.GET.get("days", "30"), 30)
    since = timezone.now() - timedelta(days=days)
    orders = Order.objects.for_tenant(tenant)
    counted = orders.filter(placed_at__gte=since).exclude(status=OrderStatus.CANCELLED)
    # Totals per currency: a sum over mixed currencies would be meaningless.
    by_currency = (
        counted.values("currency")
        .annotate(revenue=Sum("total"), orders=Count("id"), average=Avg("total"))
        .order_by("-revenue")
    )
    by_channel = (
        counted.values("channel", "currency").annotate(revenue=Sum("total"), orders=Count("id")).order_by("-revenue")
    )
    context = {
        "days": days,
        "periods": PERIODS,
        "by_currency": list(by_currency),
        "by_channel": list(by_channel),
        "order_count": counted.count(),
        "unshipped": orders.filter(
            ~Q(status=OrderStatus.CANCELLED), fulfillment_status=FulfillmentStatus.UNFULFILLED
        ).count(),
        "recent_orders": orders.select_related("customer")[:10],
        "connections": Connection.objects.for_tenant(tenant).order_by("name"),
    }
    return render(request, "dashboard/home.html", context)


@tenant_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.for_tenant(request.tenant).select_related("customer")
    if channel := request.GET.get("channel"):
        orders = orders.filter(channel=channel)
    if q := request.GET.get("q", "").strip():
        orders = orders.filter(Q(number__icontains=q) | Q(email__icontains=q))
    page = Paginator(orders, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/order_list.html", {"page": page, "q": q, "channel": channel or ""})


@tenant_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.for_tenant(request.tenant).select_related("customer"), pk=pk)
    return render(request, "dashboard/order_detail.html", {"order": order, "lines": order.lines.all()})
