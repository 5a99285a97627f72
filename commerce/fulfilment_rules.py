"""Auto-fulfilment rules: orders that arrive matching a rule are fulfilled by it.

When ingest writes new orders (`records_written`, stream "orders", created rows), a task runs the
tenant's enabled rules over them once the page has committed. A rule takes an order when:
- the order comes from the rule's connection, if the rule names one;
- it was placed at or after the rule was switched on: a rule never reaches back into history, so a
  first sync's backfill is never shipped by a rule;
- it is still to ship (not cancelled, unfulfilled or partly fulfilled) and not unpaid, voided or
  refunded;
- some line still unfulfilled has one of the rule's SKUs or starts with its SKU prefix (a rule
  naming no SKU takes every line left).
The rule fulfils those lines with its carrier and tracking number (empty for digital goods). Rules
run oldest first and a line one rule took is gone for the next; a rule fulfils an order at most
once, however often its task is delivered. Why a rule could not fulfil an order is kept on the rule
(`last_error`), where people see it.

`preview(rule)` is the dry run: the recent orders still to ship that the rule matches, whenever
they were placed, with the lines it would take. It stores nothing.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone

from . import carriers
from .fulfilment import FulfilmentError, Remaining, accepted_carriers, fulfil, remaining_by_order, waiting_orders
from .models import FinancialStatus, Fulfilment, FulfilmentRule, FulfilmentSource, Order, OrderLine
from .signals import records_written

logger = logging.getLogger(__name__)

RULES_TASK = "commerce.fulfilment_rules.apply_rules"
UNPAID = (FinancialStatus.PENDING, FinancialStatus.VOIDED, FinancialStatus.REFUNDED)
PREVIEW_DAYS = 30
PREVIEW_LIMIT = 100


# --- New orders --------------------------------------------------------------------------------------


@receiver(records_written, dispatch_uid="fulfilment-rules-new-orders")
def new_orders(sender, tenant_id: int, connection_id: int, stream: str, created, updated, **kwargs) -> None:
    # Nothing is read here, inside ingest's transaction: whether the tenant has rules is asked once
    # the page has committed, so a page costs ingest no query more.
    if stream == "orders" and created:
        ids = list(created)
        transaction.on_commit(lambda: queue_rules(tenant_id, ids), robust=True)


def queue_rules(tenant_id: int, order_ids: list[int]) -> None:
    if FulfilmentRule.objects.for_tenant(tenant_id).filter(enabled=True).exists():
        from django_q.tasks import async_task

        async_task(RULES_TASK, tenant_id, order_ids, task_name=f"fulfilment-rules-{tenant_id}")


def apply_rules(tenant_id: int, order_ids: Iterable[int]) -> str:
    """The task: run the tenant's enabled rules over these orders; returns what happened."""
    rules = list(FulfilmentRule.objects.for_tenant(tenant_id).filter(enabled=True).select_related("connection"))
    if not rules:
        return "no enabled rules"
    orders = (
        waiting_orders(tenant_id)
        .filter(pk__in=list(order_ids))
        .exclude(financial_status__in=UNPAID)
        .defer("raw", "billing_address", "shipping_address")
    )
    accepted: dict[int, list[str]] = {}
    fulfilled = refused = 0
    for order in orders:
        for rule in rules:
            if not _takes(rule, order) or Fulfilment.objects.filter(order=order, rule=rule).exists():
                continue
            lines = rule_lines(rule, remaining_by_order([order.pk])[order.pk])
            if lines == []:
                continue
            if order.connection_id not in accepted:
                accepted[order.connection_id] = accepted_carriers(order)
            try:
                with transaction.atomic():
                    fulfil(
                        order,
                        rule.tracking_number,
                        rule.carrier,
                        lines,
                        notify_customer=rule.notify_customer,
                        source=FulfilmentSource.RULE,
                        rule=rule,
                        accepted=accepted[order.connection_id],
                    )
            except FulfilmentError as problem:
                refused += 1
                _note(rule, f"Order #{order.number}: {problem}")
            except IntegrityError:  # another delivery of this task fulfilled it first
                continue
            else:
                fulfilled += 1
                FulfilmentRule.objects.filter(pk=rule.pk).update(orders_fulfilled=F("orders_fulfilled") + 1)
    return f"{fulfilled} fulfilled by rules, {refused} refused"


