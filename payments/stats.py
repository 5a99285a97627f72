"""Payment figures for the API's `/payments/stats` and the admin's list, over any set of payments.

Definitions:
- total: payments in the set; successful: the money was taken (succeeded, partially refunded,
  refunded, disputed); failed: failed; success rate: successful among those that ended (successful
  or failed), in per cent.
- per currency (never a sum of mixed currencies): volume, the captured amount of the successful
  ones; refunded; net, volume less refunded; average, volume per successful payment.
- per gateway (platform): its counts and its figures per currency.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from integrations.platforms import CATALOGUE

from .gateways import GATEWAYS
from .gateways.base import PaymentStatus
from .models import TAKEN, format_amount
from .money import places


def figures(payments: QuerySet) -> dict[str, Any]:
    """Totals, per currency and per gateway, in one grouped query."""
    taken = Q(status__in=TAKEN)
    rows = (
        payments.order_by()
        .values("connection__platform", "currency")
        .annotate(
            total=Count("id"),
            successful=Count("id", filter=taken),
            failed=Count("id", filter=Q(status=PaymentStatus.FAILED)),
            volume=Sum("amount_captured", filter=taken),
            refunded=Sum("amount_refunded", filter=taken),
        )
    )
    overall = _Tally()
    gateways: dict[str, _Tally] = defaultdict(_Tally)
    for row in rows:
        overall.add(row)
        gateways[row["connection__platform"]].add(row)
    by_status = dict(payments.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        **overall.counts(),
        "by_status": {status: by_status.get(status, 0) for status in PaymentStatus.values},
        "volume": overall.currencies(),
        "gateways": [
            {"gateway": platform, "label": _label(platform), **tally.counts(), "volume": tally.currencies()}
            for platform, tally in sorted(gateways.items())
        ],
    }


def available_gateways() -> list[dict[str, str]]:
    """The catalogue's payment platforms the hub has a gateway for."""
    return [{"gateway": platform, "label": _label(platform)} for platform in GATEWAYS if platform in CATALOGUE]


def _label(platform: str) -> str:
    spec = CATALOGUE.get(platform)
    return spec.label if spec else platform


class _Tally:
    def __init__(self) -> None:
        self.total = self.successful = self.failed = 0
        self.money: dict[str, dict[str, Any]] = {}

    def add(self, row: dict) -> None:
        self.total += row["total"]
        self.successful += row["successful"]
        self.failed += row["failed"]
        entry = self.money.setdefault(
            row["currency"], {"successful": 0, "volume": Decimal("0"), "refunded": Decimal("0")}
        )
        entry["successful"] += row["successful"]
        entry["volume"] += row["volume"] or Decimal("0")
        entry["refunded"] += row["refunded"] or Decimal("0")

    def counts(self) -> dict[str, Any]:
        ended = self.successful + self.failed
        return {
            "total": self.total,
            "successful": self.successful,
            "failed": self.failed,
            "success_rate": round(100 * self.successful / ended, 1) if ended else None,
        }

    def currencies(self) -> list[dict[str, Any]]:
        out = []
        for currency, entry in sorted(self.money.items()):
            if not entry["successful"]:
                continue
            volume, refunded = entry["volume"], entry["refunded"]
            out.append(
                {
                    "currency": currency,
                    "successful": entry["successful"],
                    "volume": format_amount(volume, currency),
                    "refunded": format_amount(refunded, currency),
                    "net": format_amount(volume - refunded, currency),
                    "average": format_amount(_average(volume, entry["successful"], currency), currency),
                }
            )
        return out


def _average(volume: Decimal, count: int, currency: str) -> Decimal:
    return (volume / count).quantize(Decimal(1).scaleb(-places(currency)))
