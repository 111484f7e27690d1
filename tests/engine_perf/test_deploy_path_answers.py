"""The apply's answers and the owner checks' reads (#16): decoded from the API server's JSON
once, never built into the kubernetes client's models and turned back into dicts (a
Deployment's cost 1.3 ms of the worker's GIL in each apply round). The answers still say what
the cluster holds, and an object of another owner is still refused."""

from typing import Any

import pytest
from kubernetes import client

from deployments.manifests import render_for
from environments import kube
from environments.kube.labels import LABEL_SERVICE
from environments.models import Environment
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def models_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The response types the kubernetes client built models of (its deserializer, called
    through)."""
    built: list[str] = []
    original = client.ApiClient.response_deserialize

    def counting(self: client.ApiClient, response_data: Any, response_types_map: Any) -> Any:
        built.append(str(response_types_map.get(str(response_data.status))))
        return original(self, response_data, response_types_map)

    monkeypatch.setattr(client.ApiClient, "response_deserialize", counting)
    return built


def _documents(staging: Environment, name: str) -> list[dict[str, Any]]:
    service = factories.make_service(
        name,
        service_template="apiVersion: v1\nkind: Service\nmetadata:\n  name: {{service}}\n"
        "spec:\n  selector: {app: {{service}}}\n  ports:\n    - port: 80\n",
    )
    version = factories.make_version(service)
    return render_for(service=service, environment=staging, version=version, group=None)


def test_an_apply_and_its_owner_checks_build_no_client_models(
    staging: Environment, models_built: list[str]
) -> None:
    cluster, namespace = staging.cluster, staging.namespace
    documents = _documents(staging, "answers")
    checked = {
        (doc["kind"], doc["metadata"]["name"]): kube.owned_version(cluster, namespace, doc)
        for doc in documents
    }
    answers = kube.apply(cluster, namespace, documents, checked=checked)
    again = {  # the owner checks of the next deployment, when Apollo's memory is gone
        (doc["kind"], doc["metadata"]["name"]): kube.owned_version(cluster, namespace, doc)
        for doc in documents
    }
    assert models_built == []
    assert [a["kind"] for a in answers] == ["Deployment", "Service"]
    live = kube.read_deployment(cluster, namespace, "answers")
    assert live is not None
    assert answers[0]["metadata"]["uid"] == live["metadata"]["uid"]
    assert answers[0]["metadata"]["labels"] == live["metadata"]["labels"]
    # The Service, which no controller writes after the apply: the answer's version is the one
    # the next check reads, and the one Apollo remembers (sent as the next apply's precondition).
    service_version = answers[1]["metadata"]["resourceVersion"]
    assert again[("Service", "answers")] == service_version
    assert kube.known_version(cluster, namespace, documents[1]) == service_version


def test_another_owners_object_is_still_refused(staging: Environment) -> None:
    cluster, namespace = staging.cluster, staging.namespace
    theirs = _documents(staging, "taken")
    kube.apply(cluster, namespace, theirs)
    mine = [
        {**doc, "metadata": {**doc["metadata"], "labels": {**doc["metadata"]["labels"]}}}
        for doc in theirs
    ]
    for doc in mine:
        doc["metadata"]["labels"][LABEL_SERVICE] = "mallory"
    with pytest.raises(kube.NotOwned, match="belongs to another owner: service taken"):
        kube.owned_version(cluster, namespace, mine[0])
