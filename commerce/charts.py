"""Server-rendered SVG charts for the client dashboard: no JavaScript and no CDN, so they work offline.

Every piece of text is escaped (`format_html`, `_tag`), every figure shown is formatted by
`format_number`/`format_compact`, and each chart has a `<title>`/`<desc>` pair and a `<title>` per
mark, which screen readers announce and browsers show as a tooltip.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#175cd3", "#e8590c", "#0e9384", "#7a5af8", "#c11574", "#4e5ba6", "#b54708")
# Brand-like colours make a channel recognisable at a glance; unknown channels use the palette.
CHANNEL_COLOURS = {
    "shopify": "#5e8e3e",
    "amazon": "#e47911",
    "woocommerce": "#7f54b3",
    "ebay": "#0064d2",
    "tiktok": "#1d2939",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

_ids = itertools.count(1)


def format_number(value: object, places: int = 0) -> str:
    """1234.5 → "1,234.50" (places=2); None → "0"."""
    if value is None:
        value = 0
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    return f"{number:,.{places}f}"


def format_compact(value: float) -> str:
    """Axis labels: 1200 → "1.2k", 3000000 → "3M"."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.1f}"


def axis(largest: float, steps: int, *, whole: bool = False) -> tuple[float, int]:
    """A round top for an axis and its number of gridline steps (at most `steps`) for values up to
    `largest`: the step is 1, 2, 2.5 or 5 times a power of ten; with `whole`, a whole number (counts)."""
    largest = max(float(largest), 0.0) or 1.0
    exponent = math.floor(math.log10(largest / steps))
    step = 10.0 ** (exponent + 1)
    for multiple in (1, 2, 2.5, 5):
        candidate = multiple * 10.0**exponent
        if candidate * steps >= largest and not (whole and candidate != int(candidate)):
            step = candidate
            break
    if whole:
        step = max(step, 1.0)
    count = max(1, math.ceil(largest / step - 1e-9))
    return step * count, count


def _tag(template: str, *args: object) -> SafeString:
    """Like `format_html`, but numbers keep their type so the template can format them ("{:.1f}");
    a number cannot carry markup, everything else is escaped."""
    values = [
        a if isinstance(a, int | float | Decimal) and not isinstance(a, bool) else conditional_escape(a) for a in args
    ]
    return mark_safe(template.format(*values))  # noqa: S308 (every non-number argument is escaped)


def _grid(maximum, steps: int, bottom: float, height: float, left: float, right: float) -> list[SafeString]:
    """Horizontal grid lines with their values on the left axis, from 0 to `maximum`."""
    lines = []
    for i in range(steps + 1):
        y = bottom - height * i / steps
        lines.append(
            _tag(
                '<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#e4e7ec"/>'
                '<text x="{}" y="{:.1f}" text-anchor="end" fill="#667085">{}</text>',
                left,
                right,
                y,
                y,
                left - 8,
                y + 4,
                format_compact(maximum * i / steps),
            )
        )
    return lines


def _uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: Iterable[SafeString]) -> SafeString:
    return format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        'role="img" aria-labelledby="{id}-title {id}-desc" font-family="{font}" font-size="12">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        w=width,
        h=height,
        id=chart_id,
        font=FONT,
        title=title,
        desc=desc,
        body=mark_safe("".join(body)),  # noqa: S308 (each part was built by _tag)
    )


# --- Revenue and orders over time ----------------------------------------------------------------


@dataclass
class Bucket:
    start: date
    revenue: Decimal
    orders: int


def fill_buckets(points: Sequence[dict], start: date, end: date, bucket: str) -> list[Bucket]:
    """Every day (or week, from Monday) of the period, with zero where there were no orders, so the
    line drops to zero instead of skipping the quiet days."""
    step = timedelta(days=7 if bucket == "week" else 1)

    def key(day: date) -> date:
        return day - timedelta(days=day.weekday()) if bucket == "week" else day

    values: dict[date, Bucket] = {}
    for point in points:
        k = key(_as_date(point["date"]))
        entry = values.setdefault(k, Bucket(k, Decimal(0), 0))
        entry.revenue += Decimal(str(point.get("revenue") or 0))
        entry.orders += int(point.get("orders") or 0)
    buckets = []
    day = key(start)
    while day <= end:
        buckets.append(values.get(day, Bucket(day, Decimal(0), 0)))
        day += step
    return buckets


