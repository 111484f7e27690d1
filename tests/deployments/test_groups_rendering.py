"""Rendering a service for a group: variable precedence, no HTML escaping, identity, and
missing or invalid group variables reported when the templates or the group are saved."""

from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from deployments.manifests import render_for
from deployments.models import Group, Service
from deployments.services.groups import create_group
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: {{replicas}}
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
    spec:
      containers:
        - name: app
          image: {{image}}
          env:
            - {name: SHARD, value: "{{shard}}"}
            - {name: QUEUE, value: "{{queue}}"}
            - {name: OWNER, value: "{{owner}}"}
"""


def _setup() -> tuple[Service, Environment, Group]:
    environment = factories.make_environment(
        "staging", variables={"queue": "env-queue", "owner": "env-owner", "shard": "env-shard"}
    )
    service = factories.make_service(
        "ingest",
        deployment_template=TEMPLATE,
        default_variables={"queue": "default-queue", "owner": "default-owner"},
        deployed_per_group=True,
    )
    group = Group.objects.create(
        service=service,
        environment=environment,
        name="eu",
        scaling_factor=3,
        variables={"shard": "eu-1", "queue": "<eu & 'friends'>"},
    )
    return service, environment, group


def _env(documents: list[dict[str, Any]]) -> dict[str, str]:
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_group_variables_win_over_the_environments_which_win_over_the_defaults() -> None:
    service, environment, group = _setup()
    version = factories.make_version(service)
    env = _env(render_for(service=service, environment=environment, version=version, group=group))
    assert env["SHARD"] == "eu-1"  # group over environment
    assert env["OWNER"] == "env-owner"  # environment over the service's defaults


def test_group_values_are_inserted_without_html_escaping() -> None:
    service, environment, group = _setup()
    version = factories.make_version(service)
    env = _env(render_for(service=service, environment=environment, version=version, group=group))
    assert env["QUEUE"] == "<eu & 'friends'>"


def test_the_group_names_the_manifests_sets_replicas_and_its_identity_labels() -> None:
    service, environment, group = _setup()
    version = factories.make_version(service)
    (deployment,) = render_for(
        service=service, environment=environment, version=version, group=group
    )
    assert deployment["metadata"]["name"] == "ingest-eu"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["labels"]["apollo.io/group"] == "eu"
    assert deployment["spec"]["selector"]["matchLabels"]["apollo.io/group"] == "eu"
    assert deployment["spec"]["template"]["metadata"]["labels"]["apollo.io/group"] == "eu"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (["not", "an", "object"], "must be a JSON object"),
        ({"shard": 3}, "must be strings; not a string: shard"),
        ({"shard": {"nested": "x"}}, "not a string: shard"),
        ({"bad name": "x"}, "Variable names"),
    ],
)
def test_group_variables_must_be_an_object_of_strings(variables: Any, message: str) -> None:
    service, environment, _ = _setup()
    group = Group(service=service, environment=environment, name="us", variables=variables)
    with pytest.raises(ValidationError, match=message):
        group.full_clean()


def test_creating_a_group_whose_variables_leave_the_templates_incomplete_is_refused(
    alice: User,
) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service(
        "ingest", deployment_template=TEMPLATE, deployed_per_group=True
    )
    with pytest.raises(ValidationError, match="undefined variables: owner, queue"):
        create_group(
            user=alice,
            service=service,
            environment=environment,
            name="eu",
            variables={"shard": "eu-1"},
        )
    assert not Group.objects.exists()


# -- the service admin checks the templates against each group on save ------------------------


def _service_form(service: Service, template: str) -> dict[str, Any]:
    return {
        "name": service.name,
        "image_repository": service.image_repository,
        "git_repository_url": "",
        "deployment_template": template,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": "",
        "default_variables": "{}",
        "deployed_per_group": "on",
    }


def test_saving_a_template_reports_a_variable_one_group_does_not_define(alice: User) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("ingest", deployed_per_group=True)
    for name, variables in {"eu": {"shard": "1"}, "us": {}}.items():
        Group.objects.create(
            service=service, environment=environment, name=name, variables=variables
        )
    template = factories.DEPLOYMENT_TEMPLATE.replace(
        "image: {{image}}", "image: {{image}}{{shard}}"
    )
    response = login(alice).post(
        f"/admin/deployments/service/{service.pk}/change/", _service_form(service, template)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "undefined variables: shard" in str(errors["deployment_template"])
    assert "group us" in str(errors["deployment_template"])


def test_saving_a_template_whose_variables_every_group_defines_succeeds(alice: User) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("ingest", deployed_per_group=True)
    for name in ("eu", "us"):
        Group.objects.create(
            service=service, environment=environment, name=name, variables={"shard": name}
        )
    template = factories.DEPLOYMENT_TEMPLATE.replace("name: {{service}}", "name: {{service}}-x")
    template = template.replace(
        "image: {{image}}", "image: {{image}}\n          args: ['{{shard}}']"
    )
    response = login(alice).post(
        f"/admin/deployments/service/{service.pk}/change/", _service_form(service, template)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    service.refresh_from_db()
    assert "{{shard}}" in service.deployment_template
    rendered = render_for(
        service=service,
        environment=environment,
        version=factories.make_version(service),
        group=Group.objects.get(name="us"),
    )
    assert yaml.safe_dump(rendered).count("us") >= 1


def test_the_group_admin_refuses_variables_that_are_not_strings(alice: User) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("ingest")
    response = login(alice).post(
        "/admin/deployments/group/add/",
        {
            "service": service.pk,
            "environment": environment.pk,
            "name": "eu",
            "scaling_factor": 2,
            "variables": '{"replicas_hint": 2}',
            "scaling_lock_reason": "",
        },
    )
    assert response.status_code == 200
    assert "must be strings" in str(response.context["adminform"].form.errors["variables"])
    assert not Group.objects.exists()


def test_the_group_admin_creates_a_group_through_the_service_and_records_it(alice: User) -> None:
    from history.models import AuditEvent

    environment = factories.make_environment("staging")
    service = factories.make_service("ingest")
    response = login(alice).post(
        "/admin/deployments/group/add/",
        {
            "service": service.pk,
            "environment": environment.pk,
            "name": "eu",
            "scaling_factor": 2,
            "variables": '{"shard": "1"}',
            "scaling_lock_reason": "",
        },
    )
    assert response.status_code == 302
    group = Group.objects.get()
    assert group.variables == {"shard": "1"}
    assert AuditEvent.objects.get(action="group.created").actor == alice
    response = login(alice).post(
        f"/admin/deployments/group/{group.pk}/change/",
        {"variables": '{"shard": "2"}', "scaling_locked": "on", "scaling_lock_reason": "freeze"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    group.refresh_from_db()
    assert (group.variables, group.scaling_locked, group.scaling_lock_reason) == (
        {"shard": "2"},
        True,
        "freeze",
    )
    changed = AuditEvent.objects.get(action="group.changed")
    assert changed.data["variables"] == {"before": {"shard": "1"}, "after": {"shard": "2"}}


def test_the_group_admin_lists_what_each_group_runs(alice: User) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("ingest")
    group = Group.objects.create(service=service, environment=environment, name="eu")
    done = factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, group=group, group_key="eu"
    )
    page = login(alice).get("/admin/deployments/group/").content.decode()
    assert done.version.git_commit_sha[:12] in page
    assert "/services/ingest/" in page
    change = login(alice).get(f"/admin/deployments/group/{group.pk}/change/").content.decode()
    assert 'name="scaling_factor"' not in change  # scaled through scale_group, not edited
    assert 'name="variables"' in change


def test_the_group_admin_reports_a_duplicate_or_too_long_name_on_the_form(alice: User) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("a-rather-long-service-name-for-ingesting-events")
    Group.objects.create(service=service, environment=environment, name="eu")
    for name, message in (("eu", "already exists"), ("europe-west-primary", "exceed 63")):
        response = login(alice).post(
            "/admin/deployments/group/add/",
            {
                "service": service.pk,
                "environment": environment.pk,
                "name": name,
                "scaling_factor": 1,
                "variables": "{}",
                "scaling_lock_reason": "",
            },
        )
        assert response.status_code == 200
        assert message in str(response.context["adminform"].form.errors)
    assert Group.objects.count() == 1
