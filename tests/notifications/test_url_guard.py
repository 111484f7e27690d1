"""The SSRF guard: internal addresses are refused at save time, unless an admin allows a host."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from deployments.notifications import urlguard
from deployments.notifications.models import Subscription
from deployments.notifications.services import save_subscription
from history.models import AuditEvent
from tests.conftest import login

pytestmark = pytest.mark.django_db

UNSAFE = [
    ("https://127.0.0.1/hook", "internal address"),
    ("https://localhost/hook", "internal address"),
    ("https://10.1.2.3/hook", "internal address"),
    ("https://192.168.0.10/hook", "internal address"),
    ("https://172.16.5.4/hook", "internal address"),
    ("https://169.254.169.254/latest/meta-data/", "internal address"),
    ("https://[::1]/hook", "internal address"),
    ("https://[fd00:ec2::254]/hook", "internal address"),
    ("https://[::ffff:127.0.0.1]/hook", "internal address"),
    ("https://0.0.0.0/hook", "internal address"),
    ("https://100.64.0.1/hook", "internal address"),
    ("http://93.184.215.14/hook", "must use https"),
    ("https://user:pw@93.184.215.14/hook", "user name or password"),
    ("ftp://93.184.215.14/hook", "https://host/path"),
    ("https://no-such-host.invalid/hook", "cannot be resolved"),
    ("https://93.184.215.14:99999/", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "why"), UNSAFE)
def test_an_unsafe_url_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(urlguard.UnsafeURL, match=why):
        urlguard.resolve(url)


def test_a_public_address_passes() -> None:
    target = urlguard.resolve("https://93.184.215.14:8443/hook?x=1")
    assert (target.address, target.port, target.path) == ("93.184.215.14", 8443, "/hook?x=1")


def test_an_allowed_host_passes_and_may_use_http(settings: Any) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert urlguard.resolve("http://127.0.0.1:8080/hook").address == "127.0.0.1"
    with pytest.raises(urlguard.UnsafeURL):
        urlguard.resolve("http://10.0.0.1/hook")


def test_the_service_refuses_an_unsafe_url_and_saves_nothing(alice: User) -> None:
    subscription = Subscription(name="bad", kind=Subscription.Kind.SLACK)
    with pytest.raises(ValidationError, match="internal address"):
        save_subscription(actor=alice, subscription=subscription, url="https://169.254.169.254/x")
    assert not Subscription.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="subscription").exists()


def test_the_admin_refuses_an_unsafe_url_at_save_time(alice: User) -> None:
    response = login(alice).post(
        "/admin/notifications/subscription/add/",
        {
            "name": "metadata",
            "kind": "webhook",
            "url": "https://169.254.169.254/latest/meta-data/",
            "secret": "a-long-enough-secret",
            "events": ["done", "failed"],
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "This URL is refused" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_admin_saves_a_safe_url_write_only(alice: User, settings: Any) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    url = "http://127.0.0.1:9/hook/T000/B000/very-secret-path"
    response = login(alice).post(
        "/admin/notifications/subscription/add/",
        {
            "name": "team",
            "kind": "webhook",
            "url": url,
            "secret": "a-long-enough-secret",
            "events": ["done", "failed"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.url, subscription.secret) == (url, "a-long-enough-secret")
    assert subscription.events == ["done", "failed"]
    page = login(alice).get(f"/admin/notifications/subscription/{subscription.pk}/change/")
    html = page.content.decode()
    assert "very-secret-path" not in html
    assert "a-long-enough-secret" not in html
    event = AuditEvent.objects.get(action="subscription.created")
    assert "very-secret-path" not in str(event.summary) + str(event.data)
    assert "a-long-enough-secret" not in str(event.summary) + str(event.data)
    log = login(alice).get(
        f"/admin/notifications/delivery/?subscription__id__exact={subscription.pk}"
    )
    assert log.status_code == 200


def test_a_webhook_without_a_secret_is_refused(alice: User, settings: Any) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    response = login(alice).post(
        "/admin/notifications/subscription/add/",
        {"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/", "events": ["done"]},
    )
    assert "needs a secret" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_subscription_page_shows_its_recent_deliveries(alice: User, settings: Any) -> None:
    from django.utils import timezone

    from deployments.notifications.models import Delivery

    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    subscription = save_subscription(
        actor=alice,
        subscription=Subscription(name="team", kind=Subscription.Kind.SLACK),
        url="http://127.0.0.1:9/hook",
    )
    Delivery.objects.create(
        subscription=subscription,
        event="failed",
        payload={},
        attempts=3,
        response_code=503,
        last_error="the receiver answered 503",
        next_attempt_at=timezone.now(),
    )
    page = login(alice).get(f"/admin/notifications/subscription/{subscription.pk}/change/")
    html = page.content.decode()
    assert "the receiver answered 503" in html
    assert f"subscription__id__exact={subscription.pk}" in html
