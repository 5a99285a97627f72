"""Sending outbound hooks to a real local receiver: Standard Webhooks signatures, retries with
backoff, 410 Gone, switching off a subscription that keeps failing (its owners emailed), and the
send-time guard against private addresses, rebinding names and redirects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import OrmQ
from standardwebhooks import Webhook

from tenants.models import AuditLog, Role
from tests.fakes.hook_receiver import HookReceiver, fake_dns
from webhooks import tasks
from webhooks.models import DeliveryStatus, HookDelivery, HookEvent, HookSubscription
from webhooks.outbound import delivery, publish, signing
from webhooks.outbound.delivery import deliver

pytestmark = pytest.mark.django_db

DATA = {"id": 7, "number": "1007", "total": "12.5000"}


@pytest.fixture
def receiver(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = True  # the receiver is on 127.0.0.1
    with HookReceiver().running() as server:
        yield server


@pytest.fixture
def make_hook(tenant_a):
    def make(url: str, event: str = HookEvent.ORDER_CREATED, **kwargs) -> HookSubscription:
        return HookSubscription.objects.create(
            tenant=tenant_a, target_url=url, event=event, secret=signing.new_secret(), **kwargs
        )

    return make


def emit(tenant, event=HookEvent.ORDER_CREATED, data=DATA) -> list[HookDelivery]:
    return publish.publish(tenant.pk, event, [data])


def reload(item: HookDelivery) -> HookDelivery:
    return HookDelivery.objects.get(pk=item.pk)


# --- Signing -----------------------------------------------------------------------------------------


def test_a_delivery_is_signed_as_standard_webhooks_verify_it(receiver, make_hook, tenant_a):
    hook = make_hook(receiver.url)
    [item] = emit(tenant_a)

    assert deliver(item.pk, 0).endswith("delivered (200)")

    [request] = receiver.requests
    assert Webhook(hook.secret).verify(request.body, request.headers) == item.payload
    assert request.headers["webhook-id"] == item.webhook_id
    assert request.headers["content-type"] == "application/json"
    assert item.payload["data"] == DATA and item.payload["type"] == "order.created"
    assert item.payload["id"] == item.webhook_id
    done = reload(item)
    assert (done.status, done.attempts, done.response_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert done.response_body == '{"ok": true}' and done.delivered_at is not None


def test_a_signature_with_another_secret_does_not_verify(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    [item] = emit(tenant_a)
    deliver(item.pk, 0)

    [request] = receiver.requests
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(signing.new_secret()).verify(request.body, request.headers)


def test_our_signature_is_the_reference_libraries():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'

    ours = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)

    assert ours == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_template_shapes_the_body(receiver, make_hook, tenant_a):
    hook = make_hook(receiver.url, payload_template={"order": "data.number", "event": "type", "nope": "data.x.y"})
    [item] = emit(tenant_a)
    deliver(item.pk, 0)

    [request] = receiver.requests
    assert Webhook(hook.secret).verify(request.body, request.headers) == {
        "order": "1007",
        "event": "order.created",
        "nope": None,
    }


def test_an_attempt_is_made_once_however_often_it_is_queued(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    [item] = emit(tenant_a)

    assert tasks.deliver_hooks([(item.pk, 0), (item.pk, 0)]).count("already taken or done") == 1
    assert len(receiver.requests) == 1


def test_publishing_queues_one_task_per_subscription(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    make_hook(receiver.url)

    publish.publish(tenant_a.pk, HookEvent.ORDER_CREATED, [DATA, DATA, DATA])

    assert HookDelivery.objects.count() == 6
    queued = [q.task for q in OrmQ.objects.all()]
    assert [task["func"] for task in queued] == ["webhooks.tasks.deliver_hooks"] * 2
    assert sorted(len(task["args"][0]) for task in queued) == [3, 3]


# --- Retries -----------------------------------------------------------------------------------------


def test_failures_are_retried_on_the_backoff_schedule_then_fail(receiver, make_hook, tenant_a, settings):
    make_hook(receiver.url)
    receiver.default = (503, "busy", {})
    [item] = emit(tenant_a)
    waits = []

    for attempts in range(len(settings.HOOKS_RETRY_DELAYS)):
        before = timezone.now()
        deliver(item.pk, attempts)
        retry = reload(item)
        assert retry.status == DeliveryStatus.RETRYING and retry.attempts == attempts + 1
        assert retry.response_code == 503 and "503" in retry.error
        waits.append((retry.next_attempt_at - before).total_seconds())
    deliver(item.pk, len(settings.HOOKS_RETRY_DELAYS))

    for wait, planned in zip(waits, [60, 300, 1800, 7200, 18000, 36000, 36000], strict=True):
        assert planned * 0.9 - 1 <= wait <= planned * 1.1 + 1
    assert sum(settings.HOOKS_RETRY_DELAYS) / 3600 == pytest.approx(27.6, abs=0.1)  # about a day
    final = reload(item)
    assert final.status == DeliveryStatus.FAILED and final.attempts == 8 and final.next_attempt_at is None
    assert final.error.startswith("Gave up after 8 attempts.")
    assert len(receiver.requests) == 8
    assert {r.headers["webhook-id"] for r in receiver.requests} == {item.webhook_id}


def test_a_retry_that_succeeds_ends_the_failing_spell(receiver, make_hook, tenant_a):
    hook = make_hook(receiver.url)
    receiver.plan(500)
    [item] = emit(tenant_a)

    deliver(item.pk, 0)
    assert HookSubscription.objects.get(pk=hook.pk).failing_since is not None
    deliver(item.pk, 1)

    assert reload(item).status == DeliveryStatus.SUCCEEDED
    assert HookSubscription.objects.get(pk=hook.pk).failing_since is None


def test_the_sweep_queues_due_retries_once(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    [due, later] = publish.publish(tenant_a.pk, HookEvent.ORDER_CREATED, [DATA, DATA])
    OrmQ.objects.all().delete()
    now = timezone.now()
    HookDelivery.objects.filter(pk=due.pk).update(status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=now)
    HookDelivery.objects.filter(pk=later.pk).update(
        status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=now + timedelta(minutes=4)
    )

    assert tasks.deliver_due_hooks() == "1 deliveries queued, 0 given up"
    assert tasks.deliver_due_hooks() == "0 deliveries queued, 0 given up"

    [queued] = [q.task for q in OrmQ.objects.all()]
    assert queued["args"][0] == [(due.pk, 1)]


def test_the_sweep_requeues_a_delivery_the_queue_lost(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    emit(tenant_a)
    OrmQ.objects.all().delete()  # lost

    assert tasks.deliver_due_hooks() == "0 deliveries queued, 0 given up"
    later = timezone.now() + delivery.REQUEUE_AFTER + timedelta(seconds=1)
    assert delivery.sweep(now=later) == "1 deliveries queued, 0 given up"


def test_the_sweep_fails_a_delivery_whose_last_attempt_died(make_hook, tenant_a, settings):
    make_hook("https://hooks.example.com/x")
    [item] = emit(tenant_a)
    HookDelivery.objects.filter(pk=item.pk).update(
        attempts=len(settings.HOOKS_RETRY_DELAYS) + 1, status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now()
    )

    assert delivery.sweep() == "0 deliveries queued, 1 given up"
    assert reload(item).status == DeliveryStatus.FAILED


def test_a_slow_target_times_out_and_is_retried(receiver, make_hook, tenant_a, settings):
    settings.HOOKS_READ_TIMEOUT = 0.3
    make_hook(receiver.url)
    receiver.delay = 1.0
    [item] = emit(tenant_a)

    deliver(item.pk, 0)

    retry = reload(item)
    assert retry.status == DeliveryStatus.RETRYING
    assert retry.error.startswith("No answer within")


def test_only_the_start_of_a_long_answer_is_kept(receiver, make_hook, tenant_a):
    make_hook(receiver.url)
    receiver.default = (200, "x" * 200_000, {})
    [item] = emit(tenant_a)

    deliver(item.pk, 0)

    done = reload(item)
    assert done.status == DeliveryStatus.SUCCEEDED
    assert done.response_body == "x" * 2048


# --- 410 and switching off ---------------------------------------------------------------------------


def test_410_gone_switches_the_subscription_off_and_cancels_the_rest(receiver, make_hook, tenant_a):
    hook = make_hook(receiver.url)
    receiver.plan(410)
    first, second = publish.publish(tenant_a.pk, HookEvent.ORDER_CREATED, [DATA, DATA])

    deliver(first.pk, 0)
    deliver(second.pk, 0)

    hook.refresh_from_db()
    assert hook.active is False and "410 Gone" in hook.disabled_reason
    assert reload(first).status == DeliveryStatus.FAILED and reload(first).response_code == 410
    assert reload(second).status == DeliveryStatus.CANCELLED
    assert len(receiver.requests) == 1
    assert mail.outbox == []
    assert AuditLog.objects.for_tenant(tenant_a).filter(action="hook.disabled").count() == 1
    assert emit(tenant_a) == []  # nothing more is made for it


def test_a_subscription_failing_for_days_is_switched_off_and_its_owners_told(
    receiver, make_hook, tenant_a, make_member, settings
):
    owner = make_member(tenant_a, Role.OWNER, username="owner@alpha.example")
    make_member(tenant_a, Role.VIEWER, username="viewer@alpha.example")
    days = settings.HOOKS_DISABLE_AFTER_DAYS
    hook = make_hook(receiver.url, failing_since=timezone.now() - timedelta(days=days, minutes=1))
    receiver.default = (500, "", {})
    [item, waiting] = publish.publish(tenant_a.pk, HookEvent.ORDER_CREATED, [DATA, DATA])

    deliver(item.pk, 0)

    hook.refresh_from_db()
    assert hook.active is False
    assert "failed" in hook.disabled_reason and "500" in hook.disabled_reason
    assert reload(waiting).status == DeliveryStatus.CANCELLED
    [message] = mail.outbox
    assert set(message.to) == {tenant_a.contact_email, owner.email}
    assert "127.0.0.1" in message.subject and hook.secret not in message.body
    entry = AuditLog.objects.for_tenant(tenant_a).get(action="hook.disabled")
    assert entry.details["subscription"] == hook.pk


def test_a_subscription_failing_for_less_than_the_limit_stays_on(receiver, make_hook, tenant_a, settings):
    hook = make_hook(receiver.url, failing_since=timezone.now() - timedelta(days=settings.HOOKS_DISABLE_AFTER_DAYS - 1))
    receiver.default = (500, "", {})
    [item] = emit(tenant_a)

    deliver(item.pk, 0)

    hook.refresh_from_db()
    assert hook.active is True and mail.outbox == []


def test_a_delivery_of_a_switched_off_subscription_is_cancelled(receiver, make_hook, tenant_a):
    hook = make_hook(receiver.url)
    [item] = emit(tenant_a)
    HookSubscription.objects.filter(pk=hook.pk).update(active=False)

    assert deliver(item.pk, 0).endswith("cancelled")
    assert receiver.requests == []


# --- The send-time guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "http://a.example/",
    ],
)
def test_a_private_or_plain_http_target_is_refused_at_send_time(make_hook, tenant_a, settings, url):
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    make_hook(url)  # saved past the API's check, e.g. before the rules tightened
    [item] = emit(tenant_a)

    assert "refused" in deliver(item.pk, 0)

    refused = reload(item)
    assert refused.status == DeliveryStatus.FAILED and refused.error.startswith("Refused:")
    assert refused.response_code is None


def test_a_name_that_now_resolves_to_loopback_is_refused_on_the_connected_address(
    receiver, make_hook, tenant_a, settings, monkeypatch
):
    fake_dns(monkeypatch, {"rebind.example.test": "127.0.0.1"})
    settings.INTEGRATIONS_ALLOW_PRIVATE_URLS = False
    make_hook(f"https://rebind.example.test:{receiver.port}/hook")
    [item] = emit(tenant_a)

    deliver(item.pk, 0)

    refused = reload(item)
    assert refused.status == DeliveryStatus.FAILED
    assert "127.0.0.1, a private or loopback address" in refused.error
    assert receiver.requests == []  # connected to, checked, closed before a byte was sent


def test_a_redirect_is_never_followed(receiver, make_hook, tenant_a):
    with HookReceiver().running() as inside:
        make_hook(receiver.url)
        receiver.plan((302, "", {"Location": f"http://127.0.0.1:{inside.port}/admin"}))
        [item] = emit(tenant_a)

        deliver(item.pk, 0)

        assert inside.requests == []
    retry = reload(item)
    assert retry.status == DeliveryStatus.RETRYING and retry.response_code == 302
    assert retry.error == "Redirected to 127.0.0.1; redirects are not followed."
