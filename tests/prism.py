"""Starting Prism mocks of vendors' API descriptions for contract tests (`tests/contracts/`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import PRISM, _unavailable

STARTUP = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(port: int, process: subprocess.Popen, startup: float = STARTUP) -> None:
    deadline = time.monotonic() + startup
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prism exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for a path no description has)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Prism did not answer on port {port} within {startup:.0f} s")


@contextlib.contextmanager
def prism_mocks(*specs: Path) -> Iterator[list[str]]:
    """A Prism mock (`--errors`: a request the description refuses is answered 4xx) per description;
    yields their base URLs in the same order. Skips (or fails under REQUIRE_SERVICES) without Prism."""
    if not PRISM.exists():
        _unavailable(f"Prism is not installed at {PRISM} (npm ci)")
    missing = [str(spec) for spec in specs if not spec.exists()]
    if missing:
        _unavailable(f"API descriptions missing: {', '.join(missing)}")
    processes: list[subprocess.Popen] = []
    ports = [free_port() for _ in specs]
    try:
        for spec, port in zip(specs, ports, strict=True):
            command = [str(PRISM), "mock", str(spec), "--port", str(port), "--errors"]
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for process, port in zip(processes, ports, strict=True):
            wait_until_answering(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def serve(route: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A threaded HTTP server on loopback handing every request, whatever its method, to `route`
    (a test's router in front of Prism); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route(self)

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
