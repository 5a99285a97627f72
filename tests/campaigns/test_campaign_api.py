"""The campaigns API: segments with live counts, the campaign life cycle, figures, suppressions;
scopes and tenant isolation."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

import pytest

from campaigns import sending
from campaigns.models import Campaign, CampaignStatus, Segment, Suppression
from commerce.models import Customer
from tenants.models import ApiKey
from tests.api.conftest import assert_error_shape, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_address(settings):
    settings.PUBLIC_BASE_URL = "https://hub.example.com"


@pytest.fixture(autouse=True)
def queue(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(sending, "_enqueue", queued.append)
    return queued


@pytest.fixture
def key_a(tenant_a) -> str:
    return ApiKey.generate(tenant_a, "campaigns", scopes=["campaigns:read", "campaigns:write"])[1]


@pytest.fixture
def reader_a(tenant_a) -> str:
    return ApiKey.generate(tenant_a, "reader", scopes=["campaigns:read"])[1]


@pytest.fixture
def key_b(tenant_b) -> str:
    return ApiKey.generate(tenant_b, "campaigns", scopes=["campaigns:read", "campaigns:write"])[1]


@pytest.fixture
def people(tenant_a, make_connection):
    shop = make_connection(tenant_a, "shopify")
    for n, country in enumerate(["US", "US", "DE"]):
        Customer.objects.create(
            tenant=tenant_a, connection=shop, external_id=f"c{n}", email=f"p{n}@example.com", country=country
        )
    return shop


US_ONLY = {"match": "all", "rules": [{"field": "country", "op": "in", "value": ["US"]}]}


def test_segment_crud_with_a_live_count(api_client, key_a, people):
    preview = api_client.post(
        "/api/v1/segments/preview", {"rules": US_ONLY, "channel": "email"}, format="json", **bearer(key_a)
    )
    assert preview.status_code == 200 and preview.json() == {"customers": 2, "reachable": 2}

    created = api_client.post("/api/v1/segments", {"name": "US", "rules": US_ONLY}, format="json", **bearer(key_a))
    assert created.status_code == 201, created.json()
    assert created.json()["customers"] == 2

    bad = api_client.post(
        "/api/v1/segments",
        {"name": "Bad", "rules": {"match": "all", "rules": [{"field": "shoe_size", "op": "gt", "value": 3}]}},
        format="json",
        **bearer(key_a),
    )
    assert bad.status_code == 400
    assert_error_shape(bad.json(), "invalid")
    assert "rules" in bad.json()["error"]["details"]

    fields = api_client.get("/api/v1/segments/fields", **bearer(key_a))
    assert fields.status_code == 200 and "total_spent" in fields.json()


def test_campaign_life_cycle_through_the_api(api_client, key_a, people, sendgrid_a, office, queue, tenant_a):
    segment = Segment.objects.create(tenant=tenant_a, name="US", rules=US_ONLY)
    created = api_client.post(
        "/api/v1/campaigns",
        {
            "name": "Launch",
            "channel": "email",
            "connection": sendgrid_a.pk,
            "segment": segment.pk,
            "subject": "Hi {{ first_name|default:'there' }}",
            "html": "<p>New things</p>",
        },
        format="json",
        **bearer(key_a),
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["status"] == "draft"

    scheduled = api_client.post(f"/api/v1/campaigns/{pk}/schedule", {}, format="json", **bearer(key_a))
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    assert queue == [pk]

    changed = api_client.patch(f"/api/v1/campaigns/{pk}", {"name": "Renamed"}, format="json", **bearer(key_a))
    assert changed.status_code == 400  # only drafts change

    sending.run(pk)
    stats = api_client.get(f"/api/v1/campaigns/{pk}/stats", **bearer(key_a))
    assert stats.status_code == 200
    assert (stats.json()["recipients"], stats.json()["sent"]) == (2, 2)
    assert api_client.get("/api/v1/campaigns?status=sent", **bearer(key_a)).json()["results"][0]["id"] == pk

    cancelled = api_client.post(f"/api/v1/campaigns/{pk}/cancel", **bearer(key_a))
    assert cancelled.status_code == 400
    assert_error_shape(cancelled.json(), "invalid")


def test_a_time_without_offset_is_in_the_tenants_time_zone(api_client, key_a, people, sendgrid_a, tenant_a, queue):
    tenant_a.time_zone = "Europe/Berlin"
    tenant_a.save()
    segment = Segment.objects.create(tenant=tenant_a, name="All")
    campaign = Campaign.objects.create(
        tenant=tenant_a, connection=sendgrid_a, segment=segment, name="X", channel="email", subject="S", html="<p>x</p>"
    )

    response = api_client.post(
        f"/api/v1/campaigns/{campaign.pk}/schedule",
        {"scheduled_at": "2030-06-01T09:00:00"},
        format="json",
        **bearer(key_a),
    )

    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.scheduled_at == datetime(2030, 6, 1, 9, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    assert queue == []  # not due yet


def test_unsafe_template_is_a_400_naming_the_field(api_client, key_a, sendgrid_a):
    response = api_client.post(
        "/api/v1/campaigns",
        {"name": "X", "channel": "email", "connection": sendgrid_a.pk, "subject": "S", "html": "{% debug %}"},
        format="json",
        **bearer(key_a),
    )
    assert response.status_code == 400
    assert "html" in response.json()["error"]["details"]


def test_another_tenants_campaign_segment_and_connection_do_not_exist(
    api_client, key_a, key_b, tenant_b, make_connection, sendgrid_a, tenant_a
):
    segment = Segment.objects.create(tenant=tenant_a, name="All")
    campaign = Campaign.objects.create(
        tenant=tenant_a, connection=sendgrid_a, segment=segment, name="Mine", channel="email", subject="S", html="x"
    )
    assert api_client.get(f"/api/v1/campaigns/{campaign.pk}", **bearer(key_b)).status_code == 404
    assert api_client.post(f"/api/v1/campaigns/{campaign.pk}/schedule", **bearer(key_b)).status_code == 404
    assert api_client.get(f"/api/v1/segments/{segment.pk}", **bearer(key_b)).status_code == 404
    assert api_client.get("/api/v1/campaigns", **bearer(key_b)).json()["results"] == []
    response = api_client.post(
        "/api/v1/campaigns",
        {"name": "Theirs", "channel": "email", "connection": sendgrid_a.pk, "segment": segment.pk, "subject": "S"},
        format="json",
        **bearer(key_b),
    )
    assert response.status_code == 400
    assert {"connection", "segment"} <= set(response.json()["error"]["details"])


def test_read_scope_cannot_change_anything(api_client, reader_a, sendgrid_a):
    assert api_client.get("/api/v1/campaigns", **bearer(reader_a)).status_code == 200
    response = api_client.post("/api/v1/segments", {"name": "X"}, format="json", **bearer(reader_a))
    assert response.status_code == 403
    assert "campaigns:write" in response.json()["error"]["message"]


def test_suppression_list(api_client, key_a, key_b, tenant_a):
    added = api_client.post(
        "/api/v1/suppressions", {"channel": "email", "address": "Someone@Example.com"}, format="json", **bearer(key_a)
    )
    assert added.status_code == 201, added.json()
    assert (added.json()["address"], added.json()["reason"]) == ("someone@example.com", "manual")
    again = api_client.post(
        "/api/v1/suppressions", {"channel": "email", "address": "someone@example.com"}, format="json", **bearer(key_a)
    )
    assert again.status_code == 201 and Suppression.objects.count() == 1
    bad = api_client.post("/api/v1/suppressions", {"channel": "sms", "address": "555"}, format="json", **bearer(key_a))
    assert bad.status_code == 400
    assert api_client.get("/api/v1/suppressions", **bearer(key_b)).json()["results"] == []
    pk = added.json()["id"]
    assert api_client.delete(f"/api/v1/suppressions/{pk}", **bearer(key_b)).status_code == 404
    assert api_client.delete(f"/api/v1/suppressions/{pk}", **bearer(key_a)).status_code == 204
    assert not Suppression.objects.exists()
    assert Campaign.objects.filter(status=CampaignStatus.SENT).count() == 0
