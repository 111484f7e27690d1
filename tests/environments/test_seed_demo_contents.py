"""What `manage.py seed_demo` creates: environments, services, versions, groups, personas, grants;
and that running it again changes nothing but the personas' passwords."""

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client

from deployments.manifests import render_for
from deployments.models import DeployableVersion, Group, Service
from environments.models import Cluster, Environment
from history.models import AuditEvent
from permissions.models import ApiToken, Grant
from permissions.services import can
from permissions.tokens import user_for_key
from permissions.verbs import Verb

pytestmark = pytest.mark.django_db

SERVICES = {"checkout", "catalog", "payments", "legacy-missing", "ingest"}
INGEST_REPLICAS = {
    "staging": {"eu": 2, "us": 2, "apac": 1},
    "production": {"eu": 3, "us": 3, "apac": 2},
}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded() -> None:
    _seed()


def _env(name: str) -> Environment:
    return Environment.objects.select_related("cluster").get(name=name)


@pytest.mark.usefixtures("seeded")
def test_staging_and_production_share_the_kubesim_cluster_in_their_own_namespaces() -> None:
    staging, production = _env("staging"), _env("production")
    assert staging.cluster == production.cluster
    assert staging.cluster.name == "kubesim"
    assert staging.cluster.connection == Cluster.Connection.KUBECONFIG
    assert staging.cluster.kubeconfig_context == "kubesim"
    assert (staging.namespace, staging.availability) == ("staging", "staging")
    assert (production.namespace, production.availability) == ("production", "production")
    assert production.node_port_coefficient == 100
    assert production.require_deployment_message is True
    assert staging.node_port_coefficient == 0
    assert staging.require_deployment_message is False


@pytest.mark.usefixtures("seeded")
def test_every_service_has_templates_and_four_registered_versions() -> None:
    services = {s.name: s for s in Service.objects.all()}
    assert set(services) == SERVICES
    for service in services.values():
        assert "kind: Deployment" in service.deployment_template
        assert "kind: Service" in service.service_template
        versions = DeployableVersion.objects.filter(service=service)
        assert versions.count() == 4
        for version in versions:
            assert len(version.git_commit_sha) == 40
            assert int(version.git_commit_sha, 16) >= 0
            assert version.commit_author
            assert version.commit_message
            assert version.branch
            assert version.commit_url.endswith(version.git_commit_sha)
    assert "kind: Ingress" in services["checkout"].ingress_template
    assert services["catalog"].ingress_template == ""


@pytest.mark.usefixtures("seeded")
def test_the_templates_render_and_production_node_ports_are_shifted_by_100() -> None:
    checkout = Service.objects.get(name="checkout")
    version = DeployableVersion.objects.filter(service=checkout).first()
    assert version is not None
    ports = {}
    for name in ("staging", "production"):
        documents = render_for(
            service=checkout, environment=_env(name), version=version, group=None
        )
        kinds = {d["kind"]: d for d in documents}
        assert set(kinds) == {"Deployment", "Service", "Ingress"}
        container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"registry.example.com/shop/checkout:{version.git_commit_sha}"
        ports[name] = kinds["Service"]["spec"]["ports"][0]["nodePort"]
    assert ports == {"staging": 30080, "production": 30180}


@pytest.mark.usefixtures("seeded")
def test_ingest_is_deployed_per_group_with_three_groups_in_each_environment() -> None:
    ingest = Service.objects.get(name="ingest")
    assert ingest.deployed_per_group is True
    version = DeployableVersion.objects.filter(service=ingest).first()
    assert version is not None
    for environment_name, replicas in INGEST_REPLICAS.items():
        environment = _env(environment_name)
        groups = {g.name: g for g in Group.objects.filter(service=ingest, environment=environment)}
        assert {name: g.scaling_factor for name, g in groups.items()} == replicas
        for name, group in groups.items():
            assert group.variables["queue"] == f"events-{name}"
            (deployment,) = [
                d
                for d in render_for(
                    service=ingest, environment=environment, version=version, group=group
                )
                if d["kind"] == "Deployment"
            ]
            assert deployment["metadata"]["name"] == f"ingest-{name}"
            assert deployment["spec"]["replicas"] == replicas[name]
    # Groups of other services: none.
    assert not Group.objects.exclude(service=ingest).exists()


