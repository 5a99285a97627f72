"""Commerce platforms' webhooks, written through the sync engine's own upsert.

A handler takes a stored, verified `WebhookEvent`, maps its payload to `commerce.records` with the
same ids and values as the connector's sync mapping, and writes them with `commerce.ingest.ingest`,
so a webhook and a sync of one object end in one row, and a delivery older than what is stored
(by the platform's updated time) is left alone. It returns what it did, in a few words. A payload
that can never map raises `Unprocessable` (parked at once); other trouble — the platform
unreachable on a follow-up read, a record that points at one the hub has not stored yet
(`NotYet`) — is raised as it is, and the event is retried.

Follow-up reads go through the connection's connector (its rate budget included), one object at a
time, and only where the payload cannot say enough by itself:

- Shopify refunds/create: a refund changes its order (refunds, financial status) but its payload
  carries neither the order nor the order's updated time, and ingest writes refunds only with
  their order. So the order is read through GraphQL with the sync's own selection and mapped by
  the sync's mapping. An orders/* payload whose refunds are only in a foreign presentment
  currency is read the same way (`ShopMoneyMissing`).
- Shopify inventory_levels/update: the payload names the inventory item and location, not the
  variant. The variant is taken from rows already stored (another level of the same item, else a
  variant whose stored payload names the item); only when neither exists is the item read
  through GraphQL, which then writes all its levels as the inventory stream would.
- Shopify products/*: variant prices need the shop's currency: the connector's cached one.
- WooCommerce order.*: an order with refunds lists them undated; they are read from
  /orders/<id>/refunds as the sync does (a missing or unreadable list falls back to the summaries).
- WooCommerce product.*: the store's currency, cached a day. A variable product's payload names
  its variations by id only, so only the product's own fields are written: each variation comes
  in a delivery of its own (WooCommerce sends product.updated for every saved variation, shaped as
  a product of type "variation"), written under its stored parent, and with the next sync.
"""

from __future__ import annotations

from .common import Handler, NotYet
from .shopify import HANDLERS as SHOPIFY
from .woocommerce import HANDLERS as WOOCOMMERCE

HANDLERS: dict[tuple[str, str], Handler] = {**SHOPIFY, **WOOCOMMERCE}

__all__ = ["HANDLERS", "Handler", "NotYet"]
