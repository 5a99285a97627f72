#!/usr/bin/env python
"""`make bench`: every benchmark in bench/ in quick mode, one after another, and one table of their
figures in bench/RESULTS.md: each figure with its target, what this run measured, the ceiling
measured in the same run (a bare fetch loop for sync, a bare 200 view on the same gunicorn for
webhooks and the API, one raw SQL aggregate for the dashboard, a bare loop of the same POSTs for
campaigns) and the machine it ran on.

    .venv/bin/python bench/run_all.py                       # about 3 minutes on 2 cores
    .venv/bin/python bench/run_all.py --only sync,campaign   # some of them (names below)
    make bench ARGS="--only dashboard"

The database is PostgreSQL when DATABASE_URL names it: a database of the benchmarks' own on that
server, `hub_bench` (created when missing and kept, so the dashboard's and the API's generated data
is reused by the next run), never the one DATABASE_URL names. Otherwise temporary SQLite files,
deleted at the end (never the development database). The cache is REDIS_URL when set. Each
script's own output is shown as it runs; the table is written at the end, also when a benchmark
failed (its row says so).

Before each benchmark the machine is left to settle: PostgreSQL writes out what the previous one
left in its buffers (CHECKPOINT, where the role may), and the run waits, up to SETTLE_SECONDS, until
the machine is under SETTLE_BUSY_PERCENT busy, so one benchmark's after-effects (checkpoints,
autovacuum) do not land in the next one's measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
BENCH_DATABASE = "hub_bench"
TIMEOUT_SECONDS = 900
SETTLE_SECONDS = 60
SETTLE_BUSY_PERCENT = 10


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    ceiling: str
    load: float | None = None


@dataclass
class Bench:
    name: str
    command: list[str]
    rows: Callable[[str], list[Row]]


# --- Reading each script's figures ----------------------------------------------------------------


def last_json(output: str) -> dict:
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def share(measured: float, ceiling: float) -> str:
    return f"{measured / ceiling:.0%} of it" if ceiling else ""


def sync_rows(output: str) -> list[Row]:
    f = last_json(output)
    rate, ceiling = f["orders_per_second"], f["ceiling_orders_per_second"]
    return [
        Row(
            f"Sync: full WooCommerce sync, {f['orders']:,} orders x {f['lines_per_order']} lines (orders/s)",
            ">= 2,000 orders/s",
            f"{rate:,} orders/s ({f['statements_per_page']} SQL/page, +{f['peak_memory_growth_mb']} MB)",
            f"bare fetch loop {ceiling:,} orders/s; sync {share(rate, ceiling)}",
            f["load_average"],
        )
    ]


WEBHOOK_LINE = re.compile(
    r"^\s+(bare|webhook|bare-webhook-chain)\s+([\d.]+) req/s\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms"
    r"\s+p99\s+([\d.]+) ms",
    re.MULTILINE,
)
WEBHOOK_STORED = re.compile(r"stored: .*: (all stored|MISMATCH)")


def webhook_rows(output: str) -> list[Row]:
    # webhook_ingest.py prints a line per target (no JSON): "  webhook   812.3 req/s   p50 … p99 … ms".
    found = {m.group(1): (float(m.group(2)), float(m.group(5))) for m in WEBHOOK_LINE.finditer(output)}
    if not {"bare", "webhook"} <= set(found):
        raise ValueError("no figures for both targets in the output")
    (rate, p99), (bare, _) = found["webhook"], found["bare"]
    lean = found.get("bare-webhook-chain")
    on_chain = f" (on the webhooks' short chain {lean[0]:,.0f} req/s: {share(rate, lean[0])})" if lean else ""
    stored = WEBHOOK_STORED.search(output)
    verdict = f"; {stored.group(1)}" if stored else ""
    load = re.search(r"load average \(1, 5, 15 min\) before the run: ([\d.]+)", output)
    return [
        Row(
            "Webhook ingest: signed Shopify orders/updated stored and answered (req/s, p99)",
            "p99 < 50 ms; >= 50% of the bare view",
            f"{rate:,.0f} req/s, p99 {p99:.1f} ms{verdict}",
            f"bare 200 view {bare:,.0f} req/s; webhook {share(rate, bare)}{on_chain}",
            float(load.group(1)) if load else None,
        )
    ]


def api_rows(output: str) -> list[Row]:
    f = last_json(output)
    bare = f.get("bare_rps") or 0
    return [
        Row(
            f"API: GET /api/v1/orders, {f['page_size']} per page, API key (req/s, p99)",
            "-",
            f"{f['key_auth_rps']:,.0f} req/s, p99 {f.get('key_auth_p99_ms', float('nan')):.1f} ms",
            f"bare 200 view {bare:,.0f} req/s; list {share(f['key_auth_rps'], bare)}",
            f["load_average"],
        ),
        Row(
            "API: key authentication + rate limit + usage count, per request (in process)",
            "< 1 ms",
            f"{f['auth_cost_mean_us']:,.0f} µs mean, {f['auth_cost_median_us']:,.0f} µs median",
            f"same list without a key {f['no_auth_rps']:,.0f} req/s",
            f["load_average"],
        ),
    ]


def dashboard_rows(output: str) -> list[Row]:
    f = last_json(output)
    rows = []
    for days in ("30", "90"):
        raw = f[f"days_{days}_raw_ms"]
        for state, target in (("cold", "< 300 ms (PostgreSQL)"), ("warm", "< 20 ms")):
            ms = f[f"days_{days}_{state}_ms"]
            rows.append(
                Row(
                    f"Dashboard: {days} days, {state}, tenant of {f['orders']:,} orders (server time)",
                    target,
                    f"{ms:,.1f} ms ({f[f'days_{days}_{state}_queries']} queries)",
                    f"one raw SQL aggregate {raw:,.1f} ms",
                    f["load_average"],
                )
            )
    return rows


def campaign_rows(output: str) -> list[Row]:
    f = last_json(output)
    rate, ceiling = f["emails_per_second"], f["ceiling_emails_per_second"]
    budget = "with" if f["with_budget"] else "without"
    return [
        Row(
            f"Campaign send: {f['recipients']:,} SendGrid emails through campaigns.sending (emails/s)",
            "-",
            f"{rate:,.0f} emails/s ({f['statements_per_email']} SQL/email; {budget} the request budget, "
            f"which allows {f['budget_emails_per_second']:,} /s)",
            f"bare POST loop {ceiling:,.0f} posts/s; send {share(rate, ceiling)}",
            f["load_average"],
        )
    ]


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / name), *args]


BENCHES = [
    Bench("sync", script("sync_throughput.py", "--quick", "--json"), sync_rows),
    Bench(
        "webhook",
        script("webhook_ingest.py"),  # its own size (2,000 requests a target): fewer swing by a tenth
        webhook_rows,
    ),
    Bench("api", script("api.py", "--quick", "--json"), api_rows),
    Bench("dashboard", script("dashboard.py", "--quick", "--json"), dashboard_rows),
    Bench("campaign", script("campaign_send.py", "--quick", "--json"), campaign_rows),
]


# --- Database and machine ---------------------------------------------------------------------------


def bench_database_url(workdir: Path, name: str = BENCH_DATABASE) -> str:
    """`name` (hub_bench) on the PostgreSQL server DATABASE_URL names (created when missing), else SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    parts = urlsplit(url)
    import psycopg

    server = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def database_label(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return f"PostgreSQL {version}"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    return platform.processor() or platform.machine()


# --- Running ------------------------------------------------------------------------------------------


def busy_percent(seconds: float = 1.0) -> float | None:
    """How busy the whole machine was over the next `seconds` (/proc/stat), or None off Linux."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return 100.0 * (total - (idle_after - idle_before)) / total if total else None


def settle(url: str) -> None:
    """Let the previous benchmark's after-effects pass before the next one measures."""
    if not url.startswith("sqlite"):
        import psycopg

        parts = urlsplit(url)
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")), autocommit=True) as conn,
        ):
            conn.execute("CHECKPOINT")  # superuser or pg_checkpoint; otherwise skipped
    began = time.monotonic()
    busy = busy_percent()
    while busy is not None and busy > SETTLE_BUSY_PERCENT and time.monotonic() - began < SETTLE_SECONDS:
        busy = busy_percent()
    waited = time.monotonic() - began
    if busy is not None:
        print(f"(waited {waited:.0f} s for the machine to settle: {busy:.0f}% busy)", flush=True)


