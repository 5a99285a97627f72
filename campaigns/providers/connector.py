"""The bridge from integrations' connector registry to the messaging providers, so a messaging
connection is tested like any other (the admin's Test connection, the API's test action, the
`test_connections` command) without integrations importing campaigns: CampaignsConfig.ready() puts
this adapter in `integrations.connectors.CONNECTORS` for every provider. It has no streams: there is
nothing to sync from a provider, and the scheduler never schedules one."""

from __future__ import annotations

from integrations.connectors.base import CheckResult, Connector

from . import get_provider


class ProviderConnector(Connector):
    streams: tuple[str, ...] = ()

    def _check(self) -> CheckResult:
        return get_provider(self.connection).check()