@pytest.mark.usefixtures("seeded")
def test_the_personas_may_do_what_the_brief_says() -> None:
    alice, bob, carol, mallory = (
        User.objects.get(username=name) for name in ("alice", "bob", "carol", "mallory")
    )
    assert alice.is_superuser
    assert alice.is_staff
    assert not any(u.is_staff or u.is_superuser for u in (bob, carol, mallory))
    staging, production = _env("staging"), _env("production")
    for service in Service.objects.all():
        for verb in Verb:
            assert can(alice, verb, service=service, environment=production)
        for verb in (Verb.VIEW, Verb.DEPLOY, Verb.CANCEL, Verb.RESTART, Verb.VIEW_LOGS):
            assert can(bob, verb, service=service, environment=staging), (verb, service)
        # bob views production and does nothing else there; mallory sees nothing anywhere.
        assert can(bob, Verb.VIEW, service=service, environment=production)
        for verb in (Verb.OVERRIDE_BLOCKERS, Verb.MANAGE):
            assert not can(bob, verb, service=service, environment=staging), (verb, service)
        for verb in Verb:
            if verb != Verb.VIEW:
                assert not can(bob, verb, service=service, environment=production), verb
            for environment in (staging, production):
                assert not can(mallory, verb, service=service, environment=environment)
                # carol views everything, logs included, and acts on nothing.
                allowed = can(carol, verb, service=service, environment=environment)
                expected = verb in (Verb.VIEW, Verb.VIEW_LOGS)
                assert allowed == expected, (verb, service, environment)


def _state() -> dict[str, Any]:
    """Every seeded row, field by field (passwords and logins aside: those change on purpose)."""
    users = {
        u.username: model_to_dict(u, exclude=["password", "last_login"]) for u in User.objects.all()
    }
    grants = [
        (
            model_to_dict(g),
            sorted(g.user_perms.values_list("user__username", "permission__codename")),
        )
        for g in Grant.objects.order_by("pk")
    ]
    rows = {
        model.__name__: [model_to_dict(row) for row in model.objects.order_by("pk")]
        for model in (Cluster, Environment, Service, DeployableVersion, Group)
    }
    # The jenkins token is new on every run, like the passwords: its events are left out.
    events = list(
        AuditEvent.objects.exclude(action__startswith="token.")
        .order_by("pk")
        .values_list("action", "summary")
    )
    return {"users": users, "grants": grants, "events": events, **rows}


def test_seeding_twice_changes_nothing_and_duplicates_nothing() -> None:
    _seed()
    first = _state()
    assert len(first["Service"]) == len(SERVICES)
    assert len(first["Group"]) == 6
    # bob in staging, bob viewing production, carol reading staging and production
    assert len(first["grants"]) == 4
    assert [action for action, _ in first["events"]] == ["grant.created"] * 4
    _seed()
    assert _state() == first


def test_seeding_again_puts_back_the_environments_the_demo_defines() -> None:
    """Re-running refreshes existing rows (update_or_create), it does not only skip them."""
    _seed()
    Environment.objects.filter(name="production").update(
        node_port_coefficient=7, require_deployment_message=False
    )
    _seed()
    production = _env("production")
    assert (production.node_port_coefficient, production.require_deployment_message) == (100, True)


def test_jenkins_gets_a_new_token_that_may_register_versions_only() -> None:
    first_key = _seed().split("jenkins  API token '")[1].split("'")[0]
    second_key = _seed().split("jenkins  API token '")[1].split("'")[0]
    assert first_key != second_key
    jenkins = User.objects.get(username="jenkins")
    assert not jenkins.has_usable_password()
    assert not jenkins.is_staff
    assert user_for_key(first_key) is None  # the previous demo token was revoked
    assert user_for_key(second_key) == jenkins
    assert ApiToken.objects.filter(user=jenkins).count() == 1
    assert jenkins.has_perm("deployments.add_deployableversion")
    for service in Service.objects.all():
        for verb in Verb:
            assert not can(jenkins, verb, service=service, environment=_env("staging"))
    client = Client()
    auth = {"Authorization": f"Token {second_key}"}
    body = {"service": "catalog", "git_commit_sha": "d" * 40}
    response = client.post(
        "/api/v1/deployable-versions/", body, content_type="application/json", headers=auth
    )
    assert response.status_code == 201, response.content
    deploy = {"service": "catalog", "environment": "staging", "git_commit_sha": "d" * 40}
    response = client.post(
        "/api/v1/deployments/", deploy, content_type="application/json", headers=auth
    )
    assert response.status_code == 403
