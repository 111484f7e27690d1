"""The worker's first apply (issue #16): from the claim to the applied deployment, two writes
whatever the number of documents (the "sending" entries before anything is sent, then the
"applied" entry with applied_at in the same UPDATE: never one without the other)."""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.engine.worker import Run, claim
from deployments.models import Deployment
from environments.models import Environment
from tests import factories
from tests.kubeenv import deploy

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATES = {
    "service_template": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{service}}\n"
    "spec:\n  selector: {app: {{service}}}\n  ports:\n    - port: 80\n",
    "extra_templates": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{service}}-a\n"
    "data: {a: '1'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{service}}-b\n"
    "data: {b: '2'}\n",
}


def _claimed_run(bob: User, staging: Environment, name: str, **templates: str) -> Run:
    service = factories.make_service(name, **templates)
    outcome = deploy(bob, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    claimed = claim("me")
    assert claimed is not None
    assert claimed.pk == outcome.deployment.pk
    return Run(claimed, "me", threading.Event())


def _writes_of_the_first_apply(run: Run) -> int:
    d = run.deployment
    documents = run.documents(d, d.version)
    assert documents is not None
    with CaptureQueriesContext(connection) as queries:
        assert run.apply(documents, what=d.version.git_commit_sha[:12], mark_applied=True)
    return sum(q["sql"].lstrip().upper().startswith("UPDATE") for q in queries.captured_queries)


@pytest.mark.parametrize("templates", [{}, TEMPLATES], ids=["one document", "four documents"])
def test_the_first_apply_writes_twice_whatever_the_number_of_documents(
    bob: User, staging: Environment, templates: dict[str, str]
) -> None:
    run = _claimed_run(bob, staging, f"writes-{len(templates)}", **templates)
    assert _writes_of_the_first_apply(run) == 2
    stored = Deployment.objects.get(pk=run.deployment.pk)
    assert stored.applied_at is not None
    assert stored.applied_at == run.deployment.applied_at
    applied = [e for e in stored.timeline if e["message"].startswith("applied ")]
    assert len(applied) == 1
