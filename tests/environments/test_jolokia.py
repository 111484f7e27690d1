"""The Jolokia tunnel through the API server's pod proxy: permission per persona, method and
size limits, and pods that declare no Jolokia port."""

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from environments import kube
from environments.models import Environment
from kubesim.testing import ControlClient
from tests import factories
from tests.conftest import login
from tests.kubeenv import deploy, wait_until_terminal

# The pod proxy's Jolokia agent is simulated by kubesim only (see kubesim/README.md).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.kubesim_only,
]

JAVA_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
      annotations: {apollo.io/jolokia-port: "8778"}
    spec:
      containers:
        - name: app
          image: {{image}}
"""


def _runs_a_jolokia_agent(environment: Environment, image: str, port: int) -> None:
    """The image is a JVM started with a Jolokia agent on `port` (an image behaviour of kubesim:
    the pod's annotation only tells Apollo where the agent listens)."""
    cluster = environment.cluster
    control = ControlClient(cluster.api_url, cluster.get_token(), cluster.ca_certificate)
    control.call("images", {"image": image, "behaviour": "ok", "jolokiaPort": port})


def _java_pod(user: User, environment: Environment, template: str = JAVA_TEMPLATE) -> str:
    service = factories.make_service("billing", deployment_template=template)
    version = factories.make_version(service)
    _runs_a_jolokia_agent(environment, f"{service.image_repository}:{version.git_commit_sha}", 8778)
    outcome = deploy(user, service, environment, version)
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    items, _ = kube.list_objects(
        environment.cluster,
        "Pod",
        environment.namespace,
        label_selector="apollo.io/service=billing",
    )
    return str(items[0]["metadata"]["name"])


def _url(environment: Environment, pod: str, path: str = "") -> str:
    return f"/environments/{environment.name}/pods/{pod}/jolokia/{path}"


@pytest.mark.parametrize(
    ("persona", "status"), [("alice", 200), ("bob", 200), ("carol", 200), ("mallory", 403)]
)
def test_reading_an_mbean_needs_view_logs(
    personas: dict[str, User], persona: str, status: int, staging: Environment
) -> None:
    pod = _java_pod(personas["alice"], staging)
    client = login(personas[persona])
    response = client.get(_url(staging, pod, "read/java.lang:type=Memory/HeapMemoryUsage"))
    assert response.status_code == status
    if status == 200:
        assert response.json()["value"]["max"] == 1073741824
        assert client.get(_url(staging, pod)).json()["value"]["agent"] == "1.7.2"


def test_a_post_of_read_requests_passes(bob: User, staging: Environment) -> None:
    pod = _java_pod(bob, staging)
    body = [
        {"type": "read", "mbean": "java.lang:type=Runtime", "attribute": "VmName"},
        {"type": "version"},
    ]
    response = login(bob).post(
        _url(staging, pod), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    assert [item["status"] for item in response.json()] == [200, 200]


def test_an_exec_request_needs_restart_as_well(
    bob: User, carol: User, staging: Environment
) -> None:
    from permissions.services import grant
    from permissions.verbs import Verb

    pod = _java_pod(bob, staging)
    grant(actor=None, user=carol, verbs=[Verb.VIEW_LOGS], availability="staging")
    body = json.dumps({"type": "exec", "mbean": "java.lang:type=Memory", "operation": "gc"})
    assert (
        login(carol).post(_url(staging, pod), body, content_type="application/json").status_code
        == 403
    )
    assert (
        login(bob).post(_url(staging, pod), body, content_type="application/json").status_code
        == 200
    )


def test_other_methods_and_large_or_bad_bodies_are_refused(
    bob: User, staging: Environment, settings: object
) -> None:
    pod = _java_pod(bob, staging)
    client = login(bob)
    assert client.put(_url(staging, pod)).status_code == 405
    assert client.delete(_url(staging, pod)).status_code == 405
    big = json.dumps({"type": "version", "pad": "x" * 70_000})
    assert client.post(_url(staging, pod), big, content_type="application/json").status_code == 413
    assert (
        client.post(_url(staging, pod), "not json", content_type="application/json").status_code
        == 400
    )


def test_csrf_is_required_for_a_post(bob: User, staging: Environment) -> None:
    pod = _java_pod(bob, staging)
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(_url(staging, pod), "{}", content_type="application/json")
    assert response.status_code == 403


def test_a_pod_without_a_jolokia_port_is_404(bob: User, staging: Environment) -> None:
    pod = _java_pod(bob, staging, template=factories.DEPLOYMENT_TEMPLATE)
    assert login(bob).get(_url(staging, pod, "version")).status_code == 404


def test_anonymous_is_sent_to_log_in(client: Client, staging: Environment) -> None:
    assert client.get(_url(staging, "any", "version")).status_code == 302


def test_it_refuses_a_get_exec_or_write_without_restart(
    bob: User, carol: User, staging: Environment
) -> None:
    from permissions.services import grant
    from permissions.verbs import Verb

    pod = _java_pod(bob, staging)
    grant(actor=None, user=carol, verbs=[Verb.VIEW_LOGS], availability="staging")
    client = login(carol)
    assert client.get(_url(staging, pod, "exec/java.lang:type=Memory/gc")).status_code == 403
    assert client.get(_url(staging, pod, "EXEC/java.lang:type=Memory/gc")).status_code == 403
    assert (
        client.get(_url(staging, pod, "write/java.lang:type=Memory/Verbose/true")).status_code
        == 403
    )
    assert (
        client.get(_url(staging, pod), {"p": "/exec/java.lang:type=Memory/gc"}).status_code == 403
    )
    assert client.get(_url(staging, pod, "exec;x=1/java.lang:type=Memory/gc")).status_code == 403
    # Not a Jolokia type Apollo lets through at all.
    assert client.get(_url(staging, pod, "notification/register")).status_code == 400
    query = "p=/exec/java.lang:type=Memory/gc&p=/read/java.lang:type=Memory"
    assert client.get(f"{_url(staging, pod)}?{query}").status_code == 403
    assert client.get(_url(staging, pod, "read/java.lang:type=Memory")).status_code == 200
    assert login(bob).get(_url(staging, pod, "exec/java.lang:type=Memory/gc")).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["../../../../secrets", "..%2F..%2F..%2F..%2Fsecrets", "read/./../../x", "%2E%2E/x", "..;/x"],
)
def test_it_refuses_a_path_that_climbs_out_of_the_jolokia_endpoint(
    bob: User, staging: Environment, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = _java_pod(bob, staging)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the proxy must not be called")

    monkeypatch.setattr(kube, "proxy_pod", forbidden)
    response = login(bob).get(_url(staging, pod, path))
    assert response.status_code == 400


def test_it_answers_400_to_a_deeply_nested_body(bob: User, staging: Environment) -> None:
    response = login(bob).post(_url(staging, "any"), "[" * 5000, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("annotation", ["²", "99999", "0", "x"])
def test_it_ignores_an_annotation_that_is_not_a_port_number(annotation: str) -> None:
    from environments.live.state import jolokia_port

    pod = {"metadata": {"annotations": {"apollo.io/jolokia-port": annotation}}, "spec": {}}
    assert jolokia_port(pod) is None
