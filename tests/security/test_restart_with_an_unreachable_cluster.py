"""A reported attack on availability: POST /environments/<env>/services/<svc>/restart/ answered
500 when the cluster's connection settings could not be loaded (a kubeconfig file or context
that is gone, in-cluster settings outside a pod): the client's ConfigException escaped every
view. Now it is an unreachable cluster like any other: the page says so and nothing changes."""

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client

from environments.models import Cluster, Environment
from history.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture(params=["missing-kubeconfig", "missing-context", "in-cluster"])
def staging(request: pytest.FixtureRequest, tmp_path: object) -> Environment:
    if request.param == "in-cluster":
        cluster = Cluster.objects.create(name="gone", connection=Cluster.Connection.IN_CLUSTER)
    else:
        cluster = Cluster.objects.create(
            name="gone",
            connection=Cluster.Connection.KUBECONFIG,
            kubeconfig_path="/nonexistent/apollo/kubeconfig",
            kubeconfig_context="no-such-context" if request.param == "missing-context" else "",
        )
    return factories.make_environment("staging", cluster=cluster, availability="staging")


def test_a_rolling_restart_says_the_cluster_cannot_be_reached(
    alice: User, bob: User, staging: Environment
) -> None:
    factories.make_service("web")
    events = AuditEvent.objects.count()
    for user in (alice, bob):
        client = _client(user)
        response = client.post("/environments/staging/services/web/restart/")
        assert response.status_code == 302, (user.username, response.status_code)
        assert response["Location"] == "/environments/staging/"
        texts = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("cannot be loaded" in text for text in texts), texts
    assert AuditEvent.objects.count() == events


def test_the_other_cluster_routes_answer_without_a_500(bob: User, staging: Environment) -> None:
    client = _client(bob)
    for method, url, data in [
        ("get", "/environments/staging/", {}),
        ("get", "/environments/staging/logs/", {"pod": "web-1"}),
        ("post", "/environments/staging/pods/web-1/restart/", {}),
        ("get", "/environments/staging/pods/web-1/shell/", {}),
    ]:
        response = getattr(client, method)(url, data)
        assert response.status_code < 500, (url, response.status_code)
