"""Reading commerce data out as plain records for the systems the hub keeps current (CRMs).

`contacts_changed` answers "which people changed between two times, and what does the hub know
about each": one contact per email address (a person who bought on two platforms is one contact),
with their order figures. A person changed when one of their customer rows or one of their orders
was written in the window. Customers of the connections in `exclude_connection_ids` (the CRMs
themselves, whose contacts the hub pulls) are neither exported nor counted, so a contact pulled from
one CRM is never pushed back to it or on to another and set them ping-ponging.

Contacts come in pages ordered by email, `after` the last email of the page before, so a push that
stops half-way resumes where it stopped. Each page costs three queries, whatever its size.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Lower

from .models import Customer, Order, OrderStatus


@dataclass(frozen=True)
class Contact:
    email: str  # lower case: the key CRMs upsert by
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    country: str = ""
    accepts_marketing: bool = False
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # where the person is a customer, e.g. ("shopify", "woocommerce")
    orders_count: int = 0  # counted (not cancelled) orders
    total_spent: Decimal = Decimal("0")  # the sum of those orders in `currency`
    currency: str = ""  # the tenant's base currency
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


def changed_emails(
    tenant_id: int,
    since: datetime | None,
    until: datetime,
    *,
    after: str = "",
    limit: int = 100,
    exclude_connection_ids: Collection[int] = (),
) -> list[str]:
    """The next `limit` lower-case emails (after `after`) of people changed in (since, until]."""
    window = Q(updated_at__lte=until) & (Q(updated_at__gt=since) if since else Q())

    def keys(model) -> list[str]:
        return list(
            model.objects.for_tenant(tenant_id)
            .filter(window)
            .exclude(email="")
            .exclude(connection_id__in=exclude_connection_ids)
            .annotate(key=Lower("email"))
            .filter(key__gt=after)
            .values_list("key", flat=True)
            .order_by("key")
            .distinct()[:limit]
        )

    customers, orders = keys(Customer), keys(Order)
    return sorted(set(customers) | set(orders))[:limit]


def contacts(
    tenant_id: int, emails: Collection[str], *, currency: str, exclude_connection_ids: Collection[int] = ()
) -> list[Contact]:
    """One contact for each of these lower-case emails, in their order, from every customer row and
    order of the tenant with that email (any case), other than the excluded connections'."""
    emails = list(dict.fromkeys(e.lower() for e in emails if e))
    if not emails:
        return []
    people: dict[str, dict] = {}
    rows = (
        Customer.objects.for_tenant(tenant_id)
        .annotate(key=Lower("email"))
        .filter(key__in=emails)
        .exclude(connection_id__in=exclude_connection_ids)
        .order_by("updated_at", "pk")  # the latest row's name and phone win
        .values(
            "key", "first_name", "last_name", "phone", "country", "accepts_marketing", "tags", "connection__platform"
        )
    )
    for row in rows:
        person = people.setdefault(row["key"], _person())
        for name in ("first_name", "last_name", "phone", "country"):
            if row[name]:
                person[name] = row[name]
        person["accepts_marketing"] |= bool(row["accepts_marketing"])
        person["tags"].update(str(t) for t in row["tags"] or [] if t)
        person["platforms"].add(row["connection__platform"])
    figures = (
        Order.objects.for_tenant(tenant_id)
        .annotate(key=Lower("email"))
        .filter(key__in=emails)
        .exclude(connection_id__in=exclude_connection_ids)
        .exclude(status=OrderStatus.CANCELLED)
        .values("key")
        .annotate(
            count=Count("pk"),
            spent=Sum("total", filter=Q(currency=currency)),
            first=Min("placed_at"),
            last=Max("placed_at"),
        )
    )
    totals = {row["key"]: row for row in figures}
    channels = (
        Order.objects.for_tenant(tenant_id)
        .annotate(key=Lower("email"))
        .filter(key__in=emails)
        .exclude(connection_id__in=exclude_connection_ids)
        .values_list("key", "channel")
        .distinct()
    )
    for key, channel in channels:
        people.setdefault(key, _person())["platforms"].add(channel)
    result = []
    for email in emails:
        person, total = people.get(email), totals.get(email, {})
        if person is None:
            continue
        result.append(
            Contact(
                email=email,
                first_name=person.get("first_name", ""),
                last_name=person.get("last_name", ""),
                phone=person.get("phone", ""),
                country=person.get("country", ""),
                accepts_marketing=person["accepts_marketing"],
                tags=tuple(sorted(person["tags"])),
                platforms=tuple(sorted(person["platforms"])),
                orders_count=total.get("count", 0),
                total_spent=total.get("spent") or Decimal("0"),
                currency=currency,
                first_order_at=total.get("first"),
                last_order_at=total.get("last"),
            )
        )
    return result


def _person() -> dict:
    return {"tags": set(), "platforms": set(), "accepts_marketing": False}
