"""The demo's payments service declares a Jolokia agent (a container port named `jolokia`), so
`make run` offers a Jolokia link to try: deployed to kubesim, its pod gets the link and the
tunnel answers."""

import pytest
from django.contrib.auth.models import User

from deployments import demo
from environments import kube
from environments.models import Environment
from tests import factories
from tests.conftest import login
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.kubesim_only,
]


def test_the_demo_payments_pod_offers_jolokia(alice: User, staging: Environment) -> None:
    service = factories.make_service(
        "payments",
        deployment_template=demo.JOLOKIA_DEPLOYMENT,
        default_variables={"replicas": 1, "region": "eu"},
    )
    assert "payments" in demo.WITH_JOLOKIA
    outcome = deploy(alice, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    items, _ = kube.list_objects(
        staging.cluster, "Pod", staging.namespace, label_selector="apollo.io/service=payments"
    )
    pod = str(items[0]["metadata"]["name"])
    response = login(alice).get(f"/environments/{staging.name}/pods/{pod}/jolokia/")
    assert response.status_code == 200
    assert response.json()["value"]["agent"] == "1.7.2"