def sales_chart(points: Sequence[dict], currency: str, start: date, end: date, bucket: str = "day") -> SafeString:
    """One currency's revenue (a line) above its order count (bars), on a shared time axis."""
    buckets = fill_buckets([p for p in points if p.get("currency") == currency], start, end, bucket)
    width = 1100
    left, right, top = 64, 16, 16
    rev_height, gap, ord_height = 150, 34, 60
    rev_bottom = top + rev_height
    ord_top = rev_bottom + gap
    ord_bottom = ord_top + ord_height
    plot_width = width - left - right
    n = max(1, len(buckets))
    slot = plot_width / n
    rev_max, rev_steps = axis(max((b.revenue for b in buckets), default=0), 4)
    ord_max, ord_steps = axis(max((b.orders for b in buckets), default=0), 2, whole=True)
    colour = PALETTE[0]
    unit = "week of" if bucket == "week" else ""

    def x(i: int) -> float:
        return left + slot * (i + 0.5)

    def y_rev(v: Decimal) -> float:
        return rev_bottom - float(v) / rev_max * rev_height

    parts: list[SafeString] = []
    # Revenue grid and axis labels.
    parts.extend(_grid(rev_max, rev_steps, rev_bottom, rev_height, left, width - right))
    parts.append(
        _tag(
            '<text x="14" y="{:.1f}" transform="rotate(-90 14 {:.1f})" text-anchor="middle" fill="#475467" '
            'font-weight="600">Revenue ({})</text>',
            top + rev_height / 2,
            top + rev_height / 2,
            currency,
        )
    )
    # Revenue area and line.
    coords = [(x(i), y_rev(b.revenue)) for i, b in enumerate(buckets)]
    line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    area = f"{coords[0][0]:.1f},{rev_bottom} {line} {coords[-1][0]:.1f},{rev_bottom}"
    parts.append(_tag('<polygon points="{}" fill="{}" fill-opacity="0.08"/>', area, colour))
    parts.append(
        _tag('<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5" stroke-linejoin="round"/>', line, colour)
    )
    # Orders grid, bars and axis labels.
    parts.extend(_grid(ord_max, ord_steps, ord_bottom, ord_height, left, width - right))
    parts.append(
        _tag(
            '<text x="14" y="{:.1f}" transform="rotate(-90 14 {:.1f})" text-anchor="middle" fill="#475467" '
            'font-weight="600">Orders</text>',
            ord_top + ord_height / 2,
            ord_top + ord_height / 2,
        )
    )
    bar_width = max(1.0, min(28.0, slot * 0.6))
    for i, b in enumerate(buckets):
        bar_height = b.orders / ord_max * ord_height
        label = f"{unit} {b.start.isoformat()}".strip()
        tooltip = f"{label}: {format_number(b.revenue, 2)} {currency}, {format_number(b.orders)} orders"
        # One invisible column per bucket carries the tooltip over the whole height.
        parts.append(
            _tag(
                '<g class="point"><title>{}</title>'
                '<rect x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="transparent"/>'
                '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" fill-opacity="0.55" rx="2"/>'
                '<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}"/></g>',
                tooltip,
                left + slot * i,
                top,
                slot,
                ord_bottom - top,
                x(i) - bar_width / 2,
                ord_bottom - bar_height,
                bar_width,
                bar_height,
                PALETTE[1],
                coords[i][0],
                coords[i][1],
                3 if n <= 45 else 0,
                colour,
            )
        )
    # Date labels: at most about ten, evenly spaced, always the first and the last.
    every = max(1, math.ceil(n / 10))
    for i, b in enumerate(buckets):
        if i % every and i != n - 1:
            continue
        if i != n - 1 and n - 1 - i < every / 2 and i:
            continue
        parts.append(
            _tag(
                '<text x="{:.1f}" y="{}" text-anchor="middle" fill="#667085">{}</text>',
                x(i),
                ord_bottom + 18,
                f"{b.start.day} {b.start:%b}",
            )
        )
    total_revenue = sum((b.revenue for b in buckets), Decimal(0))
    total_orders = sum(b.orders for b in buckets)
    per = "week" if bucket == "week" else "day"
    desc = (
        f"Revenue in {currency} and orders per {per} from {start.isoformat()} to {end.isoformat()}: "
        f"{format_number(total_revenue, 2)} {currency} from {format_number(total_orders)} orders in total."
    )
    return _svg(_uid("sales"), width, ord_bottom + 28, f"Revenue and orders per {per} ({currency})", desc, parts)


