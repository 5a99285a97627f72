"""Bench-only profiling for `bench/webhook_ingest.py --profile` (loaded by `bench.settings_webhook`
when BENCH_WEBHOOK_TIMING is set; never part of the project's settings).

`ServerTimingMiddleware` runs outermost and answers, in a `Server-Timing` header, the time the
request spent inside Django and how much of it went to each kind of database work: opening the
connection, BEGIN, the connection lookup, the event insert, the task-queue insert, COMMIT, other
SQL. With BENCH_WEBHOOK_CPROFILE set to a directory, each worker also runs cProfile over its
webhook requests (not the bare view) and writes `<pid>.prof` there when it exits.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

from django.db import connections
from django.http import HttpRequest, HttpResponse

KINDS = (
    ("begin", re.compile(r"^\s*BEGIN", re.IGNORECASE)),
    ("savepoint", re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK TO)", re.IGNORECASE)),
    ("lookup", re.compile(r"^\s*SELECT .* FROM \"integrations_connection\"", re.IGNORECASE | re.DOTALL)),
    ("event_insert", re.compile(r"^\s*INSERT INTO \"webhooks_webhookevent\"", re.IGNORECASE)),
    ("queue_insert", re.compile(r"^\s*INSERT INTO \"django_q_ormq\"", re.IGNORECASE)),
)
# Database work outside `cursor.execute`: opening the connection and committing.
WRAPPED = ("connect", "commit")

_profile_dir = os.environ.get("BENCH_WEBHOOK_CPROFILE", "")
_profiler = cProfile.Profile() if _profile_dir else None


def _dump() -> None:
    if _profiler is not None:
        _profiler.dump_stats(Path(_profile_dir) / f"{os.getpid()}.prof")


if _profiler is not None:
    atexit.register(_dump)


def kind(sql: str) -> str:
    for name, pattern in KINDS:
        if pattern.match(sql):
            return name
    return "sql_other"


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        spans: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)

        def timed_execute(execute, sql, params, many, context):
            started = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                name = kind(sql)
                spans[name] += perf_counter() - started
                counts[name] += 1

        def timing(name: str, method: Callable) -> Callable:
            def call(*args, **kwargs):
                started = perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    spans[name] += perf_counter() - started
                    counts[name] += 1

            return call

        db = connections["default"]
        for name in WRAPPED:
            setattr(db, name, timing(name, getattr(db, name)))
        profile = _profiler is not None and request.path.startswith("/webhooks/")
        started = perf_counter()
        try:
            with db.execute_wrapper(timed_execute):
                if profile:
                    _profiler.enable()
                try:
                    response = self.get_response(request)
                finally:
                    if profile:
                        _profiler.disable()
        finally:
            for name in WRAPPED:
                delattr(db, name)
        total = perf_counter() - started
        parts = [f"django;dur={total * 1000:.3f}"]
        parts += [f"{name};dur={spans[name] * 1000:.3f};desc={counts[name]}" for name in sorted(spans)]
        response["Server-Timing"] = ", ".join(parts)
        return response
