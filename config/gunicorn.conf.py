"""gunicorn settings for the hub's web process, behind a reverse proxy (docs/deployment.md):

    gunicorn -c config/gunicorn.conf.py config.wsgi

Everything can be changed from the environment, like the rest of the hub's settings:

- `GUNICORN_BIND` (default `127.0.0.1:8000`, or `0.0.0.0:$PORT` when a platform sets `PORT`).
- `WEB_CONCURRENCY`: worker processes (default two per core, plus one).
- `GUNICORN_THREADS`: threads per worker (default 1, sync workers; more means gthread).
- `GUNICORN_TIMEOUT`: seconds a request may take before its worker is replaced (default 120,
  enough for the largest CSV export); keep the proxy's read timeout a little longer.
- `FORWARDED_ALLOW_IPS`: the reverse proxy's addresses (default `127.0.0.1,::1`). Requests from
  them are believed about the scheme (`X-Forwarded-Proto`) and the client's address (`X-Real-IP`).
- `PROMETHEUS_MULTIPROC_DIR`: when set, a worker that exits has its metrics files marked dead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import multiprocessing
import os

_port = os.environ.get("PORT", "")
bind = [os.environ.get("GUNICORN_BIND") or (f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 1)
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 120)
# A restart (SIGHUP, a deploy) lets requests under way finish for this long.
graceful_timeout = 30
keepalive = 5
# Workers are replaced after this many requests (with jitter, so not all at once): memory a long
# life accumulates is given back.
max_requests = 2000
max_requests_jitter = 200
# The worker heartbeat file on a memory file system, so a slow disk never looks like a hung worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (a directory gunicorn owns files in)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No control socket (gunicornc): the service manager restarts and reloads by signal, and two
# gunicorns of one user would otherwise share its default path.
control_socket_disable = True


class ClientAddressFromProxy:
    """Behind a reverse proxy, REMOTE_ADDR is the proxy's own address: gunicorn never reads
    X-Forwarded-For. The audit log and the per-address API rate limit read REMOTE_ADDR, so a
    request that comes from a trusted proxy takes the client's address from X-Real-IP, which the
    proxy sets itself (nginx: `proxy_set_header X-Real-IP $remote_addr`), overwriting whatever the
    client sent. From anyone else the header is ignored. A Unix socket has no peer address: only
    local processes allowed by the socket's permissions can connect, so it counts as trusted."""

    def __init__(self, app, trusted: list[str]) -> None:
        self.app = app
        entries = [entry.strip() for entry in trusted if entry.strip()]
        self.trust_all = "*" in entries
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"]

    def trusted(self, peer: str) -> bool:
        if not peer or self.trust_all:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        real = environ.get("HTTP_X_REAL_IP", "").strip()
        if real and self.trusted(environ.get("REMOTE_ADDR", "")):
            with contextlib.suppress(ValueError):  # not an address: the proxy's is kept
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(real))
        return self.app(environ, start_response)


def post_worker_init(worker) -> None:
    # gunicorn has loaded the application by now; the wrapper sees every request first.
    worker.wsgi = ClientAddressFromProxy(worker.wsgi, worker.cfg.forwarded_allow_ips)


def child_exit(server, worker) -> None:
    """prometheus_client's multiprocess mode keeps each process's figures in files: a worker that
    is gone has its live gauges removed (its counters stay in the totals)."""
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
