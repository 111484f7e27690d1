"""Fuzz: generated inputs to the versions and deployments APIs, the deploy form and the group
forms never answer 5xx, and a refused request (4xx) writes nothing.

Deterministic (derandomize: the same examples on every run, no database of past failures),
bounded (a few thousand requests in all) and free of deadline flakiness. Inputs mix values
the views accept (the real service, environment and sha) with junk of every JSON type, so
the examples reach past the first validation into the services.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.models import (
    CIStatus,
    DeployableVersion,
    Deployment,
    Group,
    validate_group_variables,
)
from environments.models import Environment
from history.models import AuditEvent
from tests import factories
from tests.conftest import login

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SHA = "ab" * 20

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
names = st.sampled_from(["checkout", "staging", "eu", "", " ", "checkout\x00", "../x", "ü" * 70])
shas = st.one_of(
    st.just(SHA), st.just(SHA.upper()), st.text(alphabet="0123456789abcdefg", max_size=41)
)


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, junk)


def _body(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[str]:
    """A JSON object with any subset of fields, or (sometimes) raw text that is not one."""
    objects = st.fixed_dictionaries({}, optional={k: _maybe(v) for k, v in fields.items()})
    return st.one_of(objects.map(json.dumps), st.text(max_size=40))


def _counts() -> tuple[int, ...]:
    return (
        Deployment.objects.count(),
        DeployableVersion.objects.count(),
        CIStatus.objects.count(),
        Group.objects.count(),
        AuditEvent.objects.count(),
    )


def _check(send: Callable[[], Any]) -> int:
    """Send one request: never a 5xx, and nothing written when it is refused."""
    before = _counts()
    response = send()
    assert response.status_code < 500, response.content[:300]
    if 400 <= response.status_code < 500:
        assert _counts() == before
    status: int = response.status_code
    return status


@pytest.fixture
def world(alice: User, bob: User, jenkins: User, settings: Any) -> dict[str, Any]:
    settings.APOLLO_API_RATE = "1000000/minute"  # the fuzz is one fast client
    staging = factories.make_environment("staging")
    service = factories.make_service("checkout")
    factories.make_version(service, SHA)
    group = Group.objects.create(service=service, environment=staging, name="eu")
    return {
        "alice": login(alice),
        "bob": login(bob),
        "jenkins": Client(headers={"Authorization": f"Token {jenkins.api_key}"}),  # type: ignore[attr-defined]
        "alice_token": Client(headers={"Authorization": f"Token {factories.token_for(alice)}"}),
        "group": group,
        "staging": staging,
    }


@FUZZ
@given(
    body=_body(
        {
            "service": names,
            "git_commit_sha": shas,
            "branch": st.text(max_size=20),
            "commit_message": st.text(max_size=20),
            "commit_author": st.text(max_size=20),
            "commit_url": st.sampled_from(["https://git.example.com/c", "javascript:x", "ftp://"]),
            "repository_url": st.sampled_from(["https://git.example.com/r", "http://", "x"]),
            "committed_at": st.sampled_from(["2026-01-01T00:00:00Z", "2026-13-40", "0"]),
        }
    )
)
def test_the_versions_api_survives_generated_bodies(world: dict[str, Any], body: str) -> None:
    _check(
        lambda: world["jenkins"].post(
            "/api/v1/deployable-versions/", body, content_type="application/json"
        )
    )


@FUZZ
@given(
    body=_body(
        {
            "context": st.text(max_size=20),
            "state": st.sampled_from(["pending", "success", "failure", "error", "nope"]),
            "url": st.text(max_size=20),
            "description": st.text(max_size=20),
        }
    ),
    sha=shas,
)
def test_the_ci_status_api_survives_generated_bodies(
    world: dict[str, Any], body: str, sha: str
) -> None:
    url = f"/api/v1/deployable-versions/checkout/{sha or 'x'}/ci-status/"
    _check(lambda: world["jenkins"].post(url, body, content_type="application/json"))


@FUZZ
@given(
    body=_body(
        {
            "service": names,
            "environment": names,
            "git_commit_sha": shas,
            "group": names,
            "message": st.text(max_size=20),
            "override_reason": st.text(max_size=20),
        }
    ),
    who=st.sampled_from(["alice_token", "bob"]),
)
def test_the_deployments_api_survives_generated_bodies(
    world: dict[str, Any], body: str, who: str
) -> None:
    _check(lambda: world[who].post("/api/v1/deployments/", body, content_type="application/json"))


@FUZZ
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "service": st.text(max_size=10),
            "environment": st.text(max_size=10),
            "status": st.text(max_size=10),
            "cursor": st.text(max_size=30),
            "page_size": st.text(max_size=25),
        },
    ),
    path=st.sampled_from(["/api/v1/deployments/", "/api/v1/groups/"]),
    deployment_id=st.integers(min_value=0, max_value=2**70),
)
def test_the_deployments_api_reads_survive_generated_queries(
    world: dict[str, Any], params: dict[str, str], path: str, deployment_id: int
) -> None:
    client = world["alice_token"]
    _check(lambda: client.get(path, params))
    _check(lambda: client.get(f"/api/v1/deployments/{deployment_id}/"))
    _check(lambda: client.post(f"/api/v1/deployments/{deployment_id}/cancel/"))


form_values = st.one_of(
    st.text(max_size=30), st.integers(min_value=-(2**70), max_value=2**70).map(str)
)


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "services": st.one_of(st.just("checkout"), form_values),
            "environments": st.one_of(st.just("staging"), form_values),
            "version": st.one_of(st.just(SHA), form_values),
            "sha": st.one_of(st.just(SHA), form_values),
            "branch": form_values,
            "groups": st.one_of(st.just("eu"), form_values),
            "all_groups": st.sampled_from(["1", "on", "", "x"]),
            "message": form_values,
            "override_reason": form_values,
        },
    ),
    who=st.sampled_from(["alice", "bob"]),
)
def test_the_deploy_form_survives_generated_posts(
    world: dict[str, Any], data: dict[str, str], who: str
) -> None:
    ids = {"checkout": "services", "staging": "environments", "eu": "groups"}
    lookup = {
        "checkout": world["group"].service_id,
        "staging": world["staging"].pk,
        "eu": world["group"].pk,
    }
    posted = {k: (lookup[v] if ids.get(v) == k else v) for k, v in data.items()}
    _check(lambda: world[who].post("/deploy/", posted))


json_texts = st.one_of(
    st.dictionaries(st.text(max_size=8), junk, max_size=4).map(json.dumps),
    junk.map(json.dumps),
    st.text(max_size=30),
)


@FUZZ
@given(
    name=form_values,
    scaling_factor=form_values,
    variables=json_texts,
    environment=st.one_of(st.just("staging"), form_values),
    replicas=form_values,
    locked=st.sampled_from(["", "on"]),
)
def test_the_group_forms_survive_generated_posts(
    world: dict[str, Any],
    name: str,
    scaling_factor: str,
    variables: str,
    environment: str,
    replicas: str,
    locked: str,
) -> None:
    client = world["alice"]
    group = world["group"]
    env = str(world["staging"].pk) if environment == "staging" else environment
    base = "/services/checkout/groups/"
    created = {
        "environment": env,
        "name": name,
        "scaling_factor": scaling_factor,
        "variables": variables,
    }
    changed = {"variables": variables, "scaling_locked": locked, "scaling_lock_reason": name}
    _check(lambda: client.post(base, created))
    _check(lambda: client.post(f"{base}{group.pk}/", changed))
    _check(lambda: client.post(f"{base}{group.pk}/scale/", {"replicas": replicas}))
    for saved in Group.objects.all():  # whatever was accepted is valid
        validate_group_variables(saved.variables)
    assert Environment.objects.count() == 1
