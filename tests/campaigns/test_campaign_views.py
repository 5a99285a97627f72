"""The campaign pages of the client dashboard and of the SuperAdmin: lists with their figures,
the draft editor with its template checks and preview, schedule / pause / resume / cancel through
the page, the segment editor and its live count, the suppression list; viewers only look, another
tenant's campaign or segment is a 404."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import sending
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    Recipient,
    RecipientState,
    Segment,
    Suppression,
    SuppressionReason,
)
from campaigns.views import figures_by_campaign
from commerce.models import Customer
from tenants.models import AuditLog, Role

pytestmark = pytest.mark.django_db

URL = "/dashboard/campaigns/"
US_ONLY = {"match": "all", "rules": [{"field": "country", "op": "in", "value": ["US"]}]}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def public_address(settings):
    # sending.check refuses email campaigns without the hub's public address (the unsubscribe link).
    settings.PUBLIC_BASE_URL = "https://hub.example.com"


@pytest.fixture(autouse=True)
def queue(monkeypatch):
    """Campaigns queued for sending, instead of the task cluster."""
    queued: list[int] = []
    monkeypatch.setattr(sending, "_enqueue", queued.append)
    return queued


@pytest.fixture
def owner(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a))
    return client


@pytest.fixture
def viewer(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.VIEWER))
    return client


@pytest.fixture
def people(tenant_a, tenant_b, make_connection):
    """Alpha's customers: two in the US (one with a phone number), one in Germany; and Beta's
    customer in the US, who must never be counted for Alpha."""
    shop = make_connection(tenant_a, "shopify")
    for n, (country, phone) in enumerate([("US", "+14155550100"), ("US", ""), ("DE", "")]):
        Customer.objects.create(
            tenant=tenant_a,
            connection=shop,
            external_id=f"c{n}",
            email=f"p{n}@example.com",
            country=country,
            phone=phone,
        )
    other = make_connection(tenant_b, "shopify")
    Customer.objects.create(tenant=tenant_b, connection=other, external_id="b0", email="b@example.com", country="US")
    return shop


@pytest.fixture
def segment(tenant_a):
    return Segment.objects.create(tenant=tenant_a, name="US", rules=US_ONLY)


@pytest.fixture
def draft(tenant_a, sendgrid_a, segment):
    return Campaign.objects.create(
        tenant=tenant_a,
        connection=sendgrid_a,
        segment=segment,
        name="Spring sale",
        channel="email",
        subject="Hello {{ first_name }}",
        html="<p>Hi {{ first_name }}, use {{ discount_code }}</p>",
        discount_code="SPRING10",
    )


@pytest.fixture
def theirs(tenant_b, make_connection, office):
    connection = make_connection(tenant_b, "sendgrid", "Beta email", credentials={"api_key": "SG.b"})
    segment = Segment.objects.create(tenant=tenant_b, name="Theirs")
    campaign = Campaign.objects.create(
        tenant=tenant_b, connection=connection, segment=segment, name="Their sale", channel="email", subject="S"
    )
    return campaign


def content(response) -> str:
    return response.content.decode()


def field_block(page: str, name: str) -> str:
    start = page.index(f'data-field="{name}"')
    return page[start : page.index("</div>", start)]


def campaign_form(connection, segment, **overrides) -> dict:
    data = {
        "name": "Launch",
        "channel": "email",
        "connection": str(connection.pk),
        "segment": str(segment.pk),
        "subject": "Hi {{ first_name }}",
        "subject_b": "",
        "ab_share": "0",
        "ab_wait_minutes": "240",
        "body": "",
        "html": "<p>New things for {{ first_name }}</p>",
        "discount_code": "NEW5",
    }
    data.update(overrides)
    return data


# --- Pages and roles -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_every_page_renders_for_an_owner_and_a_viewer(client, make_member, tenant_a, role, draft, segment, people):
    client.force_login(make_member(tenant_a, role))
    Suppression.objects.create(tenant=tenant_a, channel="email", address="gone@example.com", reason="manual")
    pages = [
        URL,
        f"{URL}new/",
        f"{URL}{draft.pk}/",
        f"{URL}{draft.pk}/edit/",
        f"{URL}segments/",
        f"{URL}segments/new/",
        f"{URL}segments/{segment.pk}/",
        f"{URL}suppressions/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    listing = content(client.get(URL))
    assert 'href="/dashboard/campaigns/"' in listing  # in the navigation
    assert "Spring sale" in listing
    writes = ("New campaign", 'id="schedule-button"', 'id="save-segment"')
    pages_text = (
        listing + content(client.get(f"{URL}{draft.pk}/")) + content(client.get(f"{URL}segments/{segment.pk}/"))
    )
    assert all(w in pages_text for w in writes) == (role == Role.OWNER)
    assert "gone@example.com" in content(client.get(f"{URL}suppressions/"))


def test_a_viewer_gets_403_on_every_post(viewer, draft, segment, people, tenant_a):
    Suppression.objects.create(tenant=tenant_a, channel="email", address="gone@example.com", reason="manual")
    suppression = Suppression.objects.get()
    posts = [
        (f"{URL}new/", {"name": "X"}),
        (f"{URL}{draft.pk}/edit/", {"name": "X"}),
        (f"{URL}{draft.pk}/schedule/", {}),
        (f"{URL}{draft.pk}/pause/", {}),
        (f"{URL}{draft.pk}/resume/", {}),
        (f"{URL}{draft.pk}/cancel/", {}),
        (f"{URL}segments/new/", {"name": "X"}),
        (f"{URL}segments/{segment.pk}/", {"name": "X"}),
        (f"{URL}segments/count", {}),
        (f"{URL}suppressions/", {"channel": "email", "address": "x@example.com"}),
        (f"{URL}suppressions/{suppression.pk}/remove/", {}),
    ]
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, url
    draft.refresh_from_db()
    assert (draft.name, draft.status) == ("Spring sale", CampaignStatus.DRAFT)
    assert Segment.objects.count() == 1 and Suppression.objects.count() == 1


def test_another_tenants_campaign_segment_and_suppression_are_404(owner, theirs, tenant_b):
    item = Suppression.objects.create(tenant=tenant_b, channel="email", address="b@example.com", reason="manual")
    for url in (f"{URL}{theirs.pk}/", f"{URL}{theirs.pk}/edit/", f"{URL}segments/{theirs.segment_id}/"):
        assert owner.get(url).status_code == 404, url
    for url in (f"{URL}{theirs.pk}/pause/", f"{URL}{theirs.pk}/cancel/", f"{URL}suppressions/{item.pk}/remove/"):
        assert owner.post(url).status_code == 404, url
    assert "Their sale" not in content(owner.get(URL))
    assert "b@example.com" not in content(owner.get(f"{URL}suppressions/"))
    theirs.refresh_from_db()
    assert theirs.status == CampaignStatus.DRAFT and Suppression.objects.count() == 1


def test_the_form_offers_only_the_tenants_connections_and_segments(owner, sendgrid_a, segment, theirs):
    page = content(owner.get(f"{URL}new/"))
    assert "Alpha email" in page and 'data-channel="email"' in page
    assert "Beta email" not in page and "Theirs" not in page


# --- Drafts --------------------------------------------------------------------------------------


def test_a_draft_is_created_through_the_form(owner, sendgrid_a, segment, tenant_a):
    response = owner.post(f"{URL}new/", campaign_form(sendgrid_a, segment))

    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}{campaign.pk}/"
    assert (campaign.tenant, campaign.name, campaign.status) == (tenant_a, "Launch", CampaignStatus.DRAFT)
    assert (campaign.connection, campaign.segment, campaign.discount_code) == (sendgrid_a, segment, "NEW5")
    assert campaign.created_by is not None
    assert AuditLog.objects.filter(action="campaign.created", tenant=tenant_a).exists()


def test_a_template_error_is_shown_on_its_field(owner, sendgrid_a, segment):
    response = owner.post(f"{URL}new/", campaign_form(sendgrid_a, segment, html="<p>{% load static %}</p>"))

    assert response.status_code == 400
    assert "is not allowed in a message" in field_block(content(response), "html")
    assert "is not allowed" not in field_block(content(response), "subject")
    assert not Campaign.objects.exists()


def test_a_connection_of_the_other_channel_is_refused(owner, twilio_a, segment):
    response = owner.post(f"{URL}new/", campaign_form(twilio_a, segment))

    assert response.status_code == 400
    assert "does not send Email messages" in field_block(content(response), "connection")


def test_an_sms_draft_keeps_only_its_text(owner, twilio_a, segment):
    owner.post(f"{URL}new/", campaign_form(twilio_a, segment, channel="sms", body="Hi {{ first_name }}"))

    campaign = Campaign.objects.get()
    assert (campaign.channel, campaign.body, campaign.subject, campaign.html) == ("sms", "Hi {{ first_name }}", "", "")


def test_the_preview_fills_the_content_in_for_a_sample_customer_and_saves_nothing(owner, sendgrid_a, segment):
    response = owner.post(f"{URL}new/", {**campaign_form(sendgrid_a, segment), "preview": "1"})

    page = content(response)
    assert response.status_code == 200
    assert '<span id="preview-subject">Hi Ada</span>' in page
    assert "New things for Ada" in page  # the HTML, in the sandboxed frame's srcdoc
    assert not Campaign.objects.exists()


def test_a_draft_is_edited_and_only_a_draft(owner, draft, sendgrid_a, segment):
    response = owner.post(f"{URL}{draft.pk}/edit/", campaign_form(sendgrid_a, segment, name="Summer sale"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.name == "Summer sale"

    Campaign.objects.filter(pk=draft.pk).update(status=CampaignStatus.SCHEDULED)
    response = owner.post(f"{URL}{draft.pk}/edit/", campaign_form(sendgrid_a, segment, name="Autumn sale"), follow=True)
    assert "Only a draft can be changed." in content(response)
    draft.refresh_from_db()
    assert (draft.name, draft.status) == ("Summer sale", CampaignStatus.SCHEDULED)


# --- Schedule, pause, resume, cancel ----------------------------------------------------------------


def test_schedule_now_pause_resume_and_cancel_through_the_page(owner, draft, queue):
    response = owner.post(f"{URL}{draft.pk}/schedule/", {"scheduled_at": ""}, follow=True)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED and queue == [draft.pk]
    assert "Scheduled to send now." in content(response)
    assert 'data-status="scheduled"' in content(response)

    owner.post(f"{URL}{draft.pk}/pause/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.PAUSED

    owner.post(f"{URL}{draft.pk}/resume/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED

    response = owner.post(f"{URL}{draft.pk}/cancel/", follow=True)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.CANCELLED
    assert "Cancelled" in content(response)


def test_a_schedule_time_is_read_in_the_tenants_time_zone(owner, draft, tenant_a, queue):
    tenant_a.time_zone = "Europe/Berlin"
    tenant_a.save()

    owner.post(f"{URL}{draft.pk}/schedule/", {"scheduled_at": "2030-06-01T09:00"})

    draft.refresh_from_db()
    assert draft.scheduled_at == datetime(2030, 6, 1, 9, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    assert queue == []  # not due yet
    page = content(owner.get(f"{URL}{draft.pk}/"))
    assert 'value="2030-06-01T09:00"' in page  # shown back in Berlin time


def test_a_refusal_of_sending_is_shown_on_the_page(owner, draft, settings, queue):
    settings.PUBLIC_BASE_URL = ""

    response = owner.post(f"{URL}{draft.pk}/schedule/", follow=True)

    assert "Not done: The hub&#x27;s public address (PUBLIC_BASE_URL) is not set" in content(response)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT and queue == []
    response = owner.post(f"{URL}{draft.pk}/resume/", follow=True)
    assert "Only a paused campaign can be resumed." in content(response)


def test_a_bad_schedule_time_is_refused(owner, draft, queue):
    response = owner.post(f"{URL}{draft.pk}/schedule/", {"scheduled_at": "next tuesday"}, follow=True)
    assert "Give a date and time" in content(response)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT


# --- Figures -------------------------------------------------------------------------------------


def add_recipients(campaign: Campaign, rows: list[tuple[str, str | None, bool, bool]]) -> None:
    """(recipient state, message status or None, opened, clicked) for each recipient."""
    now = timezone.now()
    for n, (state, status, opened, clicked) in enumerate(rows):
        message = None
        if status:
            message = Message.objects.create(
                tenant=campaign.tenant,
                connection=campaign.connection,
                channel=campaign.channel,
                to=f"r{n}@example.com",
                status=status,
                opened_at=now if opened else None,
                clicked_at=now if clicked else None,
            )
        Recipient.objects.create(
            tenant=campaign.tenant,
            campaign=campaign,
            address=f"r{n}-{campaign.pk}@example.com",
            state=state,
            message=message,
        )


MIXED = [
    (RecipientState.SENT, MessageStatus.DELIVERED, False, False),
    (RecipientState.SENT, MessageStatus.OPENED, True, False),
    (RecipientState.SENT, MessageStatus.CLICKED, True, True),
    (RecipientState.SENT, MessageStatus.BOUNCED, False, False),
    (RecipientState.SENT, MessageStatus.UNDELIVERED, False, False),
    (RecipientState.SENT, MessageStatus.QUEUED, False, False),
    (RecipientState.FAILED, MessageStatus.FAILED, False, False),
    (RecipientState.SUPPRESSED, None, False, False),
    (RecipientState.PENDING, None, False, False),
    (RecipientState.CANCELLED, None, False, False),
]


def test_the_list_figures_are_the_ones_sending_stats_gives(draft, tenant_a):
    add_recipients(draft, MIXED)
    Suppression.objects.create(
        tenant=tenant_a,
        channel="email",
        address="r1@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
        campaign=draft,
    )

    assert figures_by_campaign(tenant_a, [draft])[draft.pk] == sending.stats(draft)


def test_the_list_reads_figures_in_the_same_number_of_queries_for_any_number_of_campaigns(
    owner, draft, sendgrid_a, segment, tenant_a
):
    add_recipients(draft, MIXED[:3])
    with CaptureQueriesContext(db) as one:
        assert owner.get(URL).status_code == 200
    for n in range(4):
        extra = Campaign.objects.create(
            tenant=tenant_a, connection=sendgrid_a, segment=segment, name=f"C{n}", channel="email"
        )
        add_recipients(extra, MIXED[:3])
    with CaptureQueriesContext(db) as five:
        page = content(owner.get(URL))
    assert len(five) == len(one)
    row = page[page.index(f'data-campaign="{draft.pk}"') :]
    assert '<td class="num" data-figure="sent">3</td>' in row[:2000]
    assert '<td class="num" data-figure="opened">66.7%</td>' in row[:2000]


def test_the_campaign_page_shows_figures_and_recipients_by_state(owner, draft):
    add_recipients(draft, MIXED)

    page = content(owner.get(f"{URL}{draft.pk}/"))

    assert 'data-kpi="sent"' in page
    opened = page[page.index('data-kpi="opened"') :][:400]
    assert '<span class="value">2</span>' in opened and "33.3% of sent" in opened
    pending = page[page.index('data-state="pending"') :][:200]
    assert '<td class="num">1</td>' in pending


# --- Segments ------------------------------------------------------------------------------------


def count(client, rules, match="all"):
    return client.post(
        f"{URL}segments/count", json.dumps({"match": match, "rules": rules}), content_type="application/json"
    )


def test_the_segment_count_gives_customers_and_their_reachable_addresses(owner, people):
    everyone = count(owner, [])
    assert everyone.status_code == 200 and everyone.json() == {"customers": 3, "email": 3, "sms": 1}

    us = count(owner, [{"field": "country", "op": "in", "value": "US"}])
    assert us.json() == {"customers": 2, "email": 2, "sms": 1}


def test_the_segment_count_is_the_current_tenants_only(client, make_member, tenant_b, people):
    client.force_login(make_member(tenant_b))

    assert count(client, [{"field": "country", "op": "in", "value": "us"}]).json() == {
        "customers": 1,
        "email": 1,
        "sms": 0,
    }


def test_the_segment_count_names_the_row_at_fault(owner, people):
    response = count(
        owner,
        [{"field": "country", "op": "in", "value": "US"}, {"field": "total_spent", "op": "gt", "value": "lots"}],
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Give an amount, e.g. 100 or 49.90.", "row": 1}
    assert owner.post(f"{URL}segments/count", "not json", content_type="application/json").status_code == 400


def test_a_segment_is_saved_from_the_editors_rows(owner, people, tenant_a):
    response = owner.post(
        f"{URL}segments/new/",
        {
            "name": "Big US spenders",
            "description": "",
            "match": "all",
            "field": ["country", "total_spent"],
            "op": ["in", "between"],
            "value": ["us, ca", "50, 200"],
        },
    )

    assert response.status_code == 302
    segment = Segment.objects.get(tenant=tenant_a)
    assert segment.rules == {
        "match": "all",
        "rules": [
            {"field": "country", "op": "in", "value": ["US", "CA"]},
            {"field": "total_spent", "op": "between", "value": ["50", "200"]},
        ],
    }
    page = content(owner.get(f"{URL}segments/{segment.pk}/"))
    assert 'value="US, CA"' in page and 'value="50, 200"' in page


def test_a_bad_rule_is_shown_on_its_row_and_nothing_is_saved(owner, people, segment):
    response = owner.post(
        f"{URL}segments/{segment.pk}/",
        {"name": "US", "match": "all", "field": ["country", "order_count"], "op": ["in", "gt"], "value": ["US", "x"]},
    )

    assert response.status_code == 400
    page = content(response)
    assert "Rule 2: Give a whole number." in page
    second_row = page.split('class="rule-row"')[2]
    assert "Give a whole number." in second_row[: second_row.index("</tr>")]
    segment.refresh_from_db()
    assert segment.rules == US_ONLY


def test_a_segment_name_is_one_per_tenant(owner, segment):
    response = owner.post(f"{URL}segments/new/", {"name": "US", "match": "all"})
    assert response.status_code == 400
    assert "You have a segment with this name already." in content(response)


# --- Suppressions ---------------------------------------------------------------------------------


def test_an_editor_adds_and_removes_a_suppressed_address(client, make_member, tenant_a):
    client.force_login(make_member(tenant_a, Role.EDITOR))

    response = client.post(
        f"{URL}suppressions/", {"channel": "email", "address": " Someone@Example.com ", "detail": "asked"}
    )
    assert response.status_code == 302
    item = Suppression.objects.get()
    assert (item.address, item.reason, item.detail) == ("someone@example.com", "manual", "asked")

    bad = client.post(f"{URL}suppressions/", {"channel": "sms", "address": "555"})
    assert bad.status_code == 400 and "E.164" in content(bad)

    client.post(f"{URL}suppressions/{item.pk}/remove/")
    assert not Suppression.objects.exists()
    actions = AuditLog.objects.filter(tenant=tenant_a, action__startswith="suppression.").order_by("pk")
    assert list(actions.values_list("action", flat=True)) == ["suppression.added", "suppression.removed"]


# --- SuperAdmin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, superadmin):
    client.force_login(superadmin)
    return client


def test_the_admin_lists_and_pages_render_for_a_superuser(admin_client, draft, segment, people, tenant_a):
    add_recipients(draft, MIXED)
    Suppression.objects.create(tenant=tenant_a, channel="email", address="gone@example.com", reason="manual")
    for url in (
        "/admin/campaigns/campaign/",
        "/admin/campaigns/campaign/?status__exact=draft&channel__exact=email",
        f"/admin/campaigns/campaign/{draft.pk}/change/",
        "/admin/campaigns/campaign/add/",
        "/admin/campaigns/segment/",
        f"/admin/campaigns/segment/{segment.pk}/change/",
        "/admin/campaigns/recipient/",
        f"/admin/campaigns/recipient/?campaign__id__exact={draft.pk}",
        "/admin/campaigns/suppression/",
        "/admin/campaigns/suppression/add/",
        "/admin/campaigns/message/",
    ):
        assert admin_client.get(url).status_code == 200, url
    change = content(admin_client.get(f"/admin/campaigns/campaign/{draft.pk}/change/"))
    assert 'id="schedule-now"' in change and 'id="cancel"' in change
    assert '<tr data-figure="sent"><th>Sent</th><td>6</td>' in change
    assert "2 customers now; 2 reachable by email, 1 by SMS." in content(
        admin_client.get(f"/admin/campaigns/segment/{segment.pk}/change/")
    )
    listing = content(admin_client.get("/admin/campaigns/campaign/"))
    assert '<td class="field-sent">6</td>' in listing and '<td class="field-failed">2</td>' in listing


def test_the_admin_buttons_call_sending_and_show_its_refusals(admin_client, draft, queue):
    response = admin_client.post(f"/admin/campaigns/campaign/{draft.pk}/schedule/", follow=True)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED and queue == [draft.pk]
    assert "Spring sale: scheduled to send now." in content(response)

    admin_client.post(f"/admin/campaigns/campaign/{draft.pk}/pause/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.PAUSED

    refused = admin_client.post(f"/admin/campaigns/campaign/{draft.pk}/pause/", follow=True)
    assert "Only a scheduled or sending campaign can be paused." in content(refused)
    assert admin_client.get(f"/admin/campaigns/campaign/{draft.pk}/pause/").status_code == 405


def test_the_admin_actions_call_sending_for_each_campaign(admin_client, draft, sendgrid_a, segment, tenant_a):
    other = Campaign.objects.create(
        tenant=tenant_a, connection=sendgrid_a, segment=segment, name="Other", channel="email"
    )
    Campaign.objects.filter(pk=other.pk).update(status=CampaignStatus.SENT)

    response = admin_client.post(
        "/admin/campaigns/campaign/",
        {"action": "cancel_selected", "_selected_action": [draft.pk, other.pk]},
        follow=True,
    )

    draft.refresh_from_db()
    other.refresh_from_db()
    assert (draft.status, other.status) == (CampaignStatus.CANCELLED, CampaignStatus.SENT)
    assert "Other: This campaign can no longer be cancelled." in content(response)


def test_only_a_draft_is_edited_in_the_admin(admin_client, draft):
    Campaign.objects.filter(pk=draft.pk).update(status=CampaignStatus.SENT)
    page = content(admin_client.get(f"/admin/campaigns/campaign/{draft.pk}/change/"))
    assert 'name="name"' not in page and 'name="html"' not in page


def test_the_admin_refuses_another_tenants_connection_for_a_campaign(admin_client, draft, theirs):
    response = admin_client.post(
        f"/admin/campaigns/campaign/{draft.pk}/change/",
        {
            "name": draft.name,
            "channel": "email",
            "connection": theirs.connection_id,
            "segment": draft.segment_id,
            "subject": draft.subject,
            "subject_b": "",
            "ab_share": "0",
            "ab_wait_minutes": "240",
            "body": "",
            "html": draft.html,
            "discount_code": "",
        },
    )
    assert response.status_code == 200 and "This connection is not Alpha Goods" in content(response)
    draft.refresh_from_db()
    assert draft.connection.tenant_id == draft.tenant_id


def test_an_address_is_suppressed_by_hand_in_the_admin(admin_client, tenant_a):
    response = admin_client.post(
        "/admin/campaigns/suppression/add/",
        {"tenant": tenant_a.pk, "channel": "sms", "address": "+1 (415) 555-0100", "detail": "phoned in"},
    )

    assert response.status_code == 302
    item = Suppression.objects.get()
    assert (item.address, item.reason, item.detail) == ("+14155550100", "manual", "phoned in")
    assert AuditLog.objects.filter(action="suppression.added", tenant=tenant_a).count() == 1
    again = admin_client.post(
        "/admin/campaigns/suppression/add/", {"tenant": tenant_a.pk, "channel": "sms", "address": "+14155550100"}
    )
    assert again.status_code == 200 and Suppression.objects.count() == 1


def test_the_admin_validates_segment_rules_and_names(admin_client, segment, tenant_a):
    other = Segment.objects.create(tenant=tenant_a, name="Germany")
    url = f"/admin/campaigns/segment/{other.pk}/change/"

    bad_rules = admin_client.post(url, {"name": "Germany", "description": "", "rules": '{"rules": [{"field": "x"}]}'})
    assert bad_rules.status_code == 200 and "rules[0].field: Unknown field" in content(bad_rules)
    clash = admin_client.post(url, {"name": "US", "description": "", "rules": "{}"})
    assert clash.status_code == 200 and "This client has a segment with this name already." in content(clash)

    saved = admin_client.post(url, {"name": "Germany", "description": "", "rules": '{"rules": []}'})
    assert saved.status_code == 302
    other.refresh_from_db()
    assert other.rules == {"match": "all", "rules": []}


def test_a_draft_is_added_in_the_admin_with_its_templates_checked(admin_client, sendgrid_a, segment, tenant_a):
    form = {
        "tenant": tenant_a.pk,
        "name": "From the admin",
        "channel": "email",
        "connection": sendgrid_a.pk,
        "segment": segment.pk,
        "subject": "Hi {{ first_name }}",
        "subject_b": "",
        "ab_share": "0",
        "ab_wait_minutes": "240",
        "body": "",
        "html": "{% debug %}",
        "discount_code": "",
    }
    refused = admin_client.post("/admin/campaigns/campaign/add/", form)
    assert refused.status_code == 200 and "{% debug %} is not allowed in a message" in content(refused)

    added = admin_client.post("/admin/campaigns/campaign/add/", {**form, "html": "<p>Hello {{ first_name }}</p>"})
    assert added.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.tenant, campaign.status, campaign.created_by.username) == (tenant_a, "draft", "root")
