"""A connector for the two-cluster test: one page with one order per sync, no network. Each read
appends "<connection id> <cluster name> <pid>" to the file named by TWO_CLUSTERS_LOG, the cluster
name coming from TWO_CLUSTERS_NAME (one per qcluster process the test starts), so the test can
tell which cluster ran each sync. A short pause per sync stands in for the platform's answer and
gives both clusters time to take tasks."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from decimal import Decimal

from commerce.records import OrderRecord
from integrations.connectors.base import CheckResult, Connector, Page

PAUSE_SECONDS = 0.2


class CountingConnector(Connector):
    streams = ("orders",)

    def _check(self) -> CheckResult:
        return CheckResult(ok=True, message="Counting connector.")

    def read(self, stream, cursor, *, full=False):
        line = f"{self.connection.pk} {os.environ.get('TWO_CLUSTERS_NAME', '?')} {os.getpid()}\n"
        # One write of a short line to a file opened for appending: lines never interleave.
        with open(os.environ["TWO_CLUSTERS_LOG"], "a", encoding="utf-8") as log:
            log.write(line)
        time.sleep(PAUSE_SECONDS)
        now = datetime.now(UTC)
        order = OrderRecord(
            external_id=f"order-of-{self.connection.pk}",
            number=str(1000 + self.connection.pk),
            currency="USD",
            placed_at=now,
            updated_at=now,
            total=Decimal("10.00"),
        )
        yield Page(records=[order], cursor={"synced_at": now.isoformat()}, total=1)