def run_one(bench: Bench, env: dict[str, str]) -> tuple[list[Row], float, str]:
    """Run one script, showing its output as it comes; its rows, seconds and an error (or "")."""
    print(f"\n\033[1m==> bench/{Path(bench.command[1]).name} {' '.join(bench.command[2:])}\033[0m", flush=True)
    began = time.monotonic()
    lines: list[str] = []
    process = subprocess.Popen(
        bench.command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
            if time.monotonic() - began > TIMEOUT_SECONDS:
                process.terminate()
                break
        code = process.wait(timeout=60)
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=60)
        raise
    seconds = time.monotonic() - began
    output = "".join(lines)
    if code != 0:
        return [], seconds, f"exited with {code}"
    try:
        return bench.rows(output), seconds, ""
    except (ValueError, KeyError) as error:
        return [], seconds, f"figures not found in its output ({error})"


def table(results: list[tuple[Bench, list[Row], float, str]], machine: str, database: str) -> str:
    header = "| figure | target | measured | ceiling (same run) | machine |\n|---|---|---|---|---|\n"
    body = []
    for bench, rows, _seconds, error in results:
        if error:
            body.append(f"| `{bench.name}` ({Path(bench.command[1]).name}) | | **failed**: {error} | | |")
        for row in rows:
            load = f"load {row.load:.2f}" if row.load is not None else "load ?"
            body.append(
                f"| {row.figure} | {row.target} | {row.measured} | {row.ceiling} | {machine}, {load}, {database} |"
            )
    return header + "\n".join(body) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [b.name for b in BENCHES]
    parser.add_argument("--only", default="", help=f"Comma-separated benchmarks to run, of {', '.join(names)}.")
    parser.add_argument(
        "--full",
        action="store_true",
        help="Each script at its own full size (the dashboard's tenant of 1,000,000 orders, generated once "
        "and kept in hub_bench_full on PostgreSQL): much longer than the quick sizes.",
    )
    args = parser.parse_args()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(names)}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-all-"))
    began = time.monotonic()
    try:
        # Full sizes keep their own generated data (hub_bench_full), apart from the quick sizes'.
        url = bench_database_url(workdir, f"{BENCH_DATABASE}_full" if args.full else BENCH_DATABASE)
        database = database_label(url)
        cache = "Redis" if os.environ.get("REDIS_URL") else "local-memory cache"
        # On SQLite the API, webhook and campaign benchmarks take a temporary file of their own
        # whatever the URL; sync and dashboard use this one, deleted at the end (never db.sqlite3).
        env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        machine = f"{os.cpu_count()} cores {cpu_model()}"
        results = []
        for bench in BENCHES:
            if bench.name in chosen:
                if args.full:
                    bench = Bench(bench.name, [a for a in bench.command if a != "--quick"], bench.rows)
                settle(url)
                rows, seconds, error = run_one(bench, env)
                results.append((bench, rows, seconds, error))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - began
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    durations = ", ".join(f"{bench.name} {seconds:.0f} s" for bench, _, seconds, _ in results)
    sizes = "full" if args.full else "quick"
    text = (
        "# Benchmark results\n\n"
        f"`make bench` (bench/run_all.py, {sizes} sizes) on {stamp}: {database}, {cache}; Python "
        f"{platform.python_version()} on {platform.system()} {platform.release()}. Took {total:.0f} s "
        f"({durations}). The load average is the machine's one-minute figure as each benchmark ended: "
        "the load generators share the machine with the server and the database, so a busy machine "
        "lowers every figure, the ceilings included; compare a figure with its ceiling from the same "
        "run rather than across runs. Each script's full output and options: `--help`.\n\n"
        + table(results, machine, database)
    )
    RESULTS.write_text(text)
    print(f"\n{text}\nWritten to {RESULTS.relative_to(ROOT)} in {total:.0f} s.")
    return 1 if any(error for _, _, _, error in results) else 0


if __name__ == "__main__":
    sys.exit(main())
