"""A webhook receiver on 127.0.0.1, for outbound hook tests: it records every request and answers
with what the test planned.

    with HookReceiver().running() as receiver:
        receiver.plan(500, 500)                       # the next two requests get 500, then 200s
        receiver.plan((302, "", {"Location": other}))  # status, body, headers
        receiver.delay = 0.5                          # answer after half a second
        ... receiver.url ... receiver.requests        # [Received(path, headers, body)]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class HookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[tuple[int, str, dict[str, str]]] = []
        self.default: tuple[int, str, dict[str, str]] = (200, '{"ok": true}', {})
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/zap"

    def plan(self, *answers) -> None:
        for answer in answers:
            self.answers.append((answer, "", {}) if isinstance(answer, int) else answer)

    def start(self) -> HookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, text, headers = receiver.answers.pop(0) if receiver.answers else receiver.default
                if receiver.delay:
                    time.sleep(receiver.delay)
                payload = text.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @contextmanager
    def running(self) -> Iterator[HookReceiver]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


PUBLIC_IP = "93.184.215.14"  # a public address: names mapped to it pass the subscribe-time check


def fake_dns(monkeypatch, table: dict[str, str] | None = None) -> dict[str, str]:
    """Resolve the names in the returned table (name → IPv4) without DNS; `*.invalid` names do not
    resolve; anything else resolves as usual. Tests add names to the table as they go."""
    import socket

    table = dict(table or {})
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[name], int(port or 0)))]
        if name and name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def run_queued_tasks() -> list[str]:
    """Run what django-q2 has queued (ORM broker), in order, as a worker would; returns results."""
    from django.utils.module_loading import import_string
    from django_q.models import OrmQ

    results = []
    while True:
        queued = list(OrmQ.objects.order_by("id"))
        if not queued:
            return results
        for row in queued:
            task = row.task
            row.delete()
            results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
