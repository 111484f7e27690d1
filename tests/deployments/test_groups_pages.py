"""The group pages: "All groups" on the Deploy page, the batch page (per-group status, cancel one
or all), the service page (groups per environment, management forms, scaling), the groups API."""

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Group, Service
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


@pytest.fixture
def ingest(stage: Environment) -> Service:
    service = factories.make_service("ingest", deployed_per_group=True)
    for name in ("eu", "us", "apac"):
        Group.objects.create(service=service, environment=stage, name=name)
    return service


def _deploy_all(user: User, service: Service, environment: Environment, **extra: Any) -> Any:
    version = factories.make_version(service)
    data = {
        "environments": [environment.pk],
        "services": [service.pk],
        "sha": version.git_commit_sha,
        "all_groups": "on",
        **extra,
    }
    return login(user).post("/deploy/", data, follow=True)


def test_all_groups_deploys_one_deployment_per_group_in_one_batch(
    bob: User, ingest: Service, stage: Environment
) -> None:
    response = _deploy_all(bob, ingest, stage)
    deployments = list(Deployment.objects.order_by("group_key"))
    assert [d.group_key for d in deployments] == ["apac", "eu", "us"]
    assert {d.status for d in deployments} == {Status.PENDING}
    (batch,) = {d.batch for d in deployments}
    assert batch is not None
    assert f"/deployments/batch/{batch}/" in response.content.decode()


def test_a_service_deployed_per_group_without_groups_is_refused_per_item(
    bob: User, ingest: Service, stage: Environment
) -> None:
    response = _deploy_all(bob, ingest, stage, all_groups="")
    assert "is deployed per group: choose one or more groups" in response.content.decode()
    assert not Deployment.objects.exists()


def test_the_batch_page_shows_each_group_and_its_status(
    bob: User, carol: User, ingest: Service, stage: Environment
) -> None:
    _deploy_all(bob, ingest, stage)
    batch = Deployment.objects.first().batch  # type: ignore[union-attr]
    page = login(carol).get(f"/deployments/batch/{batch}/").content.decode()
    for group in ("eu", "us", "apac"):
        assert f'data-group="{group}"' in page
    status = login(carol).get(f"/deployments/batch/{batch}/status/").json()
    assert status["summary"] == {"PENDING": 3}
    assert status["summary_html"] == (
        '<span class="badge status-pending" data-status="PENDING">3 pending</span> '
    )
    assert {row["group"]: row["can_cancel"] for row in status["rows"]} == dict.fromkeys(
        ("apac", "eu", "us"), False
    )
    mine = login(bob).get(f"/deployments/batch/{batch}/status/").json()
    assert all(row["can_cancel"] for row in mine["rows"])


def test_an_unknown_batch_is_404(carol: User) -> None:
    assert login(carol).get(f"/deployments/batch/{uuid.uuid4()}/").status_code == 404


def test_bob_cancels_one_group_and_then_all_the_others(
    bob: User, ingest: Service, stage: Environment
) -> None:
    _deploy_all(bob, ingest, stage)
    us = Deployment.objects.get(group_key="us")
    url = f"/deployments/batch/{us.batch}/cancel/"
    login(bob).post(url, {"deployment": us.pk})
    statuses = dict(Deployment.objects.values_list("group_key", "status"))
    assert statuses == {"us": Status.CANCELED, "eu": Status.PENDING, "apac": Status.PENDING}
    login(bob).post(url, {"all": "1"})
    assert set(Deployment.objects.values_list("status", flat=True)) == {Status.CANCELED}


def test_carol_cannot_cancel_any_group_of_the_batch(
    bob: User, carol: User, ingest: Service, stage: Environment
) -> None:
    _deploy_all(bob, ingest, stage)
    batch = Deployment.objects.first().batch  # type: ignore[union-attr]
    response = login(carol).post(f"/deployments/batch/{batch}/cancel/", {"all": "1"}, follow=True)
    assert "Not cancelled" in response.content.decode()
    assert set(Deployment.objects.values_list("status", flat=True)) == {Status.PENDING}


def test_a_deployment_of_another_batch_is_not_cancelled_through_this_one(
    bob: User, ingest: Service, stage: Environment
) -> None:
    _deploy_all(bob, ingest, stage)
    other = factories.make_deployment(
        service=ingest, environment=stage, deployed_by=bob, status=Status.PENDING
    )
    batch = Deployment.objects.exclude(pk=other.pk).first().batch  # type: ignore[union-attr]
    response = login(bob).post(f"/deployments/batch/{batch}/cancel/", {"deployment": other.pk})
    assert response.status_code == 404


