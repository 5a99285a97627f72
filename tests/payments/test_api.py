"""The payments API: take, list, read, refund, capture, figures; scopes, errors and tenant isolation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.gateways.base import PaymentStatus
from payments.models import Payment
from tenants.models import ApiKey, AuditLog
from tests.api.conftest import assert_error_shape, bearer

from .fake_gateway import CLIENT_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_a(tenant_a) -> str:
    return ApiKey.generate(tenant_a, "payments", scopes=["payments:read", "payments:write"])[1]


@pytest.fixture
def key_b(tenant_b) -> str:
    return ApiKey.generate(tenant_b, "payments", scopes=["payments:read", "payments:write"])[1]


def create(api_client, key: str, **body):
    headers = {name: body.pop(name) for name in list(body) if name.startswith("HTTP_")}
    body.setdefault("gateway", "stripe")
    body.setdefault("amount", "100.00")
    body.setdefault("currency", "USD")
    body.setdefault("payment_method", "pm_card_visa")
    body = {name: value for name, value in body.items() if value is not None}  # None: leave the field out
    return api_client.post("/api/v1/payments", body, format="json", **bearer(key), **headers)


# --- Taking payments ------------------------------------------------------------------------------------


def test_a_payment_is_taken_and_answered_with_its_status(api_client, key_a, stripe_a, fake_bank):
    response = create(api_client, key_a, description="Order #1001", metadata={"order": "1001"})

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("gateway", "connection", "amount", "currency", "status", "amount_captured")} == {
        "gateway": "stripe",
        "connection": stripe_a.pk,
        "amount": "100.00",
        "currency": "USD",
        "status": "succeeded",
        "amount_captured": "100.00",
    }
    assert body["amount_refundable"] == "100.00"
    assert body["idempotency_key"] == f"pay_{body['uuid'].replace('-', '')}"
    assert body["client_secret"] == ""
    assert body["metadata"] == {"order": "1001"}
    assert AuditLog.objects.filter(action="payment.created", tenant=stripe_a.tenant).exists()


def test_the_client_secret_is_in_the_create_answer_only(api_client, key_a, stripe_a, fake_bank):
    body = create(api_client, key_a, payment_method="pm_card_authenticationRequired").json()
    assert (body["status"], body["client_secret"]) == ("requires_action", CLIENT_SECRET)

    detail = api_client.get(f"/api/v1/payments/{body['id']}", **bearer(key_a))
    listed = api_client.get("/api/v1/payments", **bearer(key_a))
    assert "client_secret" not in detail.json()
    assert CLIENT_SECRET not in detail.content.decode() + listed.content.decode()


def test_a_paypal_payment_answers_its_approval_link(api_client, key_a, tenant_a, make_connection, fake_bank):
    make_connection(tenant_a, "paypal", credentials={"client_id": "c", "client_secret": "s", "environment": "sandbox"})
    body = create(api_client, key_a, gateway="paypal", payment_method="pm_paypal").json()
    assert body["status"] == "requires_action"
    assert body["approval_url"].startswith("https://www.sandbox.paypal.com/checkoutnow?token=")


def test_a_declined_card_is_a_created_payment_that_failed(api_client, key_a, stripe_a, fake_bank):
    response = create(api_client, key_a, payment_method="pm_card_chargeDeclined")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["failure_code"], body["failure_message"]) == (
        "failed",
        "card_declined",
        "Your card was declined.",
    )


def test_zero_decimal_amounts_are_whole_and_more_places_are_refused(api_client, key_a, stripe_a, fake_bank):
    body = create(api_client, key_a, amount="500", currency="jpy").json()
    assert (body["amount"], body["currency"], body["amount_captured"]) == ("500", "JPY", "500")
    assert fake_bank.charges[body["idempotency_key"]].minor == 500

    refused = create(api_client, key_a, amount="500.5", currency="JPY")
    assert refused.status_code == 400
    assert_error_shape(refused.json(), "invalid")
    assert "JPY allows (0)" in str(refused.json()["error"]["details"]["amount"])


def test_a_card_number_is_refused_and_not_repeated(api_client, key_a, stripe_a, fake_bank):
    response = create(api_client, key_a, payment_method="4242 4242 4242 4242")
    assert response.status_code == 400
    assert "never takes card data" in str(response.json()["error"]["details"]["payment_method"])
    assert "4242" not in response.content.decode()
    assert not Payment.objects.exists()


def test_the_gateway_must_be_one_of_the_callers_enabled_connections(api_client, key_a, stripe_a, stripe_b, fake_bank):
    other = create(api_client, key_a, gateway=None, connection=stripe_b.pk)
    assert other.status_code == 400
    assert "No payment gateway connection of yours" in str(other.json()["error"]["details"]["connection"])

    none = create(api_client, key_a, gateway="square")
    assert "no enabled square connection" in str(none.json()["error"]["details"]["gateway"])


def test_with_two_connections_of_a_gateway_the_connection_is_named(
    api_client, key_a, stripe_a, tenant_a, make_connection, fake_bank
):
    second = make_connection(tenant_a, "stripe", "EU Stripe", credentials={"secret_key": "sk_test_eu"})
    ambiguous = create(api_client, key_a)
    assert ambiguous.status_code == 400
    assert "give the connection id" in str(ambiguous.json()["error"]["details"]["connection"])

    chosen = create(api_client, key_a, connection=second.pk)
    assert (chosen.status_code, chosen.json()["connection"]) == (201, second.pk)


def test_a_retry_after_a_timeout_charges_once(api_client, key_a, stripe_a, fake_bank):
    fake_bank.lose_answers(1)
    body = create(api_client, key_a).json()
    assert body["status"] == "succeeded"
    assert len(fake_bank.charges) == 1
    assert [key for _, key in fake_bank.calls] == [body["idempotency_key"]] * 2


# --- Scopes and tenants ---------------------------------------------------------------------------------


def test_taking_a_payment_needs_the_write_scope(api_client, tenant_a, stripe_a, fake_bank):
    _, read_only = ApiKey.generate(tenant_a, "reader", scopes=["payments:read"])
    response = create(api_client, read_only)
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "payments:write"}
    assert api_client.get("/api/v1/payments", **bearer(read_only)).status_code == 200


def test_another_tenants_payment_is_a_404_everywhere(api_client, key_a, key_b, stripe_b, fake_bank):
    theirs = create(api_client, key_b).json()["id"]

    for method, path in [
        ("get", f"/api/v1/payments/{theirs}"),
        ("post", f"/api/v1/payments/{theirs}/refund"),
        ("post", f"/api/v1/payments/{theirs}/capture"),
    ]:
        response = getattr(api_client, method)(path, {}, format="json", **bearer(key_a))
        assert response.status_code == 404, path
        assert_error_shape(response.json(), "not_found")
    assert api_client.get("/api/v1/payments", **bearer(key_a)).json()["results"] == []
    assert api_client.get("/api/v1/payments/stats", **bearer(key_a)).json()["total"] == 0
    assert Payment.objects.get(pk=theirs).status == PaymentStatus.SUCCEEDED


# --- Listing --------------------------------------------------------------------------------------------


def test_the_list_filters_by_status_gateway_and_creation_time(
    api_client, key_a, stripe_a, tenant_a, make_connection, fake_bank
):
    make_connection(tenant_a, "square", credentials={"access_token": "EAAA", "location_id": "L1"})
    ok = create(api_client, key_a).json()["id"]
    declined = create(api_client, key_a, payment_method="pm_card_chargeDeclined").json()["id"]
    square = create(api_client, key_a, gateway="square").json()["id"]
    Payment.objects.filter(pk=ok).update(created_at=timezone.now() - timedelta(days=3))

    def ids(**params):
        response = api_client.get("/api/v1/payments", params, **bearer(key_a))
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [square, declined, ok]
    assert ids(status="failed") == [declined]
    assert ids(gateway="square") == [square]
    assert ids(created_after=(timezone.now() - timedelta(days=1)).isoformat()) == [square, declined]
    assert ids(created_before=(timezone.now() - timedelta(days=1)).isoformat()) == [ok]
    assert ids(ordering="amount") == [ok, declined, square]
    assert ids(page_size=1) == [square]
    assert api_client.get("/api/v1/payments", {"status": "paid"}, **bearer(key_a)).status_code == 400
    assert api_client.get("/api/v1/payments", {"created_after": "yesterday"}, **bearer(key_a)).status_code == 400


# --- Refunds and captures -----------------------------------------------------------------------------------


def test_a_partial_then_a_full_refund(api_client, key_a, stripe_a, fake_bank):
    payment = create(api_client, key_a).json()["id"]

    first = api_client.post(
        f"/api/v1/payments/{payment}/refund", {"amount": "30.00", "reason": "damaged"}, format="json", **bearer(key_a)
    )
    assert first.status_code == 201
    assert {k: first.json()[k] for k in ("amount", "status", "reason")} == {
        "amount": "30.00",
        "status": "succeeded",
        "reason": "damaged",
    }
    assert first.json()["payment"] == {
        "id": payment,
        "status": "partially_refunded",
        "amount_refunded": "30.00",
        "amount_refundable": "70.00",
    }

    rest = api_client.post(f"/api/v1/payments/{payment}/refund", {}, format="json", **bearer(key_a))
    assert rest.status_code == 201
    assert rest.json()["amount"] == "70.00"
    assert rest.json()["payment"]["status"] == "refunded"
    detail = api_client.get(f"/api/v1/payments/{payment}", **bearer(key_a)).json()
    assert [r["amount"] for r in detail["refunds"]] == ["30.00", "70.00"]
    assert detail["amount_refunded"] == "100.00"
    assert AuditLog.objects.filter(action="payment.refund_requested", tenant=stripe_a.tenant).count() == 2


def test_a_refund_over_what_is_left_is_a_400_with_the_figures(api_client, key_a, stripe_a, fake_bank):
    payment = create(api_client, key_a).json()["id"]
    api_client.post(f"/api/v1/payments/{payment}/refund", {"amount": "30"}, format="json", **bearer(key_a))

    response = api_client.post(f"/api/v1/payments/{payment}/refund", {"amount": "80"}, format="json", **bearer(key_a))

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert response.json()["error"]["details"]["amount"] == [
        "At most 70.00 USD can be refunded: 100.00 USD captured, 30.00 USD already refunded."
    ]


def test_refunding_a_failed_payment_is_a_409(api_client, key_a, stripe_a, fake_bank):
    payment = create(api_client, key_a, payment_method="pm_card_chargeDeclined").json()["id"]
    response = api_client.post(f"/api/v1/payments/{payment}/refund", {}, format="json", **bearer(key_a))
    assert response.status_code == 409
    assert_error_shape(response.json(), "conflict")


def test_an_authorised_payment_is_captured(api_client, key_a, stripe_a, fake_bank):
    payment = create(api_client, key_a, capture=False).json()
    assert (payment["status"], payment["amount_captured"]) == ("authorized", "0.00")

    response = api_client.post(
        f"/api/v1/payments/{payment['id']}/capture", {"amount": "60"}, format="json", **bearer(key_a)
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["amount_captured"]) == ("succeeded", "60.00")
    again = api_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json", **bearer(key_a))
    assert again.status_code == 409


def test_a_payment_the_customer_approved_at_paypal_is_captured(api_client, key_a, tenant_a, make_connection, fake_bank):
    make_connection(tenant_a, "paypal", credentials={"client_id": "c", "client_secret": "s", "environment": "sandbox"})
    payment = create(api_client, key_a, gateway="paypal", payment_method="pm_paypal").json()

    response = api_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json", **bearer(key_a))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["amount_captured"]) == ("succeeded", "100.00")


def test_a_payment_waiting_for_authentication_cannot_be_captured(api_client, key_a, stripe_a, fake_bank):
    payment = create(api_client, key_a, payment_method="pm_card_authenticationRequired").json()
    response = api_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json", **bearer(key_a))
    assert response.status_code == 409
    assert "approval link" in response.json()["error"]["message"]
    assert not [call for call in fake_bank.calls if call[0] == "capture"]


# --- Figures ---------------------------------------------------------------------------------------------


def test_the_figures(api_client, key_a, stripe_a, tenant_a, make_connection, fake_bank):
    make_connection(tenant_a, "square", "Shop Square", credentials={"access_token": "EAAA", "location_id": "L1"})
    make_connection(tenant_a, "paypal", "Old PayPal", enabled=False)
    first = create(api_client, key_a, amount="100.00").json()["id"]
    create(api_client, key_a, amount="50.00")
    create(api_client, key_a, amount="20.00", payment_method="pm_card_chargeDeclined")
    create(api_client, key_a, amount="500", currency="JPY", gateway="square")
    create(api_client, key_a, amount="10.00", payment_method="pm_card_authenticationRequired")
    api_client.post(f"/api/v1/payments/{first}/refund", {"amount": "25"}, format="json", **bearer(key_a))

    body = api_client.get("/api/v1/payments/stats", **bearer(key_a)).json()

    assert {k: body[k] for k in ("total", "successful", "failed", "success_rate")} == {
        "total": 5,
        "successful": 3,
        "failed": 1,
        "success_rate": 75.0,
    }
    assert body["by_status"]["requires_action"] == 1
    assert body["volume"] == [
        {"currency": "JPY", "successful": 1, "volume": "500", "refunded": "0", "net": "500", "average": "500"},
        {
            "currency": "USD",
            "successful": 2,
            "volume": "150.00",
            "refunded": "25.00",
            "net": "125.00",
            "average": "75.00",
        },
    ]
    gateways = {g["gateway"]: g for g in body["gateways"]}
    assert (gateways["stripe"]["total"], gateways["stripe"]["failed"]) == (4, 1)
    assert gateways["square"]["volume"][0]["volume"] == "500"
    assert sorted(g["name"] for g in body["gateways_active"]) == ["Alpha Stripe", "Shop Square"]
    assert [g["gateway"] for g in body["gateways_available"]] == ["stripe", "paypal", "square", "authorize_net"]


def test_the_figures_take_a_creation_range(api_client, key_a, stripe_a, fake_bank):
    old = create(api_client, key_a).json()["id"]
    Payment.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=40))
    create(api_client, key_a, amount="7.00")
    since = (timezone.now() - timedelta(days=30)).isoformat()

    body = api_client.get("/api/v1/payments/stats", {"created_after": since}, **bearer(key_a)).json()

    assert body["total"] == 1
    assert body["volume"][0]["volume"] == "7.00"
    bad = api_client.get("/api/v1/payments/stats", {"created_before": "soon"}, **bearer(key_a))
    assert bad.status_code == 400
    assert_error_shape(bad.json(), "invalid")


def test_amounts_are_decimal_not_float(api_client, key_a, stripe_a, fake_bank):
    body = create(api_client, key_a, amount="0.10").json()
    payment = Payment.objects.get(pk=body["id"])
    assert payment.amount == Decimal("0.1")
    assert body["amount"] == "0.10"


# --- The client's Idempotency-Key ----------------------------------------------------------------------


def test_the_same_idempotency_key_answers_the_first_payment_and_charges_once(api_client, key_a, stripe_a, fake_bank):
    first = create(api_client, key_a, HTTP_IDEMPOTENCY_KEY="order-1001-attempt")
    again = create(api_client, key_a, HTTP_IDEMPOTENCY_KEY="order-1001-attempt")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Payment.objects.count() == 1 and len(fake_bank.charges) == 1


def test_the_same_key_for_another_amount_is_refused(api_client, key_a, stripe_a, fake_bank):
    create(api_client, key_a, HTTP_IDEMPOTENCY_KEY="k-1")
    other = create(api_client, key_a, amount="99.00", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 409
    assert_error_shape(other.json(), "conflict")
    assert "Idempotency-Key was used for another payment" in other.json()["error"]["message"]
    assert Payment.objects.count() == 1


def test_keys_are_per_client_and_payments_without_one_are_never_merged(
    api_client, key_a, key_b, stripe_a, stripe_b, fake_bank
):
    assert create(api_client, key_a, HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert create(api_client, key_b, HTTP_IDEMPOTENCY_KEY="shared").status_code == 201  # another tenant's
    assert create(api_client, key_a).status_code == 201
    assert create(api_client, key_a).status_code == 201
    assert Payment.objects.count() == 4
