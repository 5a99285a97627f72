"""What the Shopify connector asks the GraphQL Admin API for, and how a bulk export's JSONL lines
are put back into the shape a paginated query returns.

Nested connections are selected as `nodes` in paginated queries and as `edges { node }` in bulk
queries, where Shopify writes each nested node as its own line pointing at its parent by
`__parentId`, right after the parent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

# Nested page sizes keep a page's requested cost under Shopify's 1,000-point ceiling; the connector
# halves the top-level page size when Shopify still says a query costs too much.
LINE_ITEMS, VARIANTS, LEVELS, REFUNDS = 25, 25, 5, 10

MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
ADDRESS = "firstName lastName company address1 address2 city province provinceCode zip countryCodeV2 phone"
CUSTOMER = (
    "id firstName lastName tags createdAt updatedAt defaultEmailAddress { emailAddress marketingState } "
    "defaultPhoneNumber { phoneNumber } defaultAddress { countryCodeV2 }"
)
LEVEL = 'id updatedAt location { id name } quantities(names: ["available"]) { name quantity }'

# The query root and the count field of each stream (inventory items come one per variant).
ROOTS = {"orders": "orders", "products": "products", "customers": "customers", "inventory": "inventoryItems"}
COUNTS = {
    "orders": "ordersCount",
    "products": "productsCount",
    "customers": "customersCount",
    "inventory": "productVariantsCount",
}
# `inventoryItems` has no sort key: its pages come in id order and the watermark is their latest.
SORTED = {"orders", "products", "customers"}

CHECK = (
    "query HubCheck { shop { name myshopifyDomain currencyCode } "
    "currentAppInstallation { accessScopes { handle } } "
    + " ".join(f"{field} {{ count precision }}" for field in COUNTS.values())
    + " }"
)
SHOP_CURRENCY = "query HubShop { shop { currencyCode } }"
BULK_RUN = (
    "mutation HubBulkRun($query: String!) { bulkOperationRunQuery(query: $query) { "
    "bulkOperation { id status } userErrors { field message } } }"
)
# Polled through `node`, which every API version has (`currentBulkOperation` is being retired).
BULK_STATUS = (
    "query HubBulkStatus($id: ID!) { node(id: $id) { ... on BulkOperation { "
    "id status errorCode objectCount rootObjectCount url } } }"
)


def _connection(field: str, first: int, selection: str, *, bulk: bool) -> str:
    if bulk:
        return f"{field} {{ edges {{ node {{ {selection} }} }} }}"
    return f"{field}(first: {first}) {{ nodes {{ {selection} }} pageInfo {{ hasNextPage endCursor }} }}"


LINE = f"id title quantity sku variant {{ id }} originalUnitPriceSet {{ {MONEY} }} discountedTotalSet {{ {MONEY} }}"


def _variant(*, bulk: bool) -> str:
    levels = _connection("inventoryLevels", LEVELS, LEVEL, bulk=bulk)
    return f"id sku title price updatedAt inventoryItem {{ id {levels} }}"


def selection(stream: str, *, bulk: bool = False) -> str:
    """The fields read for one node of `stream`."""
    if stream == "orders":
        refunds = "refunds" if bulk else f"refunds(first: {REFUNDS})"
        return (
            "id name email createdAt processedAt updatedAt cancelledAt cancelReason closedAt "
            "displayFinancialStatus displayFulfillmentStatus currencyCode presentmentCurrencyCode "
            f"subtotalPriceSet {{ {MONEY} }} totalDiscountsSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }} "
            f"totalTaxSet {{ {MONEY} }} totalPriceSet {{ {MONEY} }} customer {{ {CUSTOMER} }} "
            f"billingAddress {{ {ADDRESS} }} shippingAddress {{ {ADDRESS} }} "
            f"{refunds} {{ id createdAt note totalRefundedSet {{ {MONEY} }} }} "
            + _connection("lineItems", LINE_ITEMS, LINE, bulk=bulk)
        )
    if stream == "products":
        variants = _connection("variants", VARIANTS, _variant(bulk=bulk), bulk=bulk)
        return "id title vendor productType status updatedAt " + variants
    if stream == "customers":
        return CUSTOMER
    if stream == "inventory":
        return "id sku updatedAt tracked variant { id } " + _connection("inventoryLevels", LEVELS, LEVEL, bulk=bulk)
    raise KeyError(stream)


# Nested connections a page may cut short (an order's 26th line), by the type of node holding
# them: the connector fetches the rest through `more`.
NESTED = {
    "Order": ("lineItems", LINE_ITEMS, LINE),
    "Product": ("variants", VARIANTS, _variant(bulk=False)),
    "InventoryItem": ("inventoryLevels", LEVELS, LEVEL),
}


def more(type_name: str) -> str:
    field, first, fields = NESTED[type_name]
    return (
        f"query HubMore($id: ID!, $after: String) {{ node(id: $id) {{ ... on {type_name} {{ "
        f"{field}(first: {first}, after: $after) {{ nodes {{ {fields} }} "
        "pageInfo { hasNextPage endCursor } } } } }"
    )


def operation(stream: str) -> str:
    root = ROOTS[stream]
    return f"Hub{root[0].upper()}{root[1:]}"


def page(stream: str) -> str:
    """One page of `stream`, after a cursor, optionally filtered by a search such as updated_at."""
    root = ROOTS[stream]
    sort = ", sortKey: UPDATED_AT" if stream in SORTED else ""
    return (
        f"query {operation(stream)}($first: Int!, $after: String, $query: String) {{ "
        f"{root}(first: $first, after: $after, query: $query{sort}) {{ "
        f"nodes {{ {selection(stream)} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )


def count(stream: str) -> str:
    return f"query HubCount {{ {COUNTS[stream]} {{ count precision }} }}"


def bulk(stream: str) -> str:
    return f"{{ {ROOTS[stream]} {{ edges {{ node {{ {selection(stream, bulk=True)} }} }} }} }}"


# --- Bulk results ----------------------------------------------------------------------------------

# Where a JSONL child line goes in its parent, by the (parent, child) types of their gids.
CHILD_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Order", "LineItem"): ("lineItems",),
    ("Product", "ProductVariant"): ("variants",),
    ("ProductVariant", "InventoryLevel"): ("inventoryItem", "inventoryLevels"),
    ("InventoryItem", "InventoryLevel"): ("inventoryLevels",),
}


def gid_type(gid: Any) -> str:
    """ "gid://shopify/LineItem/1?x=y" → "LineItem"."""
    parts = str(gid or "").split("?", 1)[0].split("/")
    return parts[3] if len(parts) > 4 else ""


def attach(parent: dict[str, Any], child: dict[str, Any]) -> None:
    """Put a child line back where a paginated query would have nested it."""
    path = CHILD_PATHS.get((gid_type(parent.get("id")), gid_type(child.get("id"))))
    if path is None:
        raise ValueError(f"No place for {child.get('id')} under {parent.get('id')}.")
    holder = parent
    for key in path:
        if not isinstance(holder.get(key), dict):
            holder[key] = {}
        holder = holder[key]
    holder.setdefault("nodes", []).append(child)


def reassemble(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """Root nodes with their children in place, one at a time: only the current root's tree is
    held in memory. A line that is not JSON raises ValueError; an orphan raises too, since
    dropping it would lose data silently."""
    root: dict[str, Any] | None = None
    by_id: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        node = json.loads(line)
        if not isinstance(node, dict):
            raise ValueError("A bulk line is not an object.")
        parent_id = node.pop("__parentId", None)
        if parent_id is None:
            if root is not None:
                yield root
            root, by_id = node, {}
        elif parent_id in by_id:
            attach(by_id[parent_id], node)
        else:
            raise ValueError(f"The bulk line of {node.get('id')} comes before its parent {parent_id}.")
        # Nested objects with ids too: a level's parent may be named by its variant's inventory item.
        for held in (node, *(v for v in node.values() if isinstance(v, dict))):
            if held.get("id"):
                by_id[held["id"]] = held
    if root is not None:
        yield root
