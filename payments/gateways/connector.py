"""The bridge from integrations' connector registry to the payment gateways, so a payment
connection is tested like any other (the admin's Test connection, the API's test action, the
`test_connections` command) without integrations importing payments: PaymentsConfig.ready() puts
this adapter in `integrations.connectors.CONNECTORS` for every gateway. It has no streams: there is
nothing to sync from a gateway, and the scheduler never schedules one."""

from __future__ import annotations

from integrations.connectors.base import CheckResult, Connector

from . import get_gateway


class GatewayConnector(Connector):
    streams: tuple[str, ...] = ()

    def _check(self) -> CheckResult:
        return get_gateway(self.connection).check()
