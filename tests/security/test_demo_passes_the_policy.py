"""The demo still deploys under the manifest policy: every demo service (and group) renders
and passes the policy in every demo environment, with no privileged workload allowed."""

from io import StringIO

import pytest
from django.core.management import call_command

from deployments.manifests import render_checked
from deployments.models import Group, Service
from environments.models import Environment

pytestmark = pytest.mark.django_db


def test_every_demo_service_passes_the_manifest_policy_everywhere() -> None:
    call_command("seed_demo", stdout=StringIO())
    environments = list(Environment.objects.all())
    assert environments
    assert not any(e.allow_privileged_workloads for e in environments)
    checked = 0
    for service in Service.objects.all():
        version = service.versions.first()
        assert version is not None
        for environment in environments:
            groups: list[Group | None] = list(
                Group.objects.filter(service=service, environment=environment)
            )
            if not service.deployed_per_group:
                groups.append(None)
            for group in groups:
                render_checked(
                    service=service, environment=environment, version=version, group=group
                )
                checked += 1
    assert checked >= 2 * 4 + 2 * 3  # four services without groups, ingest's three groups
