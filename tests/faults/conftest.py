"""What the fault tests share: a database other processes can reach, the fake platform, a
WooCommerce connection to it, and the directory worker processes log to."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from integrations.models import Connection

from . import workers
from .fake_platform import FakePlatform
from .workers import database_url


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    """Stop whatever worker process a test started and left running (it failed half-way)."""
    yield
    while workers.started:
        workers.started.pop().stop()


@pytest.fixture
def shared_db(transactional_db, tmp_path: Path) -> Iterator[str]:
    """The test database as a DATABASE_URL worker processes can use, committed to as they are.

    On PostgreSQL that is pytest-django's test database itself. SQLite's test database lives in
    this process's memory, which no other process reaches, so for the test this process moves to
    a file copy of it (SQLite's backup API) and hands that file to the workers; afterwards it goes
    back to the in-memory database, untouched. Request it before any fixture that writes rows."""
    if connection.vendor != "sqlite":
        yield database_url(connection.settings_dict)
        return
    connection.ensure_connection()
    memory, name = connection.connection, connection.settings_dict["NAME"]
    path = tmp_path / "faults.sqlite3"
    with sqlite3.connect(path) as copy:
        memory.backup(copy)
    copy.close()
    connection.settings_dict["NAME"] = str(path)
    connection.connection = None
    try:
        yield database_url(connection.settings_dict)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        connection.connection = memory


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def platform(settings) -> Iterator[FakePlatform]:
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    with FakePlatform(orders=1000) as fake:
        yield fake


@pytest.fixture
def woo(tenant_a, make_connection, platform) -> Connection:
    """A WooCommerce connection to the fake platform, enabled and connected."""
    return make_connection(tenant_a, "woocommerce", credentials=platform.credentials(), status="connected")
