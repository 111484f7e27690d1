"""The environment page and its POST actions (restart a pod, rolling restart, scale a group),
LiveTail and shell pages: permission per persona, no Kubernetes call for the page, history."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Group
from environments import kube
from environments.live.watcher import wait_for as wait_until
from environments.models import Environment
from history.models import AuditEvent
from tests import factories
from tests.conftest import login
from tests.environments.sockets import deployed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
PERSONAS = ["alice", "bob", "carol", "mallory"]
ACTORS = {"alice", "bob"}  # may restart in staging


def _pods(environment: Environment, service: str = "web") -> list[Any]:
    items, _ = kube.list_objects(
        environment.cluster,
        "Pod",
        environment.namespace,
        label_selector=f"apollo.io/service={service}",
    )
    return [i for i in items if not i["metadata"].get("deletionTimestamp")]


def _forbid_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page must not call Kubernetes")

    for name in ("list_objects", "read_pod", "WatchStream", "read_deployment"):
        monkeypatch.setattr(kube, name, refuse)


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_every_persona_who_may_view_views_the_page_without_a_kubernetes_call(
    personas: dict[str, User], persona: str, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_kubernetes(monkeypatch)
    response = login(personas[persona]).get(f"/environments/{staging.name}/")
    assert response.status_code == 200
    assert f'data-ws="/ws/environments/{staging.name}/status/"' in response.content.decode()


def test_the_page_is_404_for_mallory_who_may_view_nothing_there(
    mallory: User, staging: Environment
) -> None:
    assert login(mallory).get(f"/environments/{staging.name}/").status_code == 404


def test_the_page_sends_anonymous_visitors_to_log_in(client: Client, staging: Environment) -> None:
    assert client.get(f"/environments/{staging.name}/").status_code == 302


def test_the_page_answers_404_for_an_unknown_environment(alice: User) -> None:
    assert login(alice).get("/environments/nowhere/").status_code == 404


def test_its_query_count_does_not_grow_with_environments(alice: User) -> None:
    environment = factories.make_environment("qa")
    with CaptureQueriesContext(connection) as few:
        login(alice).get(f"/environments/{environment.name}/")
    for _ in range(5):
        factories.make_environment()
    with CaptureQueriesContext(connection) as many:
        login(alice).get(f"/environments/{environment.name}/")
    assert len(many) == len(few)


def test_the_list_links_each_environment_to_its_page(alice: User, staging: Environment) -> None:
    page = login(alice).get("/environments/").content.decode()
    assert f'href="/environments/{staging.name}/"' in page


@pytest.mark.parametrize("persona", PERSONAS)
def test_restarting_a_pod_is_for_personas_who_may_restart(
    personas: dict[str, User], persona: str, staging: Environment
) -> None:
    deployed(personas["alice"], staging, "web", replicas=1)
    pod = _pods(staging)[0]["metadata"]["name"]
    response = login(personas[persona]).post(f"/environments/{staging.name}/pods/{pod}/restart/")
    names = [p["metadata"]["name"] for p in _pods(staging)]
    if persona in ACTORS:
        assert response.status_code == 302
        assert pod not in names
        event = AuditEvent.objects.get(action="pod.restarted")
        assert event.actor_name == persona
        assert event.data["pod"] == pod
    else:
        assert response.status_code == 403
        assert pod in names
        assert not AuditEvent.objects.filter(action="pod.restarted").exists()


def test_restart_needs_a_post(bob: User, staging: Environment) -> None:
    assert login(bob).get(f"/environments/{staging.name}/pods/x/restart/").status_code == 405


def test_restarting_an_unknown_pod_is_404(bob: User, staging: Environment) -> None:
    response = login(bob).post(f"/environments/{staging.name}/pods/nope/restart/")
    assert response.status_code == 404


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_rolling_restart_stamps_the_pod_template(
    personas: dict[str, User], persona: str, staging: Environment
) -> None:
    deployed(personas["alice"], staging, "web", replicas=1)
    response = login(personas[persona]).post(f"/environments/{staging.name}/services/web/restart/")
    live = kube.read_deployment(staging.cluster, staging.namespace, "web")
    assert live is not None
    annotations = live["spec"]["template"]["metadata"].get("annotations") or {}
    if persona in ACTORS:
        assert response.status_code == 302
        assert kube.RESTARTED_AT in annotations
        assert AuditEvent.objects.filter(action="service.restarted", actor_name=persona).exists()
    else:
        assert response.status_code == 403
        assert kube.RESTARTED_AT not in annotations


@pytest.mark.parametrize("persona", PERSONAS)
def test_scaling_a_group_sets_replicas_and_the_scaling_factor(
    personas: dict[str, User], persona: str, staging: Environment
) -> None:
    from deployments.services.deploy import request_deployment
    from tests.kubeenv import wait_until_terminal

    service = factories.make_service("shard", deployed_per_group=True)
    group = Group.objects.create(service=service, environment=staging, name="blue")
    version = factories.make_version(service)
    outcome = request_deployment(
        user=personas["alice"], service=service, environment=staging, version=version, group=group
    )
    assert outcome.deployment is not None, outcome.reason
    wait_until_terminal(outcome.deployment)
    response = login(personas[persona]).post(
        f"/environments/{staging.name}/groups/{group.pk}/scale/", {"replicas": "3"}
    )
    live = kube.read_deployment(staging.cluster, staging.namespace, "shard-blue")
    assert live is not None
    group.refresh_from_db()
    if persona in ACTORS:
        assert response.status_code == 302
        assert live["spec"]["replicas"] == 3
        assert group.scaling_factor == 3
        assert AuditEvent.objects.filter(action="group.scaled").exists()
    else:
        assert response.status_code == 403
        assert live["spec"]["replicas"] == 1
        assert group.scaling_factor == 1


def test_scaling_refuses_a_silly_number(bob: User, staging: Environment) -> None:
    service = factories.make_service("shard")
    group = Group.objects.create(service=service, environment=staging, name="blue")
    response = login(bob).post(
        f"/environments/{staging.name}/groups/{group.pk}/scale/", {"replicas": "5000"}
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="group.scaled").exists()


@pytest.mark.parametrize(
    ("persona", "status"), [("alice", 200), ("bob", 200), ("carol", 200), ("mallory", 403)]
)
def test_the_logs_page_needs_view_logs(
    personas: dict[str, User], persona: str, status: int, staging: Environment
) -> None:
    deployed(personas["alice"], staging, "web", replicas=1)
    pod = _pods(staging)[0]["metadata"]["name"]
    client = login(personas[persona])
    assert client.get(f"/environments/{staging.name}/logs/?service=web").status_code == status
    assert client.get(f"/environments/{staging.name}/logs/?pod={pod}").status_code == status


@pytest.mark.parametrize(
    ("persona", "status"), [("alice", 200), ("bob", 403), ("carol", 403), ("mallory", 403)]
)
def test_the_shell_page_needs_exec(
    personas: dict[str, User], persona: str, status: int, staging: Environment
) -> None:
    deployed(personas["alice"], staging, "web", replicas=1)
    pod = _pods(staging)[0]["metadata"]["name"]
    response = login(personas[persona]).get(f"/environments/{staging.name}/pods/{pod}/shell/")
    assert response.status_code == status
    if status == 200:
        assert "vendor/xterm-5.5.0/xterm.js" in response.content.decode()


def test_anonymous_is_sent_to_log_in_from_every_route(client: Client, staging: Environment) -> None:
    base = f"/environments/{staging.name}"
    for url in (f"{base}/logs/?service=web", f"{base}/pods/p/shell/", f"{base}/pods/p/jolokia/"):
        assert client.get(url).status_code == 302, url
    for url in (
        f"{base}/pods/p/restart/",
        f"{base}/services/web/restart/",
        f"{base}/groups/1/scale/",
    ):
        assert client.post(url).status_code == 302, url


def test_a_restarted_pod_is_replaced(bob: User, staging: Environment) -> None:
    deployed(bob, staging, "web", replicas=1)
    pod = _pods(staging)[0]["metadata"]["name"]
    login(bob).post(f"/environments/{staging.name}/pods/{pod}/restart/")
    assert wait_until(lambda: any(p["metadata"]["name"] != pod for p in _pods(staging)), 15)
