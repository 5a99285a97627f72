"""A sync that lost its database waits (bounded) for it to answer again before recording the
failure (integrations.sync._await_database): a restart takes seconds, and a failure recorded at
once would only meet the database still down."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from integrations import sync

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def down_for(monkeypatch):
    """The database refuses the next `n` connection attempts; returns the sleeps taken."""
    slept: list[float] = []
    monkeypatch.setattr(sync.time, "sleep", slept.append)

    def refuse(n: int) -> list[float]:
        real = connection.ensure_connection
        left = [n]

        def ensure_connection():
            if left[0] > 0:
                left[0] -= 1
                raise OperationalError("connection refused: the database system is starting up")
            return real()

        monkeypatch.setattr(connection, "ensure_connection", ensure_connection)
        return slept

    return refuse


def test_it_waits_until_the_database_answers_again(down_for):
    slept = down_for(3)
    assert sync._await_database(seconds=60) is True
    assert slept == [1, 1, 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_it_gives_up_after_its_time(down_for, monkeypatch):
    slept = down_for(10_000)
    clock = iter(range(0, 10_000, 20))
    monkeypatch.setattr(sync.time, "monotonic", lambda: next(clock))
    assert sync._await_database(seconds=60) is False
    assert len(slept) == 2  # at 20 s and 40 s; at 60 s it stops
