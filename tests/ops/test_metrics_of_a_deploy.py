"""A deploy requested over the API, driven by the real worker against kubesim, moves the right
metrics, and the worker's log lines for it carry the request's id."""

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apollo_site.ops.logs import JsonFormatter
from deployments.models import Deployment
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.kubeenv import wait_until_terminal

TOKEN = "scrape-token-0123456789abcdef"
REQUEST_ID = "ci-run-77.deploy"


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def scrape_until(
    check: Callable[[dict[Any, float]], bool], timeout: float = 10
) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape()
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


@pytest.fixture
def worker_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    worker_logger = logging.getLogger("deployments.engine.worker")
    worker_logger.addHandler(handler)
    previous = worker_logger.level
    worker_logger.setLevel(logging.INFO)
    yield stream
    worker_logger.removeHandler(handler)
    worker_logger.setLevel(previous)


@pytest.mark.kubesim_only
def test_a_deploy_through_the_worker_moves_the_counters_and_logs_its_request_id(
    bob: User,
    staging: Environment,
    worker_lines: io.StringIO,
    settings: Any,
    worker: threading.Event,
) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    service = factories.make_service("metered")
    version = factories.make_version(service)
    before = scrape()

    response = Client().post(
        "/api/v1/deployments/",
        json.dumps(
            {
                "service": "metered",
                "environment": "staging",
                "git_commit_sha": version.git_commit_sha,
            }
        ),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(bob)}", "X-Request-ID": REQUEST_ID},
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == REQUEST_ID
    deployment = wait_until_terminal(Deployment.objects.get(pk=response.json()["id"]))
    assert deployment.status == Status.DONE, deployment.status_reason
    # The worker observes the verdict just after writing it: wait for it, with a deadline.
    after = scrape_until(
        lambda samples: (
            total(samples, "apollo_rollout_duration_seconds_count", outcome="DONE")
            > total(before, "apollo_rollout_duration_seconds_count", outcome="DONE")
        )
    )

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("apollo_kubernetes_api_calls_total", verb="patch") >= 1  # the apply
    assert moved("apollo_kubernetes_api_calls_total", verb="watch") >= 1  # the rollout
    assert moved("apollo_rollout_duration_seconds_count", outcome="DONE") == 1
    assert moved("apollo_http_request_duration_seconds_count", route="api:deployments") == 1
    assert total(after, "apollo_deployments", status="DONE", environment="staging") == 1
    assert total(after, "apollo_queue_depth") == 0
    assert total(after, "apollo_worker_leases_held") == 0

    assert deployment.request_id == REQUEST_ID
    lines = [json.loads(line) for line in worker_lines.getvalue().splitlines()]
    mine = [line for line in lines if line.get("deployment_id") == deployment.pk]
    assert len(mine) >= 2, lines  # picked up, and the verdict
    assert {line["request_id"] for line in mine} == {REQUEST_ID}
    assert {line["user"] for line in mine} == {"bob"}
    assert any("DONE" in line["message"] for line in mine)
