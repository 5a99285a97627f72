"""Re-encrypt every stored secret under the newest key in FERNET_KEYS.

Rotation: put a new key first in FERNET_KEYS (keep the old ones after it), deploy, run this
command, then drop the old keys. Rows already under the newest key are left alone, so the command
can be re-run safely; it reports how many rows it rewrote.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from tenants import audit
from tenants.fields import encrypted_fields, reset_key_caches

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the newest FERNET_KEYS key and print how many rows changed."

    def handle(self, *args, **options) -> None:
        reset_key_caches()
        fields = encrypted_fields()
        if not fields:
            raise CommandError("No encrypted fields are installed.")
        total_touched = total_seen = 0
        for model, field in fields:
            touched, seen = self.rotate(model, field)
            total_touched += touched
            total_seen += seen
            self.stdout.write(f"{model._meta.label}.{field.name}: {touched} of {seen} rows re-encrypted")
        audit.record("credentials.rotated", target=f"{total_touched} rows", rows=total_touched)
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {total_touched} of {total_seen} rows under the newest key.")
        )

    def rotate(self, model, field) -> tuple[int, int]:
        newest = Fernet(field.fernet_keys[0])
        multi = MultiFernet([Fernet(key) for key in field.fernet_keys])
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(field.column)
        pk = connection.ops.quote_name(model._meta.pk.column)
        touched = seen = 0
        last_pk = None
        while True:
            # Raw SQL on purpose: the ORM would decrypt the value, and we need the token itself.
            with connection.cursor() as cursor:
                where = f"WHERE {column} IS NOT NULL" + (f" AND {pk} > %s" if last_pk is not None else "")
                params = [last_pk] if last_pk is not None else []
                cursor.execute(f"SELECT {pk}, {column} FROM {table} {where} ORDER BY {pk} LIMIT {BATCH}", params)
                rows = cursor.fetchall()
            if not rows:
                return touched, seen
            updates = []
            for row_pk, token in rows:
                seen += 1
                token = bytes(token)
                try:
                    newest.decrypt(token)
                    continue
                except InvalidToken:
                    pass
                try:
                    updates.append((connection.Database.Binary(multi.rotate(token)), row_pk))
                except InvalidToken as exc:
                    raise CommandError(
                        f"{model._meta.label} #{row_pk}: no key in FERNET_KEYS decrypts this value; "
                        "add the key it was written with and run again."
                    ) from exc
            if updates:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", updates)
                touched += len(updates)
            last_pk = rows[-1][0]
