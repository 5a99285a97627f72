"""A tenant's fulfilment figures, for the API (`/api/v1/fulfillment/analytics`) and the dashboard.

Definitions
- Days are the tenant's: the period is the last `days` days up to today in `tenant.time_zone`.
- A shipment is a hub fulfilment the platform accepted (`pushed`); an order ships when its first
  shipment is pushed. Orders fulfilled on the platform itself, outside the hub, carry no shipment
  time and are in none of these figures but `late.waiting`.
- Fulfilled per day: the orders whose first shipment was pushed on that local day, for every day
  of the period, zero-filled; `fulfilled` is their sum.
- Time to ship: hours from the order's `placed_at` to its first shipment; the median per channel
  (and over all channels) of the orders first shipped in the period, rounded to two places.
- Late, against the tenant's SLA hours (`FulfilmentSettings`): `waiting` counts the orders still
  to ship (not cancelled, unfulfilled or partial) placed longer ago than the SLA, `oldest` lists the
  first few of them; `shipped_late` counts the orders first shipped in the period more than the SLA
  after they were placed.
- Failed pushes: fulfilments created in the period that failed, those retrying now, and the latest
  failures with the platform's reason.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Min
from django.utils import timezone

from .fulfilment import waiting_orders
from .metrics import channel_label
from .models import Fulfilment, FulfilmentSettings
from .models import FulfilmentPushStatus as Status

DEFAULT_DAYS = 30
MAX_DAYS = 366
OLDEST_LATE = 10
RECENT_FAILURES = 10


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def analytics(tenant, days: int = DEFAULT_DAYS, *, now: datetime | None = None) -> dict[str, Any]:
    """The figures of the last `days` days (definitions above):

    {"period": {"start", "end", "days"}, "sla_hours",
     "fulfilled_per_day": [{"date", "orders"}], "fulfilled",
     "time_to_ship": [{"channel", "label", "orders", "median_hours"}], "median_hours",
     "late": {"waiting", "shipped_late", "oldest": [{"id", "number", "channel", "placed_at", "age_hours"}]},
     "failed_pushes": {"failed", "retrying",
                       "recent": [{"id", "order", "order_number", "channel", "last_error", "updated_at"}]}}
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"The period is 1 to {MAX_DAYS} days.")
    zone = ZoneInfo(tenant.time_zone)
    now = now or timezone.now()
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    sla = timedelta(hours=FulfilmentSettings.of(tenant).sla_hours)
    fulfilments = Fulfilment.objects.for_tenant(tenant)

    # Each order's first shipment, for the orders first shipped in the period.
    shipped = list(
        fulfilments.filter(status=Status.PUSHED)
        .values("order_id", "order__channel", "order__placed_at")
        .annotate(first=Min("pushed_at"))
        .filter(first__gte=start, first__lt=end)
        .order_by()
        .values_list("order__channel", "order__placed_at", "first")
    )
    per_day: dict = defaultdict(int)
    by_channel: dict[str, list[float]] = defaultdict(list)
    for channel, placed_at, first in shipped:
        per_day[first.astimezone(zone).date()] += 1
        by_channel[channel].append(_hours(first - placed_at))

    waiting = waiting_orders(tenant)
    late_waiting = waiting.filter(placed_at__lt=now - sla)
    oldest = list(late_waiting.values("pk", "number", "channel", "placed_at")[:OLDEST_LATE])
    failures = fulfilments.filter(status=Status.FAILED)
    recent = list(
        failures.order_by("-updated_at", "-pk").values(
            "pk", "order_id", "order__number", "order__channel", "last_error", "updated_at"
        )[:RECENT_FAILURES]
    )
    return {
        "period": {"start": first_day, "end": today, "days": days},
        "sla_hours": int(sla.total_seconds() // 3600),
        "fulfilled_per_day": [
            {"date": day, "orders": per_day[day]} for day in (first_day + timedelta(days=n) for n in range(days))
        ],
        "fulfilled": len(shipped),
        "time_to_ship": [
            {"channel": channel, "label": channel_label(channel), "orders": len(hours), "median_hours": _median(hours)}
            for channel, hours in sorted(by_channel.items())
        ],
        "median_hours": _median([hours for values in by_channel.values() for hours in values]),
        "late": {
            "waiting": late_waiting.count(),
            "shipped_late": sum(1 for _, placed_at, first in shipped if first - placed_at > sla),
            "oldest": [
                {
                    "id": row["pk"],
                    "number": row["number"],
                    "channel": row["channel"],
                    "placed_at": row["placed_at"],
                    "age_hours": round(_hours(now - row["placed_at"]), 1),
                }
                for row in oldest
            ],
        },
        "failed_pushes": {
            "failed": failures.filter(created_at__gte=start, created_at__lt=end).count(),
            "retrying": fulfilments.filter(status=Status.RETRYING).count(),
            "recent": [
                {
                    "id": row["pk"],
                    "order": row["order_id"],
                    "order_number": row["order__number"],
                    "channel": row["order__channel"],
                    "last_error": row["last_error"],
                    "updated_at": row["updated_at"],
                }
                for row in recent
            ],
        },
    }
