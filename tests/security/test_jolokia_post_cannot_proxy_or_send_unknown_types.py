"""Jolokia POST, through the real pod proxy of kubesim: a `target` key (the agent's proxy
mode, which reaches any JMX URL the pod can reach) was forwarded, and any request type other
than write/exec passed with `view_logs` alone. Now only read, list, search and version pass
for `view_logs` holders; write and exec need `restart` as well; any other type is a 400; and
`target` is removed from every request, in bulk requests too."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from environments.models import Environment
from tests.conftest import login
from tests.environments.test_jolokia import _java_pod, _url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

TARGET = {"url": "service:jmx:rmi:///jndi/rmi://db.internal:9999/jmxrmi", "user": "admin"}
READ = {"type": "read", "mbean": "java.lang:type=Runtime", "attribute": "VmName"}


def _post(client: Client, environment: Environment, pod: str, body: Any) -> Any:
    return client.post(_url(environment, pod), json.dumps(body), content_type="application/json")


def test_the_target_key_never_reaches_the_agent(bob: User, staging: Environment) -> None:
    pod = _java_pod(bob, staging)
    client = login(bob)
    single = _post(client, staging, pod, {**READ, "target": TARGET})
    assert single.status_code == 200
    assert single.json()["status"] == 200
    assert "target" not in single.json()["request"]
    bulk = [
        {"type": "version", "target": TARGET},
        {**READ, "Target": TARGET},
        {"type": "search", "mbean": "java.lang:*", "TARGET": TARGET},
    ]
    answers = _post(client, staging, pod, bulk).json()
    assert [a["status"] for a in answers] == [200, 200, 200]
    for answer in answers:
        assert {k.lower() for k in answer["request"]}.isdisjoint({"target"})


@pytest.mark.parametrize(
    "body",
    [
        {"type": "notification", "command": "register"},
        {"type": "readx", "mbean": "java.lang:type=Runtime"},
        {"mbean": "java.lang:type=Runtime"},  # no type
        {"type": ["read"]},
        [READ, {"type": "notification", "command": "register"}],  # one bad item in a bulk
    ],
)
def test_a_type_outside_the_allow_list_is_a_400(
    alice: User, staging: Environment, body: Any
) -> None:
    pod = _java_pod(alice, staging)
    response = _post(login(alice), staging, pod, body)
    assert response.status_code == 400
    assert "unsupported Jolokia request type" in response.json()["error"]


def test_reading_types_need_view_logs_and_changing_ones_restart_as_well(
    bob: User, carol: User, staging: Environment
) -> None:
    pod = _java_pod(bob, staging)
    reads = [
        READ,
        {"type": "list"},
        {"type": "search", "mbean": "java.lang:*"},
        {"type": "VERSION"},
    ]
    assert _post(login(carol), staging, pod, reads).status_code == 200
    write = {
        "type": "write",
        "mbean": "java.lang:type=Memory",
        "attribute": "Verbose",
        "value": True,
    }
    execute = {"type": "exec", "mbean": "java.lang:type=Memory", "operation": "gc"}
    for body in (write, execute, [READ, execute]):
        assert _post(login(carol), staging, pod, body).status_code == 403
    assert _post(login(bob), staging, pod, execute).status_code == 200
