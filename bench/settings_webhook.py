"""Bench-only settings for `bench/webhook_ingest.py`'s gunicorn process: the project's settings
with `bench.webhook_urls` as the URLconf (it adds the bare ceiling view). With BENCH_WEBHOOK_TIMING
set, `bench.webhook_timing.ServerTimingMiddleware` goes first, to report where the server's time goes."""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE, WEBHOOK_MIDDLEWARE

ROOT_URLCONF = "bench.webhook_urls"

if os.environ.get("BENCH_WEBHOOK_TIMING"):
    MIDDLEWARE = ["bench.webhook_timing.ServerTimingMiddleware", *MIDDLEWARE]
    WEBHOOK_MIDDLEWARE = ["bench.webhook_timing.ServerTimingMiddleware", *WEBHOOK_MIDDLEWARE]
