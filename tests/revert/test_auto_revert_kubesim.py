"""Automatic revert for real: a crash-looping version rolled out on kubesim through the worker
ends FAILED, and the version that ran before is back and DONE without anybody clicking."""

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import AutomaticRevert, BadVersion, Deployment, RevertPolicy
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_for, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_a_crash_looping_rollout_is_reverted_to_the_last_done_version(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    RevertPolicy.objects.create(environment=staging, enabled=True, mark_bad=True)
    service = factories.make_service("wobbly")
    good, bad = factories.make_version(service), factories.make_version(service)
    kubesim.register_image(bad.image, "crashloop", seconds=0.05)
    first = deploy(bob, service, staging, good).deployment
    assert first is not None
    assert wait_until_terminal(first).status == Status.DONE
    failing = deploy(bob, service, staging, bad).deployment
    assert failing is not None
    failed = wait_until_terminal(failing, timeout=40)
    assert failed.status == Status.FAILED, failed.status_reason
    revert = Deployment.objects.get(cause=failed)
    assert revert.version == good
    assert revert.deployed_by.username == "apollo:system"
    revert = wait_for(revert, lambda d: d.status == Status.DONE, timeout=40)
    running = client.AppsV1Api(kubesim.api_client()).read_namespaced_deployment(
        "wobbly", staging.namespace
    )
    assert running.spec.template.spec.containers[0].image == good.image
    assert AutomaticRevert.objects.get(failed=failed).revert == revert
    assert BadVersion.objects.active().get(service=service).sha == bad.git_commit_sha
    # The revert is no revert of a revert's failure: nothing more was requested.
    assert Deployment.objects.filter(service=service).count() == 3
