"""Several task clusters on one broker (docs/deployment.md, "Several hosts"): two real
`manage.py qcluster` processes, as two hosts would run them, share the test's PostgreSQL database.
Fifty connections' scheduled syncs fall due at once; each runs exactly once in its period, and
both clusters take a share.

django-q2's scheduler runs in every cluster about every 30 seconds and locks the due schedules
with SELECT … FOR UPDATE while it queues their tasks and moves them to their next run
(django_q/scheduler.py), so this test takes about 40 seconds: the clusters start, the first
scheduler pass comes 30 seconds later, then the syncs run. It needs PostgreSQL (SQLite ignores
FOR UPDATE, and the subprocesses could not see its in-memory test database)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from commerce.models import Order
from integrations.models import Connection, ConnectionStatus, SyncFrequency, SyncRun, SyncStatus, SyncTrigger
from integrations.tasks import schedule_name

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 50
SYNC_FUNC = "integrations.tasks.scheduled_sync"
# From the clusters' start: their first scheduler pass comes after about 30 s.
DEADLINE_SECONDS = 75


def committed_database_url() -> str:
    """The database this test committed its rows to (pytest-django's test database)."""
    db = connection.settings_dict
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}{port}/{quote(db['NAME'], safe='')}"


def start_cluster(name: str, log: Path, output: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.two_clusters_settings",
        "DATABASE_URL": committed_database_url(),
        "TWO_CLUSTERS_NAME": name,
        "TWO_CLUSTERS_LOG": str(log),
        "Q_WORKERS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    with open(output, "wb") as out:
        # Its own session, so the whole cluster (sentinel, pusher, monitor, workers) can be killed.
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_cluster(process: subprocess.Popen) -> None:
    """SIGTERM to the cluster's main process (it stops its own children), then SIGKILL to
    whatever is left of its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def queued_syncs() -> list[OrmQ]:
    return [task for task in OrmQ.objects.all() if task.func() == SYNC_FUNC]


def test_two_clusters_run_each_scheduled_sync_once_and_share_the_work(make_tenant, tmp_path):
    tenant = make_tenant("Two clusters")
    connections = [
        Connection.objects.create(
            tenant=tenant,
            platform="shopify",
            name=f"shop {n}",
            status=ConnectionStatus.CONNECTED,
            sync_frequency=SyncFrequency.EVERY_15_MIN,
        )
        for n in range(CONNECTIONS)
    ]
    names = [schedule_name(c) for c in connections]
    # Saving a connection schedules it (integrations.signals): make every schedule due now.
    assert Schedule.objects.filter(name__in=names).update(next_run=timezone.now() - timedelta(seconds=1)) == CONNECTIONS
    log = tmp_path / "reads.log"
    log.touch()
    started = timezone.now()
    clusters = {name: start_cluster(name, log, tmp_path / f"cluster-{name}.log") for name in ("a", "b")}
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            finished = SyncRun.objects.filter(
                trigger=SyncTrigger.SCHEDULE, status__in=[SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.SKIPPED]
            ).count()
            if finished >= CONNECTIONS and not queued_syncs():
                break
            exited = {name: p.returncode for name, p in clusters.items() if p.poll() is not None}
            if exited or time.monotonic() > deadline:
                outputs = "\n".join(
                    f"--- cluster {name} ---\n" + (tmp_path / f"cluster-{name}.log").read_text(errors="replace")[-3000:]
                    for name in clusters
                )
                pytest.fail(f"{finished} of {CONNECTIONS} syncs finished; exited clusters: {exited}\n{outputs}")
            time.sleep(0.5)
        # Room for a second task from the same schedule to show up, had one been queued.
        time.sleep(2)
    finally:
        for process in clusters.values():
            stop_cluster(process)

    runs = SyncRun.objects.filter(trigger=SyncTrigger.SCHEDULE)
    assert Counter(runs.values_list("connection_id", flat=True)) == {c.pk: 1 for c in connections}
    assert set(runs.values_list("status", flat=True)) == {SyncStatus.SUCCEEDED}
    # The schedulers of both clusters queued one task per schedule between them (a task's group is
    # its schedule's name), and each schedule moved on by one period.
    tasks = Counter(Task.objects.filter(func=SYNC_FUNC).values_list("group", flat=True))
    assert tasks == dict.fromkeys(names, 1)
    assert not queued_syncs()
    next_runs = Schedule.objects.filter(name__in=names).values_list("next_run", flat=True)
    assert all(next_run > started + timedelta(minutes=14) for next_run in next_runs)
    # Every connection was read once, and both clusters did some of the reading.
    reads = [line.split() for line in log.read_text().splitlines()]
    assert Counter(int(connection_id) for connection_id, _, _ in reads) == {c.pk: 1 for c in connections}
    shares = Counter(cluster for _, cluster, _ in reads)
    assert set(shares) == {"a", "b"}, f"one cluster did everything: {shares}"
    assert Order.objects.filter(tenant=tenant).count() == CONNECTIONS