# -- the service page -------------------------------------------------------------------------


def test_carol_sees_the_groups_and_what_they_run_but_no_forms(
    alice: User, carol: User, ingest: Service, stage: Environment
) -> None:
    eu = Group.objects.get(name="eu")
    done = factories.make_deployment(
        service=ingest, environment=stage, deployed_by=alice, group=eu, group_key="eu"
    )
    page = login(carol).get("/services/ingest/").content.decode()
    assert 'data-group="apac"' in page
    assert done.version.git_commit_sha[:12] in page
    assert "Create group" not in page
    assert "/scale/" not in page


def test_alice_sees_the_management_and_scaling_forms(alice: User, ingest: Service) -> None:
    page = login(alice).get("/services/ingest/").content.decode()
    assert "Create group" in page
    assert "/scale/" in page
    assert "Lock scaling" in page


def test_an_unknown_service_is_404(carol: User) -> None:
    assert login(carol).get("/services/nope/").status_code == 404


def test_the_service_page_makes_the_same_queries_for_3_or_10_groups(
    alice: User, ingest: Service, stage: Environment
) -> None:
    client = login(alice)
    client.get("/services/ingest/")  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get("/services/ingest/")
    for n in range(7):
        group = Group.objects.create(service=ingest, environment=stage, name=f"g{n}")
        factories.make_deployment(
            service=ingest, environment=stage, deployed_by=alice, group=group, group_key=group.name
        )
    with CaptureQueriesContext(connection) as many:
        client.get("/services/ingest/")
    assert len(many) == len(few)


def test_alice_creates_edits_locks_and_removes_a_group_on_the_service_page(
    alice: User, ingest: Service, stage: Environment
) -> None:
    client = login(alice)
    response = client.post(
        "/services/ingest/groups/",
        {
            "environment": stage.pk,
            "name": "latam",
            "scaling_factor": 2,
            "variables": '{"shard": "latam-1"}',
        },
        follow=True,
    )
    assert "Group latam created" in response.content.decode()
    latam = Group.objects.get(name="latam")
    client.post(
        f"/services/ingest/groups/{latam.pk}/",
        {
            "variables": '{"shard": "latam-2"}',
            "scaling_locked": "on",
            "scaling_lock_reason": "migration",
        },
    )
    latam.refresh_from_db()
    assert (latam.variables, latam.scaling_locked) == ({"shard": "latam-2"}, True)
    response = client.post(
        f"/services/ingest/groups/{latam.pk}/scale/", {"replicas": 3}, follow=True
    )
    assert "locked: migration" in response.content.decode()
    client.post(f"/services/ingest/groups/{latam.pk}/delete/")
    assert not Group.objects.filter(name="latam").exists()


def test_variables_that_are_not_strings_are_refused_on_the_service_page(
    alice: User, ingest: Service, stage: Environment
) -> None:
    response = login(alice).post(
        "/services/ingest/groups/",
        {"environment": stage.pk, "name": "latam", "scaling_factor": 1, "variables": '{"n": 1}'},
        follow=True,
    )
    assert "must be strings" in response.content.decode()
    assert not Group.objects.filter(name="latam").exists()


def test_it_refuses_deeply_nested_variables_without_failing(
    carol: User, ingest: Service, stage: Environment
) -> None:
    # carol views ingest (so the form is read) and manages nothing.
    response = login(carol).post(
        "/services/ingest/groups/",
        {"environment": stage.pk, "name": "latam", "scaling_factor": 1, "variables": "[" * 5000},
    )
    assert response.status_code == 302
    assert not Group.objects.filter(name="latam").exists()


def test_mallory_cannot_create_or_scale_a_group(
    mallory: User, ingest: Service, stage: Environment
) -> None:
    client = login(mallory)
    client.post(
        "/services/ingest/groups/",
        {"environment": stage.pk, "name": "latam", "scaling_factor": 1, "variables": "{}"},
    )
    eu = Group.objects.get(name="eu")
    response = client.post(f"/services/ingest/groups/{eu.pk}/scale/", {"replicas": 4})
    # She may not view ingest: its groups' actions are a 404, as its page is.
    assert response.status_code == 404
    eu.refresh_from_db()
    assert eu.scaling_factor == 1
    assert not Group.objects.filter(name="latam").exists()


