"""The pusher commerce calls to send changes back to platforms (see commerce.pushes): it finds the
connection within the push's tenant, hands the push to the connection's connector, and turns what
happened into a `PushResult`. Registered when the app loads (IntegrationsConfig.ready)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from commerce.pushes import FulfilmentPush, PushResult, StockPush

from .connectors import CONNECTORS, get_connector
from .connectors.base import Connector
from .errors import IntegrationError
from .models import Connection

logger = logging.getLogger(__name__)


class ConnectorPusher:
    def fulfil(self, push: FulfilmentPush) -> PushResult:
        return self._run(push.tenant_id, push.connection_id, lambda connector: connector.fulfil(push))

    def set_stock(self, push: StockPush) -> PushResult:
        return self._run(push.tenant_id, push.connection_id, lambda connector: connector.set_stock(push))

    def carriers(self, tenant_id: int, connection_id: int) -> list[str]:
        connection = Connection.objects.for_tenant(tenant_id).filter(pk=connection_id).first()
        if connection is None or connection.is_demo or connection.platform not in CONNECTORS:
            return []
        return list(get_connector(connection).carrier_names)

    def _run(self, tenant_id: int, connection_id: int, call: Callable[[Connector], str]) -> PushResult:
        connection = Connection.objects.for_tenant(tenant_id).filter(pk=connection_id).first()
        if connection is None:
            return PushResult(ok=False, message="The connection no longer exists.")
        if not connection.enabled:
            return PushResult(ok=False, message=f"The connection “{connection.name}” is disabled.")
        if connection.is_demo:
            return PushResult(ok=False, message="This is a demo connection: nothing is sent to a platform.")
        try:
            remote_id = call(get_connector(connection))
        except IntegrationError as error:
            logger.warning("Push to connection %s failed: %s", connection.pk, error)
            return PushResult(ok=False, message=str(error), retryable=not error.permanent)
        return PushResult(ok=True, remote_id=str(remote_id or ""))
