"""Settings of the task clusters tests/faults/test_two_clusters.py starts: the project's own, with
Shopify's connector replaced by `two_clusters_connector.CountingConnector`, which needs no network
and writes down which cluster ran each sync. Only those subprocesses use this module."""

from __future__ import annotations

from config.settings import *  # noqa: F403
from integrations.connectors import CONNECTORS

CONNECTORS["shopify"] = "tests.faults.two_clusters_connector.CountingConnector"
