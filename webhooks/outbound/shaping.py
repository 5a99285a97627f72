"""Payload templates: a subscription may ask for its own body, built from dotted paths into the
standard payload (`{"order": "data.number", "total": "data.total", "sku": "data.lines.0.sku"}`).
Paths are looked up, never evaluated: a path that leads nowhere gives null."""

from __future__ import annotations

import re
from typing import Any

MAX_KEYS = 50
MAX_DEPTH = 10
SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_template(template: Any) -> dict[str, str] | None:
    """The template as stored, or a ValueError that says what is wrong with it."""
    if template is None:
        return None
    if not isinstance(template, dict) or not template:
        raise ValueError('Use an object of output keys to dotted paths, e.g. {"total": "data.total"}.')
    if len(template) > MAX_KEYS:
        raise ValueError(f"At most {MAX_KEYS} keys.")
    for key, path in template.items():
        if not key or len(key) > 100:
            raise ValueError("Each output key is 1 to 100 characters.")
        if not isinstance(path, str):
            raise ValueError(f"“{key}”: a path is a string, e.g. “data.total”.")
        segments = path.split(".")
        if len(segments) > MAX_DEPTH or not all(SEGMENT.fullmatch(segment) for segment in segments):
            raise ValueError(
                f"“{key}”: “{path}” is not a dotted path (names and list positions, letters, digits, _ and -, "
                f"at most {MAX_DEPTH} deep)."
            )
    return template


def resolve(value: Any, path: str) -> Any:
    for segment in path.split("."):
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def apply_template(template: dict[str, str] | None, payload: dict) -> dict:
    if not template:
        return payload
    return {key: resolve(payload, path) for key, path in template.items()}
