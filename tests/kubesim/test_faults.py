"""Fault injection through the control API: latency, errors, drops, ended watches, outages."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubesim.testing import ControlError, KubesimHandle
from tests.kubesim.helpers import wait_for


def test_latency_slows_every_request(kubesim_faults: KubesimHandle, kubesim_api: Any) -> None:
    core = client.CoreV1Api(kubesim_api)
    kubesim_faults.set_faults(latency_ms=300)
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.3
    kubesim_faults.reset_faults()
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started < 0.3


def test_an_error_rate_answers_500_or_503_statuses(
    kubesim_faults: KubesimHandle, kubesim_api: Any
) -> None:
    kubesim_faults.set_faults(error_rate=0.5, seed=42)
    core = client.CoreV1Api(kubesim_api)
    codes = []
    bodies = []
    for _ in range(40):
        try:
            core.list_namespace()
            codes.append(200)
        except ApiException as exc:
            codes.append(exc.status)
            bodies.append(exc.body)
    assert all('"kind":"Status"' in body for body in bodies)
    assert set(codes) <= {200, 500, 503}
    assert 8 <= codes.count(200) <= 32
    assert {500, 503} & set(codes)


def test_fail_next_fails_exactly_n_requests(
    kubesim_faults: KubesimHandle, kubesim_api: Any
) -> None:
    kubesim_faults.set_faults(fail_next=2)
    core = client.CoreV1Api(kubesim_api)
    for _ in range(2):
        with pytest.raises(ApiException):
            core.list_namespace()
    core.list_namespace()


def test_dropped_connections(kubesim_faults: KubesimHandle, kubesim_api: Any) -> None:
    kubesim_faults.set_faults(drop_rate=1.0)
    kubesim_api.configuration.retries = 0
    core = client.CoreV1Api(kubesim_api)
    with pytest.raises((urllib3.exceptions.HTTPError, ConnectionError, ApiException)):
        core.list_namespace(_request_timeout=3)


def test_ending_all_watches(
    kubesim_faults: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    finished = threading.Event()

    def consume() -> None:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, kubesim_namespace, timeout_seconds=20
        ):
            pass
        finished.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    # Ends the watch once the consumer has it open (nothing to end before).
    assert wait_for(kubesim_faults.end_watches, what="the consumer's watch") >= 1
    assert finished.wait(3)


def test_down_refuses_connections_then_comes_back(
    kubesim_faults: KubesimHandle, kubesim_api: Any
) -> None:
    host, port = kubesim_faults.url.removeprefix("https://").split(":")
    kubesim_faults.down(1.0)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((host, int(port)), timeout=1),
    ):
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            client.CoreV1Api(kubesim_api).list_namespace(_request_timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    else:
        pytest.fail("kubesim did not come back")


def test_the_control_api_needs_the_admin_token(kubesim: KubesimHandle) -> None:
    from kubesim.testing import ControlClient

    limited = ControlClient(kubesim.url, kubesim.limited_token, kubesim.ca_cert_pem)
    with pytest.raises(ControlError, match="403"):
        limited.call("faults", {"latency_ms": 1000})
    anonymous = ControlClient(kubesim.url, "wrong", kubesim.ca_cert_pem)
    with pytest.raises(ControlError, match="401"):
        anonymous.call("state", method="GET")


def test_bad_control_input_is_400(kubesim_faults: KubesimHandle) -> None:
    with pytest.raises(ControlError, match="400"):
        kubesim_faults.set_faults(error_rate=2.0)
    with pytest.raises(ControlError, match="400"):
        kubesim_faults.register_image("x:1", behaviour="explode")
