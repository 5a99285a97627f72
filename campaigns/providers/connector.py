"""The bridge from integrations' connector registry to the messaging providers, so a messaging
connection is tested like any other (the admin's Test connection, the API's test action, the
`test_connections` command) without integrations importing campaigns: CampaignsConfig.ready() puts
this adapter in `integrations.connectors.CONNECTORS` for every provider. It has no streams: there is
nothing to sync from a provider, and the scheduler never schedules one."""

from __future__ import annotations

from integrations.connectors.base import CheckResult, Connector
from integrations.crm import PushOutcome

from . import get_provider


class ProviderConnector(Connector):
    streams: tuple[str, ...] = ()

    def _check(self) -> CheckResult:
        return get_provider(self.connection).check()


class MailchimpConnector(ProviderConnector):
    """A Mailchimp connection syncs its audience like a CRM push (integrations.crm): the hub's
    customers who accept marketing and are not suppressed go in as members, with their names;
    whoever unsubscribed in Mailchimp is suppressed in the hub first. Nobody who unsubscribed there
    is ever re-subscribed (the provider's `sync_audience`)."""

    push_streams = ("audience",)
    push_batch_size = 500  # Mailchimp's batch limit

    def push(self, stream: str, contacts: list) -> PushOutcome:
        from campaigns import consent
        from campaigns.models import Channel, SuppressionReason

        from .mailchimp import AudienceMember

        provider = get_provider(self.connection)
        tenant_id = self.connection.tenant_id
        if not getattr(self, "_unsubscribes_read", False):
            for email, _ in provider.unsubscribed_since(None):
                consent.suppress(tenant_id, Channel.EMAIL, email, SuppressionReason.PROVIDER, detail="mailchimp")
            self._unsubscribes_read = True
        blocked = consent.suppressed(tenant_id, Channel.EMAIL, [c.email for c in contacts])
        members = [
            # Only the audience's standard name fields: a merge field the audience lacks is refused.
            AudienceMember(email=c.email, first_name=c.first_name, last_name=c.last_name)
            for c in contacts
            if c.accepts_marketing and c.email not in blocked
        ]
        result = provider.sync_audience(members)
        return PushOutcome(
            created=result.created,
            updated=result.updated,
            unchanged=len(contacts) - len(members) + result.skipped_unsubscribed,
            failed=list(result.failed),
        )