def test_bob_sets_the_scaling_factor_of_a_group_not_deployed_yet(
    bob: User, ingest: Service
) -> None:
    eu = Group.objects.get(name="eu")
    response = login(bob).post(
        f"/services/ingest/groups/{eu.pk}/scale/", {"replicas": 4}, follow=True
    )
    assert "scaled to 4" in response.content.decode()
    eu.refresh_from_db()
    assert eu.scaling_factor == 4


# -- the API ----------------------------------------------------------------------------------


def test_the_api_lists_the_groups_of_a_service_in_an_environment(
    carol: User, ingest: Service, stage: Environment
) -> None:
    factories.make_environment("other")
    key = factories.token_for(carol)
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    body = api.get("/api/v1/groups/", {"service": "ingest", "environment": "stage-1"}).json()
    assert [g["name"] for g in body] == ["apac", "eu", "us"]
    assert body[0]["service"] == "ingest"
    assert body[0]["environment"] == "stage-1"
    assert body[0]["running_sha"] is None
    assert api.get("/api/v1/groups/", {"environment": "other"}).json() == []


def test_the_groups_api_needs_a_token() -> None:
    assert Client().get("/api/v1/groups/").status_code == 401


def _finished_batch(user: User, service: Service, environment: Environment) -> list[Deployment]:
    old, new = factories.make_version(service), factories.make_version(service)
    batch = uuid.uuid4()
    return [
        factories.make_deployment(
            service=service,
            environment=environment,
            deployed_by=user,
            group=group,
            group_key=group.name,
            version=new,
            source_version=old,
            batch=batch,
        )
        for group in Group.objects.filter(service=service).order_by("name")
    ]


def test_bob_reverts_one_group_to_the_version_that_ran_before(
    bob: User, ingest: Service, stage: Environment
) -> None:
    _apac, eu, _us = _finished_batch(bob, ingest, stage)
    response = login(bob).post(f"/deployments/batch/{eu.batch}/revert/", {"deployment": eu.pk})
    revert = Deployment.objects.get(status=Status.PENDING)
    assert (revert.group_key, revert.version) == ("eu", eu.source_version)
    assert revert.message == f"Revert of #{eu.pk}"
    assert revert.batch not in (None, eu.batch)
    assert response["Location"] == f"/deployments/batch/{revert.batch}/"


def test_revert_all_cancels_the_running_and_redeploys_the_finished(
    bob: User, ingest: Service, stage: Environment
) -> None:
    _apac, eu, us = _finished_batch(bob, ingest, stage)
    Deployment.objects.filter(pk=us.pk).update(status=Status.PENDING)
    login(bob).post(f"/deployments/batch/{eu.batch}/revert/", {"all": "1"})
    us.refresh_from_db()
    assert us.status == Status.CANCELED
    reverts = Deployment.objects.filter(message__startswith="Revert of")
    assert sorted(reverts.values_list("group_key", flat=True)) == ["apac", "eu"]
    assert {r.version_id for r in reverts} == {eu.source_version_id}


def test_carol_cannot_revert(carol: User, bob: User, ingest: Service, stage: Environment) -> None:
    _apac, eu, _us = _finished_batch(bob, ingest, stage)
    response = login(carol).post(
        f"/deployments/batch/{eu.batch}/revert/", {"all": "1"}, follow=True
    )
    assert "Not reverted" in response.content.decode()
    assert not Deployment.objects.filter(message__startswith="Revert of").exists()


def test_the_batch_page_makes_the_same_queries_for_3_or_10_groups(
    bob: User, ingest: Service, stage: Environment
) -> None:
    client = login(bob)
    few_batch = _finished_batch(bob, ingest, stage)[0].batch
    for n in range(7):
        Group.objects.create(service=ingest, environment=stage, name=f"g{n}")
    many_batch = _finished_batch(bob, ingest, stage)[0].batch
    client.get(f"/deployments/batch/{few_batch}/")  # warm the session
    counts = []
    for batch in (few_batch, many_batch):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/deployments/batch/{batch}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_schema_documents_the_groups_operation(carol: User) -> None:
    paths = login(carol).get("/api/v1/schema/?format=json").json()["paths"]
    groups = paths["/api/v1/groups/"]
    assert set(groups) == {"get"}
    assert {p["name"] for p in groups["get"]["parameters"]} == {"service", "environment"}


