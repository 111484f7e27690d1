"""/metrics: Prometheus text for a scraper with the token or an allowed address, refused
to everyone else, off when neither is configured."""

import ipaddress
from typing import Any

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from deployments.status import Status
from tests import factories

TOKEN = "scrape-token-0123456789abcdef"
FAMILIES = [
    "apollo_http_request_duration_seconds",
    "apollo_deployments",
    "apollo_queue_depth",
    "apollo_queue_oldest_pending_seconds",
    "apollo_worker_leases_held",
    "apollo_rollout_duration_seconds",
    "apollo_kubernetes_api_calls",
    "apollo_kubernetes_api_errors",
    "apollo_watch_restarts",
    "apollo_live_tails_open",
    "apollo_shells_open",
]


def _families(response: Any) -> dict[str, Any]:
    text = response.content.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_are_off_without_a_token_or_an_allow_list(db: None, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = None
    settings.APOLLO_METRICS_ALLOW = []
    assert Client().get("/metrics").status_code == 404


def test_it_refuses_a_scraper_without_the_token(db: None, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    settings.APOLLO_METRICS_ALLOW = []
    assert Client().get("/metrics").status_code == 403
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1] + "x")
    assert wrong.status_code == 403
    assert TOKEN not in wrong.content.decode()


def test_it_refuses_mallory_even_logged_in(mallory: Any, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    settings.APOLLO_METRICS_ALLOW = []
    client = Client()
    client.force_login(mallory)
    assert client.get("/metrics").status_code == 403


def test_it_serves_prometheus_text_with_the_token(alice: Any, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    staging = factories.make_environment("staging")
    service = factories.make_service("api")
    factories.make_deployment(
        service=service, environment=staging, deployed_by=alice, status=Status.PENDING
    )
    response = Client().get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.0.0.9:8000"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = _families(response)
    assert set(FAMILIES) <= set(families)
    samples = {
        (s.labels["status"], s.labels["environment"]): s.value
        for s in families["apollo_deployments"].samples
    }
    assert samples[(Status.PENDING, "staging")] == 1
    assert families["apollo_queue_depth"].samples[0].value == 1


def test_it_serves_an_allowed_address_without_a_token(db: None, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = None
    settings.APOLLO_METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics").status_code == 403


def test_request_latency_is_labelled_by_route_never_by_path(alice: Any, settings: Any) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    client = Client()
    client.force_login(alice)
    client.get("/history/")
    client.get("/no-such-page-4242/")
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    routes = {
        s.labels.get("route")
        for f in text_string_to_metric_families(text)
        if f.name == "apollo_http_request_duration_seconds"
        for s in f.samples
    }
    assert "unmatched" in routes
    assert not any("4242" in str(route) for route in routes)
    assert any(str(route).startswith("history") for route in routes), routes
