"""An editor builds a segment and schedules an email campaign to it, in a real browser: the live
count follows the rules as they are typed (no reload), the preview fills the content in for a
sample customer, and the campaign's page shows it scheduled. Sending goes to a list instead of
the task cluster, and SendGrid is the campaigns tests' fake post office."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from campaigns import sending
from campaigns.models import Campaign, CampaignStatus, Segment
from campaigns.providers import PROVIDERS
from commerce.models import Customer
from tenants.models import Membership, Role

from .conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser

EDITOR = "editor@lamps.example"
FAKES = {
    "twilio": "tests.campaigns.fake_provider.FakeSmsProvider",
    "sendgrid": "tests.campaigns.fake_provider.FakeEmailProvider",
}


@pytest.fixture
def lamps(transactional_db, make_tenant, make_connection, tenant_b, monkeypatch, settings):
    """A shop with two customers in the US and one in Germany, a SendGrid connection, and another
    tenant's US customer who must never be counted."""
    settings.PUBLIC_BASE_URL = "https://hub.example.com"
    for platform, path in FAKES.items():
        monkeypatch.setitem(PROVIDERS, platform, path)
    queued: list[int] = []
    monkeypatch.setattr(sending, "_enqueue", queued.append)
    tenant = make_tenant("Lamp Co")
    user = get_user_model().objects.create_user(EDITOR, EDITOR, PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=Role.EDITOR)
    shop = make_connection(tenant, "shopify", name="Lamp Shopify")
    for n, country in enumerate(["US", "US", "DE"]):
        Customer.objects.create(
            tenant=tenant, connection=shop, external_id=f"c{n}", email=f"p{n}@lamps.example", country=country
        )
    other = make_connection(tenant_b, "shopify")
    Customer.objects.create(tenant=tenant_b, connection=other, external_id="b0", email="b@beta.example", country="US")
    email = make_connection(
        tenant, "sendgrid", "Lamp email", credentials={"api_key": "SG.fake", "from_email": "shop@lamps.example"}
    )
    return {"tenant": tenant, "email": email, "queued": queued}


def test_an_editor_builds_a_segment_with_a_live_count_and_schedules_a_campaign_to_it(
    live_server, page, js_errors, lamps
):
    from playwright.sync_api import expect

    sign_in(page, f"{live_server.url}/accounts/login/", EDITOR)
    page.click("header nav >> text=Campaigns")
    page.click(".campaign-tabs >> text=Segments")
    page.click("#new-segment")

    customers = page.locator('#live-count [data-count="customers"]')
    expect(customers).to_have_text("3")
    page.evaluate("window.stillTheSamePage = true")
    page.fill("#id_name", "US customers")
    page.click("#add-rule")
    row = page.locator("#rules .rule-row").last
    row.locator("select[name=field]").select_option("country")
    expect(row.locator("select[name=op]")).to_have_value("in")
    row.locator("input[name=value]").fill("US")
    expect(customers).to_have_text("2")
    expect(page.locator('#live-count [data-count="email"]')).to_have_text("2")
    assert page.evaluate("window.stillTheSamePage") is True  # counted without a reload
    screenshot(page, "campaigns-segment-editor.png")
    with page.expect_navigation():
        page.click("#save-segment")

    segment = Segment.objects.get(tenant=lamps["tenant"])
    assert segment.rules == {"match": "all", "rules": [{"field": "country", "op": "in", "value": ["US"]}]}
    expect(page.locator("#segments")).to_contain_text("US customers")

    page.click(".campaign-tabs >> text=Campaigns")
    page.click("#new-campaign")
    page.fill("#id_name", "Lamp launch")
    page.select_option("#id_channel", "email")
    page.select_option("#id_connection", str(lamps["email"].pk))
    page.select_option("#id_segment", str(segment.pk))
    page.fill("#id_subject", "A lamp for you, {{ first_name }}")
    page.fill("#id_html", "<p>Hello {{ first_name }}, see our new lamps.</p>")
    with page.expect_navigation():
        page.click("#preview-button")
    expect(page.locator("#preview-subject")).to_have_text("A lamp for you, Ada")
    expect(page.frame_locator("#preview-html").locator("p").first).to_contain_text("Hello Ada, see our new lamps.")
    assert not Campaign.objects.exists()  # a preview saves nothing
    screenshot(page, "campaigns-preview.png")
    with page.expect_navigation():
        page.click("#save-button")

    campaign = Campaign.objects.get()
    expect(page.locator("#campaign-status")).to_have_text("Draft")
    with page.expect_navigation():
        page.click("#schedule-button")  # no time given: now

    expect(page.locator("#campaign-status")).to_have_text("Scheduled")
    expect(page.locator("main")).to_contain_text("Scheduled to send now.")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED and lamps["queued"] == [campaign.pk]
    screenshot(page, "campaigns-detail.png")
    page.click(".campaign-tabs >> text=Campaigns")
    expect(page.locator(f'#campaigns tr[data-campaign="{campaign.pk}"]')).to_contain_text("Scheduled")
    screenshot(page, "campaigns-list.png")
    assert js_errors.messages == []
