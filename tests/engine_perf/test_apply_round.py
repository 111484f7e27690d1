"""A deployment's documents are applied in one round of concurrent requests (issue #16): every
owner checked at once, then every document sent at once, announced in one timeline write."""

import pytest
from django.contrib.auth.models import User

from environments.models import Environment
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

SERVICE_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  selector: {app: {{service}}}
  ports:
    - port: 80
"""


def test_the_deployment_and_its_service_are_sent_in_one_round_and_end_done(
    bob: User, staging: Environment
) -> None:
    service = factories.make_service("round", service_template=SERVICE_TEMPLATE)
    outcome = deploy(bob, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    deployment = wait_until_terminal(outcome.deployment)
    assert deployment.status == "DONE", deployment.timeline[-5:]
    sending = [e for e in deployment.timeline if e["message"].startswith("sending apply of ")]
    assert sorted(e["message"].split(" (")[0] for e in sending) == [
        "sending apply of Deployment/round",
        "sending apply of Service/round",
    ]
    # Announced together, before either was sent: one timeline write, one moment.
    assert len({e["at"] for e in sending}) == 1
    applied = [e for e in deployment.timeline if e["message"].startswith("applied ")]
    assert len(applied) == 1
    assert "Deployment/round" in applied[0]["message"]
    assert "Service/round" in applied[0]["message"]


def test_a_second_deployment_of_the_same_version_sends_its_own_applies(
    bob: User, staging: Environment
) -> None:
    service = factories.make_service("again", service_template=SERVICE_TEMPLATE)
    version = factories.make_version(service)
    first = deploy(bob, service, staging, version).deployment
    assert first is not None
    assert wait_until_terminal(first).status == "DONE"
    second = deploy(bob, service, staging, version).deployment
    assert second is not None
    second = wait_until_terminal(second)
    assert second.status == "DONE", second.timeline[-5:]
    assert sum(e["message"].startswith("sending apply of ") for e in second.timeline) == 2
