"""pytest fixtures for kubesim. Load with `pytest_plugins = ["kubesim.pytest_plugin"]`.

Fixtures:
    kubesim            session-scoped running server (KubesimHandle), fast settings
    kubesim_api        kubernetes.client.ApiClient for the admin token
    kubesim_namespace  a fresh namespace per test (deleted afterwards)
    kubesim_faults     the handle; faults and registry overrides are reset after the test
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubesim.testing import KubesimHandle, run_kubesim


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimHandle]:
    with run_kubesim(tmp_dir=tmp_path_factory.mktemp("kubesim")) as handle:
        yield handle


@pytest.fixture
def kubesim_api(kubesim: KubesimHandle) -> Iterator[Any]:
    client = kubesim.api_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def kubesim_namespace(kubesim: KubesimHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client

    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    api = kubesim.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        finally:
            api.close()


@pytest.fixture
def kubesim_faults(kubesim: KubesimHandle) -> Iterator[KubesimHandle]:
    try:
        yield kubesim
    finally:
        kubesim.reset()
