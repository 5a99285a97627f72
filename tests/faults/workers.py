"""Worker processes for the fault tests: real processes on the test's own database, that a test
can SIGKILL, starve of their database connection, or leave running.

The parent side (`start_sync`, `start_drainer`, `start_web`, `database_url`, `terminate_backends`,
`wait_for`) runs in pytest. The child side is this module run as a script,
`python -m tests.faults.workers <command> …`, with the project's settings and the environment the
parent gives it:

- `sync-run <run id>`: `integrations.tasks.sync_run`, the task "Sync now" queues (and django-q2
  delivers again when a worker died holding it);
- `scheduled-sync <connection id>`: `integrations.tasks.scheduled_sync`, a connection's schedule;
- `drain`: webhook processing as the task worker does it, `webhooks.processing.drain` and the
  sweep's retries, until SIGTERM.

The database is the test's: pytest-django's test database (its name is only known once the test
runs, so the parent passes `DATABASE_URL`), or on SQLite a file copy of it (see conftest's
`shared_db`). `FAULTS_LEASE_SECONDS` shortens the sync lease and `FAULTS_READ_TIMEOUT` the
platform read timeout, so a test waits seconds where production waits minutes;
`FAULTS_WEBHOOK_LOCK_SECONDS` shortens the hold a webhook worker takes on an event;
`FAULTS_RATE_LIMIT` and `FAULTS_RATE_BURST` set every platform's request budget (requests a second,
and the burst), as for a shop on a larger plan; `FAULTS_PAUSE_AFTER_PAGES` with
`FAULTS_PAUSE_SECONDS` holds a sync still after that many pages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
# Every process started here, so that a test that fails half-way leaves none running (conftest).
started: list[Worker] = []


# --- Parent side ----------------------------------------------------------------------------------


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database `settings_dict` describes (the connection's own)."""
    if "sqlite" in settings_dict["ENGINE"]:
        return f"sqlite:///{settings_dict['NAME']}"
    user, password = quote(settings_dict["USER"] or "", safe=""), quote(settings_dict["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{auth}{settings_dict['HOST'] or 'localhost'}{port}/{quote(settings_dict['NAME'], safe='')}"


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to the database, as when a host dies."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()

    def wait(self, timeout: float = 120.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"{self.name} did not finish in {timeout:.0f} s:\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait(timeout=10)


def admin_connection(settings_dict: dict):
    """A psycopg connection of our own to the PostgreSQL database `settings_dict` describes (not
    Django's: callers run in the fake platform's threads)."""
    import psycopg

    return psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or None,
        autocommit=True,
    )


def terminate_backends(settings_dict: dict, application_name: str) -> int:
    """`pg_terminate_backend` every connection of the worker named `application_name`, as a
    PostgreSQL restart ends them; returns how many there were."""
    with admin_connection(settings_dict) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [application_name],
        ).fetchall()
    return len(rows)


def restart_server(settings_dict: dict, command: str) -> float:
    """Restart the PostgreSQL server with `command` (FAULTS_POSTGRES_RESTART: .ci/run's
    `pg_ctlcluster … restart -m fast`, which ends every session) and wait until it accepts
    connections again; returns the seconds it took."""
    import shlex

    began = time.monotonic()
    subprocess.run(shlex.split(command), check=True, capture_output=True, timeout=120)

    def accepting() -> bool:
        try:
            with admin_connection(settings_dict) as admin:
                admin.execute("SELECT 1")
        except Exception:  # refused, or "the database system is starting up"
            return False
        return True

    wait_for(accepting, timeout=60, interval=0.2, what="PostgreSQL to accept connections again")
    return time.monotonic() - began


def server_started_at(settings_dict: dict):
    with admin_connection(settings_dict) as admin:
        return admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


def wait_for(
    condition: Callable[[], object], *, timeout: float = 60.0, interval: float = 0.05, what: str = ""
) -> object:
    """Poll `condition` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def child_env(db_url: str, **extra: object) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "INTEGRATIONS_ALLOW_PRIVATE_URLS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({name: str(value) for name, value in extra.items()})
    return env


def _start(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Worker:
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(name, process, log)
    started.append(worker)
    return worker


def start_sync(
    name: str,
    db_url: str,
    log_dir: Path,
    *,
    run_id: int | None = None,
    connection_id: int | None = None,
    lease_seconds: float = 600,
    read_timeout: float = 30.0,
    **env: object,
) -> Worker:
    """A worker process running one sync: the queued run `run_id`, or `connection_id`'s schedule."""
    command = [sys.executable, "-m", "tests.faults.workers"]
    command += ["sync-run", str(run_id)] if run_id is not None else ["scheduled-sync", str(connection_id)]
    extra = {"FAULTS_LEASE_SECONDS": lease_seconds, "FAULTS_READ_TIMEOUT": read_timeout, **env}
    return _start(name, command, child_env(_named(db_url, name), **extra), log_dir)


def start_drainer(name: str, db_url: str, log_dir: Path, **env: object) -> Worker:
    """A process that processes webhook events until SIGTERM, as the task worker's drains do."""
    command = [sys.executable, "-m", "tests.faults.workers", "drain"]
    return _start(name, command, child_env(db_url, **env), log_dir)


def start_web(name: str, db_url: str, log_dir: Path, port: int, *, workers: int = 2, **env: object) -> Worker:
    """The hub's web app under gunicorn on 127.0.0.1:`port`."""
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--log-level", "warning"]
    return _start(name, command, child_env(db_url, **env), log_dir)


def _named(db_url: str, name: str) -> str:
    """On PostgreSQL the process's connections carry its name (`application_name`), so a test can
    find them in pg_stat_activity and terminate them."""
    if not db_url.startswith("postgres"):
        return db_url
    return f"{db_url}{'&' if '?' in db_url else '?'}application_name={quote(name)}"


# --- Child side -----------------------------------------------------------------------------------


def _configure() -> None:
    import django

    django.setup()
    from datetime import timedelta

    from integrations import http, sync

    if os.environ.get("FAULTS_LEASE_SECONDS"):
        sync.LEASE = timedelta(seconds=float(os.environ["FAULTS_LEASE_SECONDS"]))
    if os.environ.get("FAULTS_READ_TIMEOUT"):
        defaults = http.HttpClient.__init__.__kwdefaults__
        defaults["timeout"] = (defaults["timeout"][0], float(os.environ["FAULTS_READ_TIMEOUT"]))
    if os.environ.get("FAULTS_WEBHOOK_LOCK_SECONDS"):
        from webhooks import processing

        processing.LOCK = timedelta(seconds=float(os.environ["FAULTS_WEBHOOK_LOCK_SECONDS"]))
    if os.environ.get("FAULTS_RATE_LIMIT"):
        _set_rate_budgets(float(os.environ["FAULTS_RATE_LIMIT"]), os.environ.get("FAULTS_RATE_BURST"))
    if os.environ.get("FAULTS_PAUSE_AFTER_PAGES"):
        _pause_after_pages(int(os.environ["FAULTS_PAUSE_AFTER_PAGES"]), float(os.environ["FAULTS_PAUSE_SECONDS"]))


def _set_rate_budgets(rate: float, burst: str | None) -> None:
    """Every platform's request budget (`PlatformSpec.rate_limit`, `rate_burst`) set to these."""
    from dataclasses import replace

    from integrations.platforms import CATALOGUE

    for name, spec in CATALOGUE.items():
        CATALOGUE[name] = replace(spec, rate_limit=rate, rate_burst=int(burst) if burst else spec.rate_burst)


def _pause_after_pages(pages: int, seconds: float) -> None:
    """Hold the sync still for `seconds` once `pages` pages are committed, after everything else
    their commit does: a window in which a test can take the database connection away while the
    worker is outside any transaction."""
    from integrations.sync import sync_committed

    committed = []

    def pause(stream=None, **kwargs) -> None:
        if stream is not None:
            committed.append(stream)
            if len(committed) == pages:
                time.sleep(seconds)

    sync_committed.connect(pause, weak=False, dispatch_uid="faults-pause")


def _drain() -> None:
    """As the task worker runs drains and the minute sweep. A drain that meets the database gone
    fails, as its task would, and the worker takes the next one (django-q2's workers outlive a
    failed task); what the dead drain held is taken again once its lock lapses."""
    from django.db import InterfaceError, OperationalError, connections

    from webhooks import processing

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while not stopping:
        try:
            done, _ = processing.drain(5.0)
            for pk in processing.due():
                processing.process(pk)
                done += 1
        except (OperationalError, InterfaceError) as error:
            print(f"drain failed, the database is gone: {error}", flush=True)
            connections.close_all()
            done = 0
        if not done:
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    _configure()
    command = argv[0]
    if command == "sync-run":
        from integrations.tasks import sync_run

        print(sync_run(int(argv[1])), flush=True)
    elif command == "scheduled-sync":
        from integrations.tasks import scheduled_sync

        print(scheduled_sync(int(argv[1])), flush=True)
    elif command == "drain":
        _drain()
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