# --- Horizontal bars -----------------------------------------------------------------------------


@dataclass
class Bar:
    label: str
    value: float
    text: str
    tooltip: str
    colour: str


def bar_chart(bars: Sequence[Bar], title: str, desc: str, *, label_width: int = 150, width: int = 540) -> SafeString:
    """Horizontal bars, largest first as given, each with its label on the left and its figure on the right."""
    row, top = 34, 8
    value_width = 150
    plot_width = width - label_width - value_width - 16
    height = top * 2 + row * max(1, len(bars))
    largest = max((b.value for b in bars), default=0) or 1
    parts: list[SafeString] = []
    for i, bar in enumerate(bars):
        y = top + row * i
        length = max(2.0, bar.value / largest * plot_width) if bar.value > 0 else 0
        parts.append(
            _tag(
                '<g class="bar"><title>{}</title>'
                '<text x="{}" y="{:.1f}" text-anchor="end" fill="#344054">{}</text>'
                '<rect x="{}" y="{}" width="{:.1f}" height="20" rx="3" fill="#f2f4f7"/>'
                '<rect x="{}" y="{}" width="{:.1f}" height="20" rx="3" fill="{}"/>'
                '<text x="{:.1f}" y="{:.1f}" fill="#101828" font-weight="600">{}</text></g>',
                bar.tooltip,
                label_width - 8,
                y + 14.5,
                _short(bar.label, 22),
                label_width,
                y + 2,
                plot_width,
                label_width,
                y + 2,
                length,
                bar.colour,
                label_width + plot_width + 8,
                y + 14.5,
                bar.text,
            )
        )
    return _svg(_uid("bars"), width, height, title, desc, parts)


def channel_chart(rows: Sequence[dict], currency: str) -> SafeString:
    """Revenue by channel in one currency (each channel's share of that currency's revenue)."""
    rows = sorted((r for r in rows if r.get("currency") == currency), key=lambda r: -Decimal(str(r["revenue"])))
    total = sum((Decimal(str(r["revenue"])) for r in rows), Decimal(0))
    bars = []
    for i, r in enumerate(rows):
        revenue = Decimal(str(r["revenue"]))
        share = float(revenue / total * 100) if total else 0.0
        label = r.get("label") or str(r["channel"]).title()
        bars.append(
            Bar(
                label=label,
                value=float(revenue),
                text=f"{format_number(revenue, 2)} ({share:.0f}%)",
                tooltip=f"{label}: {format_number(revenue, 2)} {currency} from {format_number(r.get('orders'))} "
                f"orders, {share:.1f}% of {currency} revenue",
                colour=CHANNEL_COLOURS.get(str(r["channel"]), PALETTE[i % len(PALETTE)]),
            )
        )
    summary = ", ".join(f"{b.label} {b.text}" for b in bars) or "no sales"
    return bar_chart(bars, f"Revenue by channel ({currency})", f"Revenue in {currency} by channel: {summary}.")


def top_products_chart(rows: Sequence[dict], currency: str) -> SafeString:
    """One currency's best sellers by revenue, each with the units sold."""
    bars = []
    for r in (r for r in rows if r.get("currency") == currency):
        title = str(r.get("title") or r.get("sku") or "Untitled")
        quantity = int(r.get("quantity") or 0)
        revenue = Decimal(str(r.get("revenue") or 0))
        sku = f" (SKU {r['sku']})" if r.get("sku") else ""
        bars.append(
            Bar(
                label=title,
                value=float(revenue),
                text=f"{format_number(revenue, 2)} · {format_number(quantity)} sold",
                tooltip=f"{title}{sku}: {format_number(revenue, 2)} {currency} from {format_number(quantity)} units",
                colour=PALETTE[0],
            )
        )
    summary = "; ".join(f"{b.label}: {b.text}" for b in bars) or "no sales"
    return bar_chart(
        bars,
        f"Top products by revenue ({currency})",
        f"Revenue in {currency} and units sold per product: {summary}.",
        label_width=190,
        width=560,
    )
