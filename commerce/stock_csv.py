"""Stock from a CSV of `sku,quantity` rows (the dashboard's stock page and the admin).

A header row (`sku,quantity`; `qty`, `stock`, `available` and `on_hand` name the quantity too) is
optional. Every row is checked first: a missing or unknown SKU, a quantity that is not a whole
number of zero or more, a SKU twice, or more than STOCK_CSV_MAX_ROWS rows, and nothing is set. A
valid file sets every figure at once (`commerce.stock.set_many`), each pushed to its listings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings

from tenants.models import Tenant

from . import stock
from .models import StockItem

QUANTITY_HEADERS = {"quantity", "qty", "stock", "available", "on_hand", "on hand"}
MAX_ERRORS = 50


@dataclass
class CsvResult:
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    items: list[StockItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def read(file: IO[bytes]) -> tuple[dict[str, int], list[str]]:
    """The file's {sku: quantity} and its errors ("Row 3: …"), at most MAX_ERRORS of them."""
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    quantities: dict[str, int] = {}
    errors: list[str] = []
    limit = settings.STOCK_CSV_MAX_ROWS
    try:
        for number, row in enumerate(csv.reader(text), start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if number == 1 and len(cells) >= 2 and cells[0].lower() == "sku" and cells[1].lower() in QUANTITY_HEADERS:
                continue
            if len(quantities) >= limit:
                errors.append(f"The file has more than {limit} rows: split it.")
                break
            problem = _problem(cells, quantities)
            if problem:
                errors.append(f"Row {number}: {problem}")
                if len(errors) >= MAX_ERRORS:
                    break
                continue
            quantities[cells[0]] = int(cells[1])
    except (UnicodeDecodeError, csv.Error) as error:
        errors.append(f"The file is not a readable UTF-8 CSV ({error}).")
    finally:
        text.detach()
    return quantities, errors


def _problem(cells: list[str], seen: dict[str, int]) -> str:
    if len(cells) < 2 or not cells[0]:
        return "each row needs a SKU and a quantity."
    sku, quantity = cells[0], cells[1]
    if not quantity.lstrip("-").isdigit():
        return f"the quantity of {sku} is “{quantity[:20]}”, not a whole number."
    if int(quantity) < 0:
        return f"the quantity of {sku} is negative."
    if sku in seen:
        return f"{sku} is in the file twice."
    return ""


def import_stock(tenant: Tenant, file: IO[bytes], *, via: str, request=None) -> CsvResult:
    """Check the file and, when every row is valid, set the figures of the tenant's SKUs in it."""
    quantities, errors = read(file)
    result = CsvResult(rows=len(quantities), errors=errors)
    if not errors:
        known = set(StockItem.objects.for_tenant(tenant).filter(sku__in=list(quantities)).values_list("sku", flat=True))
        unknown = [sku for sku in quantities if sku not in known]
        result.errors = [f"No stock item has the SKU {sku}: sync or link it first." for sku in unknown[:MAX_ERRORS]]
    if not result.errors and not quantities:
        result.errors = ["The file has no rows."]
    if result.errors:
        return result
    result.items = stock.set_many(tenant, quantities, via=via, request=request)
    return result
