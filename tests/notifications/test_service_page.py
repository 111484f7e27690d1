"""The notifications section of a service page: manage holders only, their environments only."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages

from deployments.models import Service
from deployments.notifications.models import Subscription
from deployments.notifications.services import save_subscription
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
URL = "/services/checkout/notifications/"


@pytest.fixture(autouse=True)
def _receiver_allowed(settings: Any) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def form(**extra: Any) -> dict[str, Any]:
    return {
        "name": "team",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/hook/secret-path",
        "secret": "a-long-enough-secret",
        "events": ["done", "failed"],
        **extra,
    }


def said(response: Any) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request)]


def test_alice_adds_and_removes_notifications_on_the_service_page(
    alice: User, checkout: Service, staging: Environment, production: Environment
) -> None:
    client = login(alice)
    page = client.get("/services/checkout/").content.decode()
    assert 'id="notifications"' in page
    response = client.post(URL, form())
    assert response.status_code == 302
    assert response["Location"] == "/services/checkout/"
    subscription = Subscription.objects.get()
    assert (subscription.service, subscription.environment) == (checkout, None)
    assert subscription.events == ["done", "failed"]
    page = client.get("/services/checkout/").content.decode()
    assert "127.0.0.1" in page
    assert "secret-path" not in page
    assert "a-long-enough-secret" not in page
    client.post(f"{URL}{subscription.pk}/delete/")
    assert not Subscription.objects.exists()


def test_an_unsafe_url_is_refused_with_the_reason_and_nothing_is_saved(
    alice: User, checkout: Service, staging: Environment
) -> None:
    response = login(alice).post(URL, form(url="https://169.254.169.254/latest/"))
    assert response.status_code == 302
    assert "internal address" in " ".join(said(response))
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("persona", ["bob", "carol"])
def test_viewers_without_manage_see_no_section_and_are_refused(
    persona: str, request: Any, checkout: Service, staging: Environment
) -> None:
    user = request.getfixturevalue(persona)
    client = login(user)
    page = client.get("/services/checkout/")
    assert page.status_code == 200
    assert 'id="notifications"' not in page.content.decode()
    response = client.post(URL, form(environment=staging.pk))
    assert response["Location"] == "/services/checkout/"
    assert "may not manage" in " ".join(said(response))
    assert not Subscription.objects.exists()


def test_mallory_gets_a_404(mallory: User, checkout: Service, staging: Environment) -> None:
    assert login(mallory).post(URL, form()).status_code == 404
    assert login(mallory).post(f"{URL}1/delete/").status_code == 404
    assert not Subscription.objects.exists()


def test_a_manager_of_one_environment_subscribes_there_only(
    alice: User, checkout: Service, staging: Environment, production: Environment
) -> None:
    dave = factories.make_user("dave")
    grant(actor=None, user=dave, verbs=[Verb.MANAGE], service=checkout, environment=staging)
    client = login(dave)
    page = client.get("/services/checkout/").content.decode()
    assert "every environment</option>" not in page
    assert f'value="{production.pk}"' not in page
    refused = client.post(URL, form())  # every environment
    assert "may not manage" in " ".join(said(refused))
    refused = client.post(URL, form(environment=production.pk))
    assert "may not manage" in " ".join(said(refused))
    assert not Subscription.objects.exists()
    client.post(URL, form(environment=staging.pk))
    assert Subscription.objects.get().environment == staging
    theirs = save_subscription(
        actor=alice,
        subscription=Subscription(
            name="prod", kind="slack", service=checkout, environment=production
        ),
        url="http://127.0.0.1:9/p",
    )
    refused = client.post(f"{URL}{theirs.pk}/delete/")
    assert "may not manage" in " ".join(said(refused))
    assert Subscription.objects.filter(pk=theirs.pk).exists()
