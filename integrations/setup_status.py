"""What a tenant has set up, platform by platform (`GET /api/v1/integrations/setup-status`).

Every platform of the catalogue, connected or not, with the tenant's connections of it: status,
last sync, how many orders, products, customers and stock levels each brought, and for one that
is not fully configured the credential fields that are missing or invalid, by name. A message
about a value may repeat a non-secret value (a region, a shop domain), never a secret one.

The connections, their record counts and their last sync come in one query, whatever their number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from commerce.models import Customer, InventoryLevel, Order, Product
from tenants.models import Tenant

from .connectors.amazon_config import invalid_fields as amazon_invalid_fields
from .errors import ConfigurationError
from .models import Connection, ConnectionStatus, SyncRun
from .oauth.shopify import configured_shop
from .platforms import CATALOGUE, Platform
from .serializers import value_problem

RECORD_MODELS = {"orders": Order, "products": Product, "customers": Customer, "inventory": InventoryLevel}


@dataclass
class Configuration:
    missing: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.invalid

    def as_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "missing": self.missing, "invalid": self.invalid}


def _shopify(credentials: dict[str, Any]) -> Configuration:
    found = Configuration()
    if credentials.get("shop_domain"):
        try:
            # As Connect checks it before sending anyone to the shop: a *.myshopify.com domain.
            configured_shop(credentials)
        except ConfigurationError as error:
            found.invalid["shop_domain"] = str(error)
    # A token pasted from a custom app, or a client ID and secret that buy one.
    if not credentials.get("access_token") and not (credentials.get("client_id") and credentials.get("client_secret")):
        found.missing.append("access_token")
    return found


def _amazon(credentials: dict[str, Any]) -> Configuration:
    found = Configuration(invalid=amazon_invalid_fields(credentials))
    # Optional on the form (Connect sets it), needed to sync.
    if not credentials.get("refresh_token"):
        found.missing.append("refresh_token")
    return found


# What each platform needs beyond its catalogue entry (required fields, choices, public addresses).
PLATFORM_CHECKS: dict[str, Callable[[dict[str, Any]], Configuration]] = {
    Platform.SHOPIFY: _shopify,
    Platform.AMAZON: _amazon,
}


def configuration(connection: Connection) -> Configuration:
    """The connection's missing and invalid credential fields, named as the catalogue names them."""
    spec = CATALOGUE[connection.platform]
    credentials = {name: str(value).strip() for name, value in (connection.credentials or {}).items() if value}
    credentials = {name: value for name, value in credentials.items() if value}
    specific = PLATFORM_CHECKS.get(connection.platform, lambda _: Configuration())(credentials)
    found = Configuration()
    for cred in spec.credentials:
        value = credentials.get(cred.name)
        if not value:
            if cred.required or cred.name in specific.missing:
                found.missing.append(cred.name)
            continue
        problem = specific.invalid.get(cred.name) or value_problem(cred, value)
        if problem:
            found.invalid[cred.name] = "This value is not valid." if cred.secret else problem
    return found


def connections_with_figures(tenant: Tenant, connections: QuerySet[Connection]) -> QuerySet[Connection]:
    """`connections` (the tenant's) with their record counts and last finished sync, in the one query."""
    counts = {
        f"{name}_count": Coalesce(
            Subquery(
                model.objects.for_tenant(tenant)
                .filter(connection=OuterRef("pk"))
                .order_by()
                .values("connection")
                .annotate(n=Count("pk"))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            0,
        )
        for name, model in RECORD_MODELS.items()
    }
    latest = (
        SyncRun.objects.for_tenant(tenant)
        .filter(connection=OuterRef("pk"), finished_at__isnull=False)
        .order_by("-finished_at")
    )
    return connections.annotate(
        **counts,
        last_sync_at=Subquery(latest.values("finished_at")[:1]),
        last_sync_status=Subquery(latest.values("status")[:1]),
    )


def setup_status(tenant: Tenant, connections: QuerySet[Connection]) -> list[dict[str, Any]]:
    by_platform: dict[str, list[Connection]] = {}
    for connection in connections_with_figures(tenant, connections).order_by("name", "pk"):
        by_platform.setdefault(connection.platform, []).append(connection)
    return [
        {
            "platform": spec.platform,
            "label": spec.label,
            "kind": spec.kind,
            "connected": any(
                c.enabled and c.status == ConnectionStatus.CONNECTED for c in by_platform.get(spec.platform, [])
            ),
            "connections": [_connection(c) for c in by_platform.get(spec.platform, [])],
        }
        for spec in CATALOGUE.values()
    ]


def _connection(connection: Connection) -> dict[str, Any]:
    last_sync = None
    if connection.last_sync_at is not None:
        last_sync = {"finished_at": connection.last_sync_at, "status": connection.last_sync_status}
    return {
        "id": connection.pk,
        "uuid": connection.uuid,
        "name": connection.name,
        "status": connection.status,
        "enabled": connection.enabled,
        "last_sync": last_sync,
        "records": {name: getattr(connection, f"{name}_count") for name in RECORD_MODELS},
        "configuration": configuration(connection).as_dict(),
    }
