"""The service and environment filters are answered from the options the form read: no second
query for the one chosen, a new or renamed environment filters at once, and a name the reader
may not view is refused as an unknown one."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _shown(html: str) -> list[str]:
    return [m for m in ("msg-prod", "msg-stage") if m in html]


@pytest.fixture
def two_environments(alice: User) -> tuple[Environment, Environment]:
    service = factories.make_service("checkout")
    prod = factories.make_environment("prod", availability="production")
    stage = factories.make_environment("stage", namespace="stage")
    for env in (prod, stage):
        factories.make_deployment(
            service=service, environment=env, deployed_by=alice, message=f"msg-{env.name}"
        )
    return prod, stage


def test_the_chosen_environment_is_not_read_again_by_name(
    alice: User, two_environments: tuple[Environment, Environment]
) -> None:
    client = login(alice)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/history/?environment=stage&service=checkout").content.decode()

    assert _shown(html) == ["msg-stage"]
    by_name = [q["sql"] for q in queries if '."name" = ' in q["sql"]]
    assert by_name == []


def test_a_new_or_renamed_environment_filters_at_once(
    alice: User, two_environments: tuple[Environment, Environment]
) -> None:
    prod, _ = two_environments
    client = login(alice)
    assert _shown(client.get("/history/?environment=prod").content.decode()) == ["msg-prod"]

    Environment.objects.filter(pk=prod.pk).update(name="live")
    renamed = client.get("/history/?environment=live").content.decode()
    old_name = client.get("/history/?environment=prod").content.decode()

    assert _shown(renamed) == ["msg-prod"]
    assert "Select a valid choice. That choice is not one of the available choices." in old_name
    assert _shown(old_name) == []


def test_an_environment_the_reader_may_not_view_is_refused_as_unknown(
    mallory: User, two_environments: tuple[Environment, Environment]
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], availability="staging", note="test")
    client = login(mallory)

    refused = client.get("/history/?environment=prod").content.decode()
    unknown = client.get("/history/?environment=nowhere").content.decode()

    assert "Select a valid choice. That choice is not one of the available choices." in refused
    assert "Select a valid choice. That choice is not one of the available choices." in unknown
    assert _shown(refused) == _shown(unknown) == []
    assert _shown(client.get("/history/?environment=stage").content.decode()) == ["msg-stage"]
