"""Database driver tuning.

Django inserts batches on PostgreSQL as `UNNEST` of arrays, and psycopg escapes every text array
element with a regular-expression substitution per quote character. Our rows carry the platforms'
raw JSON, full of quotes, so that escaping was the largest single cost of a sync page. This dumper
escapes the same way (backslash, then double quote, each preceded by a backslash, as PostgreSQL's
array input syntax requires) with plain byte replacement.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.signals import connection_created


class _ArrayElementEscaper:
    """Stands in for psycopg's `_re_esc` pattern: `sub(template, data)` escapes `\\` and `"`."""

    @staticmethod
    def sub(_template: bytes, data: bytes) -> bytes:
        return bytes(data).replace(b"\\", b"\\\\").replace(b'"', b'\\"')


def _fast_list_dumper() -> type:
    from psycopg.types.array import ListDumper

    class FastListDumper(ListDumper):
        _re_esc = _ArrayElementEscaper()

    return FastListDumper


def register_fast_array_dumper(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        connection.connection.adapters.register_dumper(list, _fast_list_dumper())


def install() -> None:
    connection_created.connect(register_fast_array_dumper, dispatch_uid="hub-fast-array-dumper")
