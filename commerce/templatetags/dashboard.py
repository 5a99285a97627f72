"""Number formatting and the change-vs-previous-period badge for the client dashboard."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from commerce.charts import format_number
from commerce.metrics import channel_label

register = template.Library()


@register.filter
def money(value: object) -> str:
    """1234.5 → "1,234.50"."""
    return format_number(value, 2)


@register.filter
def count(value: object) -> str:
    """1234 → "1,234"."""
    return format_number(value, 0)


@register.filter
def channel_name(value: str) -> str:
    """ "tiktok" → "TikTok Shop"."""
    return channel_label(str(value))


@register.simple_tag
def change(percent: float | None, *, higher_is_better: bool = True) -> SafeString:
    """The change against the previous period: "▲ 12.5%" in green when it is good news, red when bad."""
    if percent is None:
        title = "Nothing to compare with in the previous period"
        return format_html('<span class="change none" title="{}">{}</span>', title, "—")
    if abs(percent) < 0.05:
        return format_html('<span class="change flat" title="{}">{}</span>', "Same as the previous period", "± 0%")
    up = percent > 0
    good = up == higher_is_better
    return format_html(
        '<span class="change {} {}" title="{}">{} {}%</span>',
        "up" if up else "down",
        "good" if good else "bad",
        f"{'Up' if up else 'Down'} {abs(percent):.1f}% on the previous period",
        "▲" if up else "▼",
        f"{abs(percent):.1f}",
    )
