"""The Mailchimp provider over real HTTP against a local fake of the Marketing API
(`fake_mailchimp.py`): the connection test, the audience sync that never re-subscribes anyone, the
suppression list, a campaign to exactly the given addresses, its report, Mailchimp's refusals, and
a send action never sent twice."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from campaigns.providers import get_provider
from campaigns.providers.base import EmailMessage
from campaigns.providers.mailchimp import (
    AudienceMember,
    CampaignSend,
    MailchimpProvider,
    NotInAudience,
    SendUnconfirmed,
)
from integrations import services as integration_services
from integrations.errors import AuthError, ConfigurationError, RateLimited, Unavailable
from integrations.http import HttpClient
from integrations.models import ConnectionStatus

from .fake_mailchimp import API_KEY, AUDIENCE, FakeMailchimp

pytestmark = pytest.mark.django_db

MEMBERS = rf"/lists/{AUDIENCE}/members"
BATCH = rf"/lists/{AUDIENCE}"
SEND = r"/campaigns/\w+/actions/send"


@pytest.fixture
def fake():
    return FakeMailchimp()


@pytest.fixture
def base_url(fake):
    with fake.running() as url:
        yield url


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connect(make_connection, tenant_a, base_url, sleeps):
    def connect(**credentials: str) -> MailchimpProvider:
        credentials = {"api_key": API_KEY, "audience_id": AUDIENCE, **credentials}
        connection = make_connection(tenant_a, "mailchimp", credentials=credentials, base_url=base_url)
        client = HttpClient(allow_private=True, timeout=(2.0, 5.0), sleep=sleeps.append)
        return get_provider(connection, client=client)

    return connect


@pytest.fixture
def provider(connect) -> MailchimpProvider:
    return connect()


def campaign(*emails: str, **kwargs) -> CampaignSend:
    defaults = {
        "subject": "Spring sale: 20% off",
        "html": "<p>Hello, our spring sale starts today.</p>",
        "text": "Hello, our spring sale starts today.",
        "emails": emails,
        "title": "Spring sale 2025",
    }
    return CampaignSend(**{**defaults, **kwargs})


# --- The connection ---------------------------------------------------------------------------------


def test_the_registry_builds_a_mailchimp_provider_for_email(provider):
    assert isinstance(provider, MailchimpProvider)
    assert provider.channel == "email"


def test_the_data_center_comes_from_the_key_suffix(make_connection, tenant_a, monkeypatch):
    connection = make_connection(tenant_a, "mailchimp", credentials={"api_key": "abc123-us21"})
    provider = get_provider(connection, client=HttpClient())
    asked = []

    def request(method, url, **kwargs):
        asked.append((method, url, kwargs["auth"]))
        raise Unavailable("not here")

    monkeypatch.setattr(provider.client, "request", request)
    provider.check()
    assert asked == [("GET", "https://us21.api.mailchimp.com/3.0/ping", ("anystring", "abc123-us21"))]


def test_a_key_without_a_data_center_is_a_configuration_error(connect, fake):
    result = connect(api_key="0123456789abcdef0123456789abcdef").check()
    assert (result.ok, result.error_code) == (False, "configuration")
    assert "data center" in result.message
    assert not fake.received


def test_the_connection_test_reads_the_key_and_the_audience(provider, fake):
    fake.add_member("ada@example.net")
    result = provider.check()
    assert result.ok, result.message
    assert result.message == "Connected to Mailchimp: audience “Alpha Goods customers”, 1 subscribed."
    assert [(c.method, c.path) for c in fake.received] == [("GET", "/ping"), ("GET", f"/lists/{AUDIENCE}")]


def test_a_wrong_key_fails_the_test_with_mailchimps_words(connect, fake, sleeps):
    result = connect(api_key="ffffffffffffffffffffffffffffffff-us21").check()
    assert (result.ok, result.error_code) == (False, "auth")
    assert "API Key Invalid: Your API key may be invalid" in result.message
    assert "API keys" in result.hint
    assert (len(fake.received), sleeps) == (1, [])


def test_an_unknown_audience_fails_the_test_naming_it(connect):
    result = connect(audience_id="nosuchlist").check()
    assert (result.ok, result.error_code) == (False, "configuration")
    assert result.message == "Mailchimp has no audience “nosuchlist” for this API key."
    assert "Audience name and defaults" in result.hint


def test_without_an_audience_the_test_passes_with_a_warning(connect, fake):
    result = connect(audience_id="").check()
    assert result.ok
    assert result.warnings[0].startswith("No audience ID is set")
    assert [c.path for c in fake.received] == ["/ping"]


def test_the_admin_test_connection_goes_through_the_provider(make_connection, tenant_a, base_url, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True
    credentials = {"api_key": API_KEY, "audience_id": AUDIENCE}
    good = make_connection(tenant_a, "mailchimp", "Alpha news", credentials=credentials, base_url=base_url)
    bad = make_connection(
        tenant_a, "mailchimp", "Old key", credentials={**credentials, "api_key": "0000-us21"}, base_url=base_url
    )
    assert integration_services.test_connection(good).ok
    assert not integration_services.test_connection(bad).ok
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == ConnectionStatus.CONNECTED
    assert bad.status == ConnectionStatus.NEEDS_REAUTH
    assert "API Key Invalid" in bad.last_error


def test_mailchimp_sends_no_single_transactional_email(provider, fake):
    with pytest.raises(ConfigurationError, match="cannot send a single transactional email"):
        provider.send_email(EmailMessage(to="ada@example.net", subject="Hi", text="Hello"))
    assert not fake.received


# --- The audience -----------------------------------------------------------------------------------


def test_the_sync_creates_new_members_and_updates_existing_ones(provider, fake):
    fake.add_member("ada@example.net", FNAME="Ada")
    result = provider.sync_audience(
        [
            AudienceMember("Ada@Example.net", last_name="Lovelace", merge_fields={"ORDERS": "3"}),
            AudienceMember("grace@example.net", "Grace", "Hopper", phone="+15005550006", tags=("vip",)),
        ]
    )
    assert (result.created, result.updated, result.skipped_unsubscribed, result.failed) == (1, 1, 0, [])
    ada, grace = fake.member("ada@example.net"), fake.member("grace@example.net")
    assert ada["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace", "PHONE": "", "ORDERS": "3"}
    assert (grace["status"], grace["merge_fields"]["PHONE"], grace["tags"][0]["name"]) == (
        "subscribed",
        "+15005550006",
        "vip",
    )
    [batch] = fake.calls("POST", BATCH)
    assert batch.body["update_existing"] is True


def test_more_than_500_members_go_in_several_batches(provider, fake):
    members = [AudienceMember(f"customer{n}@example.net") for n in range(1_201)]
    result = provider.sync_audience(members)
    assert (result.created, result.failed) == (1_201, [])
    assert [len(call.body["members"]) for call in fake.calls("POST", BATCH)] == [500, 500, 201]


def test_an_unsubscribed_or_cleaned_member_is_never_resubscribed(provider, fake):
    fake.add_member("left@example.net", "unsubscribed")
    fake.add_member("bounced@example.net", "cleaned")
    fake.add_member("stays@example.net")
    result = provider.sync_audience(
        [AudienceMember(email, "Name") for email in ("LEFT@example.net", "bounced@example.net", "stays@example.net")]
    )
    assert (result.created, result.updated, result.skipped_unsubscribed) == (0, 1, 2)
    assert fake.member("left@example.net")["status"] == "unsubscribed"
    assert fake.member("bounced@example.net")["status"] == "cleaned"
    sent = [m["email_address"] for call in fake.calls("POST", BATCH) for m in call.body["members"]]
    assert sent == ["stays@example.net"]


def test_a_pending_or_transactional_member_keeps_its_status(provider, fake):
    fake.add_member("pending@example.net", "pending")
    fake.add_member("receipts@example.net", "transactional")
    result = provider.sync_audience(
        [AudienceMember("pending@example.net", "P"), AudienceMember("receipts@example.net")]
    )
    assert (result.updated, result.skipped_unsubscribed) == (2, 0)
    assert fake.member("pending@example.net")["status"] == "pending"
    assert fake.member("pending@example.net")["merge_fields"]["FNAME"] == "P"
    assert fake.member("receipts@example.net")["status"] == "transactional"


def test_the_statuses_are_read_a_page_of_1000_at_a_time(provider, fake):
    for n in range(1_500):
        fake.add_member(f"gone{n}@example.net", "unsubscribed")
    result = provider.sync_audience([AudienceMember("gone1499@example.net"), AudienceMember("new@example.net")])
    assert (result.created, result.skipped_unsubscribed) == (1, 1)
    pages = [(c.query["status"], c.query["offset"]) for c in fake.calls("GET", MEMBERS)]
    assert pages[:2] == [("unsubscribed", "0"), ("unsubscribed", "1000")]


def test_members_mailchimp_refuses_are_reported_with_its_reason(provider, fake):
    result = provider.sync_audience([AudienceMember("not-an-address"), AudienceMember("ok@example.net")])
    assert (result.created, result.failed) == (
        1,
        [("not-an-address", "not-an-address looks fake or invalid, please enter a real email.")],
    )


def test_an_empty_sync_asks_mailchimp_nothing(provider, fake):
    assert provider.sync_audience([]) == provider.sync_audience([AudienceMember("  ")])
    assert not fake.received


def test_a_sync_to_an_unknown_audience_names_it(connect):
    with pytest.raises(ConfigurationError, match="no audience “gone123”"):
        connect(audience_id="gone123").sync_audience([AudienceMember("ada@example.net")])


# --- Suppressions -----------------------------------------------------------------------------------


def test_unsubscribes_and_cleaned_addresses_are_listed_across_pages_with_their_time(provider, fake):
    for n in range(1_001):
        fake.add_member(f"u{n}@example.net", "unsubscribed", last_changed=f"2025-03-0{1 + n % 5}T10:00:00+00:00")
    fake.add_member("old@example.net", "unsubscribed", last_changed="2024-12-31T10:00:00+00:00")
    fake.add_member("bounced@example.net", "cleaned", last_changed="2025-03-02T08:30:00+00:00")
    fake.add_member("still@example.net")
    found = provider.unsubscribed_since(datetime(2025, 1, 1, tzinfo=UTC))
    assert len(found) == 1_002
    assert ("bounced@example.net", datetime(2025, 3, 2, 8, 30, tzinfo=UTC)) in found
    assert found[0][1] == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert "old@example.net" not in {email for email, _ in found}
    asked = [(c.query["status"], c.query["offset"]) for c in fake.calls("GET", MEMBERS)]
    assert asked == [("unsubscribed", "0"), ("unsubscribed", "1000"), ("cleaned", "0")]
    assert fake.calls("GET", MEMBERS)[0].query["unsubscribed_since"] == "2025-01-01T00:00:00+00:00"
    assert fake.calls("GET", MEMBERS)[2].query["since_last_changed"] == "2025-01-01T00:00:00+00:00"


def test_without_a_date_every_unsubscribe_is_listed(provider, fake):
    fake.add_member("old@example.net", "unsubscribed", last_changed="2019-06-01T00:00:00+00:00")
    assert provider.unsubscribed_since(None) == [("old@example.net", datetime(2019, 6, 1, tzinfo=UTC))]


# --- Campaigns --------------------------------------------------------------------------------------


def test_a_campaign_goes_to_exactly_the_given_addresses(provider, fake):
    for email in ("ada@example.net", "grace@example.net", "not-chosen@example.net"):
        fake.add_member(email)
    campaign_id = provider.send_campaign(campaign("ada@example.net", "Grace@Example.net"))
    assert fake.sent[campaign_id] == ["ada@example.net", "grace@example.net"]
    [segment] = fake.calls("POST", rf"/lists/{AUDIENCE}/segments")
    [added] = fake.calls("POST", rf"/lists/{AUDIENCE}/segments/\d+")
    assert segment.body["static_segment"] == [] and segment.body["name"].startswith("Spring sale 2025 · hub ")
    assert added.body == {"members_to_add": ["ada@example.net", "Grace@Example.net"]}
    sent = fake.campaigns[campaign_id]
    assert sent["type"] == "regular"
    segment_id = int(added.path.rsplit("/", 1)[1])
    assert sent["recipients"] == {"list_id": AUDIENCE, "segment_opts": {"saved_segment_id": segment_id}}
    assert sent["settings"] == {
        "subject_line": "Spring sale: 20% off",
        "title": "Spring sale 2025",
        "from_name": "Alpha Goods",
        "reply_to": "news@alpha.example",
    }
    assert sent["content"] == {
        "html": "<p>Hello, our spring sale starts today.</p>",
        "plain_text": "Hello, our spring sale starts today.",
    }
    assert [c.method for c in fake.received if c.path.startswith("/campaigns")] == ["POST", "PUT", "POST"]


def test_the_sender_given_replaces_the_audiences_default(provider, fake):
    fake.add_member("ada@example.net")
    campaign_id = provider.send_campaign(
        campaign("ada@example.net", from_name="Alpha Deals", reply_to="d@alpha.example")
    )
    settings = fake.campaigns[campaign_id]["settings"]
    assert (settings["from_name"], settings["reply_to"]) == ("Alpha Deals", "d@alpha.example")


def test_more_than_500_recipients_fill_the_segment_in_several_calls(provider, fake):
    emails = [f"c{n}@example.net" for n in range(1_100)]
    for email in emails:
        fake.add_member(email)
    campaign_id = provider.send_campaign(campaign(*emails))
    assert len(fake.sent[campaign_id]) == 1_100
    adds = fake.calls("POST", rf"/lists/{AUDIENCE}/segments/\d+")
    assert [len(call.body["members_to_add"]) for call in adds] == [500, 500, 100]


def test_recipients_not_in_the_audience_stop_the_campaign_before_it_exists(provider, fake):
    fake.add_member("ada@example.net")
    with pytest.raises(NotInAudience) as caught:
        provider.send_campaign(campaign("ada@example.net", "stranger@example.net"))
    assert caught.value.emails == ["stranger@example.net"]
    assert caught.value.message == "1 of the 2 recipients are not in the Mailchimp audience: nothing was sent."
    assert not fake.campaigns and not fake.lists[AUDIENCE]["segments"]
    assert len(fake.calls("DELETE", rf"/lists/{AUDIENCE}/segments/\d+")) == 1


def test_a_report_is_mapped_to_the_hubs_counts(provider, fake):
    fake.reports["42694e9e57"] = {
        "id": "42694e9e57",
        "campaign_title": "Spring sale 2025",
        "type": "regular",
        "emails_sent": 200,
        "abuse_reports": 1,
        "unsubscribed": 3,
        "bounces": {"hard_bounces": 4, "soft_bounces": 6, "syntax_errors": 1},
        "opens": {"opens_total": 180, "unique_opens": 120, "open_rate": 0.63},
        "clicks": {"clicks_total": 90, "unique_clicks": 50, "unique_subscriber_clicks": 40, "click_rate": 0.21},
    }
    assert provider.campaign_report("42694e9e57") == {
        "sent": 200,
        "delivered": 190,
        "opened": 120,
        "clicked": 40,
        "bounced": 10,
        "unsubscribed": 3,
        "abuse_reports": 1,
    }


def test_the_report_of_a_sent_campaign_counts_its_recipients(provider, fake):
    fake.add_member("ada@example.net")
    report = provider.campaign_report(provider.send_campaign(campaign("ada@example.net")))
    assert (report["sent"], report["delivered"], report["opened"]) == (1, 1, 0)


# --- Mailchimp's refusals ---------------------------------------------------------------------------


def test_a_429_is_retried_after_mailchimps_retry_after(provider, fake, sleeps):
    fake.add_member("left@example.net", "unsubscribed")
    fake.answer("GET", MEMBERS, 429, headers={"Retry-After": "3"})
    assert [email for email, _ in provider.unsubscribed_since(None)] == ["left@example.net"]
    assert sleeps == [3.0]


def test_a_429_that_lasts_is_rate_limited(provider, fake, sleeps):
    fake.answer("POST", BATCH, 429, times=10, headers={"Retry-After": "1"})
    with pytest.raises(RateLimited, match="10 simultaneous connections") as caught:
        provider.sync_audience([AudienceMember("ada@example.net")])
    assert "10 simultaneous connections" in caught.value.hint
    assert (len(fake.calls("POST", BATCH)), len(sleeps)) == (5, 4)


def test_a_500_is_retried_then_unavailable(provider, fake):
    fake.answer("GET", r"/reports/\w+", 500, times=10)
    with pytest.raises(Unavailable, match="Internal Server Error"):
        provider.campaign_report("42694e9e57")
    assert len(fake.calls("GET", r"/reports/\w+")) == 5


def test_a_500_that_passes_is_retried_transparently(provider, fake):
    fake.answer("POST", BATCH, 500)
    assert provider.sync_audience([AudienceMember("ada@example.net")]).created == 1
    assert len(fake.calls("POST", BATCH)) == 2


def test_a_send_action_that_times_out_is_not_resent(fake, make_connection, tenant_a, base_url, sleeps):
    connection = make_connection(
        tenant_a, "mailchimp", credentials={"api_key": API_KEY, "audience_id": AUDIENCE}, base_url=base_url
    )
    provider = get_provider(connection, client=HttpClient(allow_private=True, timeout=(2.0, 0.5), sleep=sleeps.append))
    fake.add_member("ada@example.net")
    fake.answer("POST", SEND, delay=1.5)
    with pytest.raises(SendUnconfirmed) as caught:
        provider.send_campaign(campaign("ada@example.net"))
    error = caught.value
    assert error.code == "unavailable" and error.campaign_id in fake.campaigns
    assert "may have gone out" in error.message and "before sending it again" in error.hint
    time.sleep(1.3)  # the fake finishes the send the client stopped waiting for
    assert len(fake.calls("POST", SEND)) == 1 and sleeps == []
    assert fake.sent[error.campaign_id] == ["ada@example.net"]


def test_a_5xx_on_the_send_action_is_not_resent(provider, fake, sleeps):
    fake.add_member("ada@example.net")
    fake.answer("POST", SEND, 503, times=5)
    with pytest.raises(SendUnconfirmed):
        provider.send_campaign(campaign("ada@example.net"))
    assert len(fake.calls("POST", SEND)) == 1 and sleeps == []


def test_a_wrong_key_is_an_auth_error_everywhere(connect):
    with pytest.raises(AuthError, match="API Key Invalid"):
        connect(api_key="ffff-us21").unsubscribed_since(None)


def test_no_address_or_key_is_logged(provider, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.add_member("ada@example.net")
    fake.answer("POST", BATCH, 500)
    fake.answer("GET", MEMBERS, 429, headers={"Retry-After": "0"})
    provider.sync_audience([AudienceMember("ada@example.net", "Ada"), AudienceMember("not-an-address")])
    provider.send_campaign(campaign("ada@example.net"))
    provider.unsubscribed_since(None)
    assert caplog.text
    for secret in ("ada@example.net", "not-an-address", API_KEY, "spring sale starts"):
        assert secret not in caplog.text
