"""Pushing changes back to the platforms: the small interface between commerce and integrations.

Commerce decides what to push (a fulfilment with its tracking number, a new stock level) and
records the outcome where people see it; integrations knows how (its connectors). Commerce never
imports a platform module: integrations registers its pusher when the app loads
(`IntegrationsConfig.ready`), and commerce calls `pusher()`.

A push either lands (`ok`, with the platform's id for what it created), or fails. A failure says
whether trying again later can help (`retryable`: 429, 5xx, timeouts) or a person must act (a
refused tracking number, an order the platform no longer knows, a carrier it does not accept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class FulfilmentPush:
    tenant_id: int  # the connection is looked up within this tenant, never outside it
    connection_id: int
    order_external_id: str
    tracking_number: str
    carrier: str  # a hub carrier code (commerce.carriers); each connector names it the platform's way
    # (order line external id, quantity); empty means every line still unfulfilled on the platform.
    lines: tuple[tuple[str, int], ...] = ()
    tracking_url: str = ""
    notify_customer: bool = False
    # Our own fulfilment's id: platforms that take an idempotency key get it, so a retry after a
    # timeout never ships twice.
    reference: str = ""


@dataclass(frozen=True)
class StockPush:
    tenant_id: int
    connection_id: int
    sku: str
    quantity: int
    location_id: str = ""  # the platform's location id; empty for the platform's default
    # The platform's ids for the item, when the hub has synced it (some platforms cannot find a
    # variant by SKU alone: WooCommerce's variations sit under their product).
    product_external_id: str = ""
    variant_external_id: str = ""


@dataclass(frozen=True)
class PushResult:
    ok: bool
    remote_id: str = ""
    message: str = ""
    retryable: bool = False
    details: dict = field(default_factory=dict)


class Pusher(Protocol):
    def fulfil(self, push: FulfilmentPush) -> PushResult: ...

    def set_stock(self, push: StockPush) -> PushResult: ...

    def carriers(self, tenant_id: int, connection_id: int) -> list[str]:
        """The hub carrier codes this connection's platform accepts."""
        ...


_registered: Pusher | None = None


def register(pusher: Pusher) -> None:
    global _registered
    _registered = pusher


def pusher() -> Pusher:
    if _registered is None:
        raise ImproperlyConfigured("No pusher is registered: is the integrations app installed?")
    return _registered
