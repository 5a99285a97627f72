from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import mixins
from rest_framework.exceptions import ValidationError

from tenants.api import TenantScopedViewSet

from .models import Order
from .serializers import OrderSerializer


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Orders of the caller's tenant. Filters: `platform`, `status`, `fulfillment_status`,
    `updated_since` (ISO 8601)."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    scope_resource = "orders"
    ordering = "-placed_at"

    def get_queryset(self):
        qs = super().get_queryset().prefetch_related("lines")
        params = self.request.query_params
        if platform := params.get("platform"):
            qs = qs.filter(channel=platform)
        if status := params.get("status"):
            qs = qs.filter(status=status)
        if fulfillment := params.get("fulfillment_status"):
            qs = qs.filter(fulfillment_status=fulfillment)
        if since := params.get("updated_since"):
            try:
                moment = parse_datetime(since)
            except ValueError:
                moment = None
            if moment is None:
                raise ValidationError({"updated_since": "Use an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."})
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, datetime.UTC)
            qs = qs.filter(updated_at__gte=moment)
        return qs
