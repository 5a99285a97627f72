"""Bench-only settings for `bench/api.py`'s gunicorn process: the project's settings with
`bench.api_urls` as the URLconf, which adds the orders list without authentication beside the real
one. Production settings and URLs are untouched."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
