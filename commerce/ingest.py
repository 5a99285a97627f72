"""Writing normalised records into commerce tables: one bulk statement per batch.

The sync engine, webhooks, uploads and the demo seeder all land rows through here, so a record
from any source ends in the one row keyed by (connection, external id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import models
from django.utils import timezone


def bulk_upsert(
    model: type[models.Model], rows: Sequence[models.Model], update_fields: Iterable[str]
) -> dict[str, int]:
    """Insert or update `rows` (all of one connection) by (connection, external_id) in one
    statement, and return the external id → primary key map for them (one more query), for
    linking child rows."""
    if not rows:
        return {}
    connection_ids = {row.connection_id for row in rows}
    if len(connection_ids) != 1:
        raise ValueError("bulk_upsert takes the rows of one connection at a time.")
    now = timezone.now()
    for row in rows:
        row.updated_at = now
    model.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["connection", "external_id"],
        update_fields=[*update_fields, "updated_at"],
    )
    external_ids = [row.external_id for row in rows]
    return dict(
        model.objects.filter(connection_id=rows[0].connection_id, external_id__in=external_ids).values_list(
            "external_id", "pk"
        )
    )