def _takes(rule: FulfilmentRule, order: Order) -> bool:
    if rule.connection_id and rule.connection_id != order.connection_id:
        return False
    return rule.enabled_at is not None and order.placed_at >= rule.enabled_at


def rule_lines(rule: FulfilmentRule, left: Remaining) -> list[tuple[int, int]] | None:
    """The (line id, quantity) the rule would fulfil; None for everything left; [] for nothing."""
    if not (rule.skus or rule.sku_prefix):
        return None if left.anything else []
    return sorted((pk, quantity) for pk, quantity in left.lines.items() if quantity and rule.matches_sku(left.skus[pk]))


def _note(rule: FulfilmentRule, message: str) -> None:
    logger.info("Fulfilment rule %s: %s", rule.pk, message)
    FulfilmentRule.objects.filter(pk=rule.pk).update(last_error=message[:1000], last_error_at=timezone.now())


# --- Dry run -----------------------------------------------------------------------------------------


@dataclass
class RuleMatch:
    order: Order
    lines: list[tuple[int, str, int]]  # (line id, "title (SKU)", quantity); empty: everything left


def preview(rule: FulfilmentRule, *, days: int = PREVIEW_DAYS, limit: int = PREVIEW_LIMIT) -> list[RuleMatch]:
    """The orders of the last `days` still to ship that the rule matches, newest first, with what it
    would fulfil of each, whenever they were placed. Nothing is stored."""
    orders = (
        waiting_orders(rule.tenant_id)
        .filter(placed_at__gte=timezone.now() - timedelta(days=days))
        .exclude(financial_status__in=UNPAID)
        .exclude(fulfilments__rule=rule)
    )
    if rule.connection_id:
        orders = orders.filter(connection_id=rule.connection_id)
    conditions = []
    if rule.skus:
        conditions.append(Q(sku__in=rule.skus))
    if rule.sku_prefix:
        conditions.append(Q(sku__startswith=rule.sku_prefix))
    if conditions:
        lines = OrderLine.objects.for_tenant(rule.tenant_id).filter(functools.reduce(operator.or_, conditions))
        orders = orders.filter(pk__in=lines.values("order_id"))
    candidates = list(orders.defer("raw", "billing_address", "shipping_address").order_by("-placed_at", "-pk")[:limit])
    left = remaining_by_order(order.pk for order in candidates)
    matches = []
    for order in candidates:
        lines = rule_lines(rule, left[order.pk])
        if lines is None:
            matches.append(RuleMatch(order, []))
        elif lines:
            labels = left[order.pk].labels
            matches.append(RuleMatch(order, [(pk, labels[pk], quantity) for pk, quantity in lines]))
    return matches


# --- Checking a rule ---------------------------------------------------------------------------------


class RuleError(ValueError):
    def __init__(self, message: str, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


def parse_skus(text: str) -> list[str]:
    """SKUs written one a line or separated by commas."""
    return list(dict.fromkeys(s.strip() for s in text.replace(",", "\n").splitlines() if s.strip()))


def check_rule(tenant, *, carrier: str, skus: list[str], sku_prefix: str, connection=None) -> str:
    """Check a rule's fields; returns the carrier's hub code. The carrier must be one the hub knows,
    and one the connection's platform accepts when the rule names a connection."""
    if not (skus or sku_prefix or connection):
        raise RuleError("Match on SKUs, a SKU prefix or a connection: a rule matching every order is refused.")
    if connection is not None and connection.tenant_id != getattr(tenant, "pk", tenant):
        raise RuleError("Choose one of the client's own connections.", field="connection")
    accepted = None
    if connection is not None:
        from . import pushes

        accepted = pushes.pusher().carriers(connection.tenant_id, connection.pk)
        if not accepted:
            raise RuleError("This connection's platform takes no fulfilments from the hub.", field="connection")
    try:
        return carriers.normalise(carrier, accepted)
    except carriers.UnknownCarrier as unknown:
        raise RuleError(str(unknown), field="carrier") from None