def test_the_environment_page_refuses_to_scale_a_locked_group(
    bob: User, alice: User, ingest: Service, stage: Environment
) -> None:
    from deployments.services.groups import update_group

    eu = Group.objects.get(name="eu")
    update_group(user=alice, group=eu, scaling_locked=True, scaling_lock_reason="peak")
    response = login(bob).post(
        f"/environments/{stage.name}/groups/{eu.pk}/scale/", {"replicas": 4}, follow=True
    )
    assert "Cannot scale: scaling of ingest/eu in stage-1 is locked: peak" in (
        response.content.decode()
    )
    eu.refresh_from_db()
    assert eu.scaling_factor == 1


@pytest.mark.parametrize("posted", ["abc", "-1", "51", "4.5", ""])
def test_the_environment_page_explains_a_replica_count_out_of_range(
    bob: User, ingest: Service, stage: Environment, posted: str
) -> None:
    # One scaling service, one limit (MAX_SCALING_FACTOR): the page's message names it.
    eu = Group.objects.get(name="eu")
    response = login(bob).post(
        f"/environments/{stage.name}/groups/{eu.pk}/scale/", {"replicas": posted}, follow=True
    )
    assert "Cannot scale: replicas must be between 0 and 50" in response.content.decode()
    eu.refresh_from_db()
    assert eu.scaling_factor == 1


def test_carol_cannot_scale_from_the_environment_page_whatever_she_posts(
    carol: User, ingest: Service, stage: Environment
) -> None:
    eu = Group.objects.get(name="eu")
    for posted in ("4", "abc"):
        response = login(carol).post(
            f"/environments/{stage.name}/groups/{eu.pk}/scale/", {"replicas": posted}
        )
        assert response.status_code == 403
    eu.refresh_from_db()
    assert eu.scaling_factor == 1


def test_the_history_filters_by_group(alice: User, ingest: Service, stage: Environment) -> None:
    for name in ("eu", "us"):
        factories.make_deployment(
            service=ingest,
            environment=stage,
            deployed_by=alice,
            group=Group.objects.get(name=name),
            group_key=name,
            message=f"to {name}",
        )
    page = login(alice).get("/history/", {"service": "ingest", "group": "us"}).content.decode()
    assert "to us" in page
    assert "to eu" not in page


def test_the_service_page_links_deploying_one_group_or_all_and_the_deploy_page_preselects(
    bob: User, ingest: Service, stage: Environment
) -> None:
    eu = Group.objects.get(name="eu")
    page = login(bob).get("/services/ingest/").content.decode()
    one = f"/deploy/?services={ingest.pk}&amp;environments={stage.pk}&amp;groups={eu.pk}"
    assert one in page
    assert f"environments={stage.pk}&amp;all_groups=1" in page
    deploy = (
        login(bob)
        .get("/deploy/", {"services": ingest.pk, "environments": stage.pk, "groups": eu.pk})
        .content.decode()
    )
    assert re.search(
        rf'<input type="checkbox" name="groups" value="{eu.pk}" id="id_groups_\d+" checked '
        rf'data-service="{ingest.pk}"',
        deploy,
    )
    everything = login(bob).get("/deploy/", {"all_groups": "1"}).content.decode()
    assert (
        'name="all_groups" aria-describedby="id_all_groups_helptext" id="id_all_groups" checked'
        in (everything)
    )


def test_the_environment_page_shows_a_locked_group_instead_of_its_scale_form(
    alice: User, ingest: Service, stage: Environment
) -> None:
    from deployments.services.groups import update_group
    from environments.live.actions import ServiceGate
    from environments.live.consumers import render_state
    from environments.live.state import build_status, load_records, running_targets
    from permissions.verbs import Verb

    update_group(
        user=alice,
        group=Group.objects.get(name="eu"),
        scaling_locked=True,
        scaling_lock_reason="peak",
    )
    labels = {"apollo.io/service": "ingest", "apollo.io/commit-sha": "a" * 40}
    deployments = [
        {
            "metadata": {"name": f"ingest-{g}", "labels": {**labels, "apollo.io/group": g}},
            "spec": {"replicas": 1},
            "status": {},
        }
        for g in ("eu", "us")
    ]
    records = load_records(stage.pk, running_targets(deployments))
    state = build_status(
        environment=stage, deployments=deployments, pods=[], records=records, reachable=True
    )
    locked = {e["group"]: e["scaling_locked"] for e in state["services"]}
    assert locked == {"eu": True, "us": False}
    html = render_state(state, stage, {"ingest": ServiceGate.allowing(Verb.RESTART)})
    # Scale is disabled with the words the service refuses with (scaling_refusal).
    assert "scaling of ingest/eu in stage-1 is locked: peak" in html
    assert html.count("/scale/") == 1  # us only
