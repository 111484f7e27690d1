"""Kinds are served through one strategy each (kubesim/kinds/): registering one strategy serves a
new kind end to end (routing, discovery, defaults, validation, immutables, status, printing,
deletion), with no change to the generic layer."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim import kinds as kinds_package
from kubesim import resources as R
from kubesim.kinds import Kinds, builtin_kinds
from kubesim.kinds.strategy import INTEGER, JSON, STRING, Cause, Row, Strategy, age
from kubesim.resources import ResourceType
from kubesim.testing import run_kubesim

WIDGETS = ResourceType(
    "example.com",
    "v1",
    "Widget",
    "widgets",
    short_names=("wd",),
    subresources=("status",),
    has_generation=True,
)


class WidgetStrategy(Strategy):
    resource = WIDGETS
    columns = (("Name", STRING, 0), ("Size", INTEGER, 0), ("Age", STRING, 0))

    def default(self, obj: JSON) -> None:
        obj.setdefault("spec", {}).setdefault("size", 1)

    def validate(self, obj: JSON) -> list[Cause]:
        size = obj["spec"]["size"]
        if isinstance(size, int) and 1 <= size <= 10:
            return []
        return [("spec.size", "FieldValueInvalid", f"Invalid value: {size}: must be 1 to 10")]

    def validate_update(self, old: JSON, new: JSON) -> list[Cause]:
        if old["spec"].get("color") == new["spec"].get("color"):
            return []
        return [("spec.color", "FieldValueInvalid", "field is immutable")]

    def row(self, obj: JSON, now: float) -> Row:
        return [obj["metadata"]["name"], obj["spec"]["size"], age(obj, now)]


def _widget(name: str, **spec: Any) -> JSON:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


def _get(api: Any, path: str, accept: str = "application/json") -> tuple[int, Any]:
    method, url, headers, _body, _post = api.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, headers)
    return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def widgets_api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    kinds = builtin_kinds()
    kinds.register(WidgetStrategy())
    tmp: Path = tmp_path_factory.mktemp("kinds")
    with run_kubesim(tmp_dir=tmp, namespaces=("default",), kinds=kinds) as sim:
        api = sim.api_client()
        yield api
        api.close()


def test_a_new_kind_is_served_by_registering_one_strategy(widgets_api: Any) -> None:
    custom = client.CustomObjectsApi(widgets_api)
    created = custom.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", _widget("w1", color="red")
    )
    assert created["spec"] == {"color": "red", "size": 1}  # defaulted
    assert created["metadata"]["generation"] == 1
    assert created["status"] == {}

    status, discovered = _get(widgets_api, "/apis/example.com/v1")
    assert status == 200
    assert [r["name"] for r in discovered["resources"]] == ["widgets", "widgets/status"]
    assert discovered["resources"][0]["shortNames"] == ["wd"]

    status, table = _get(
        widgets_api,
        "/apis/example.com/v1/namespaces/default/widgets",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Age"]
    assert table["rows"][0]["cells"][:2] == ["w1", 1]


def test_the_strategy_validates_keeps_status_and_guards_immutables(widgets_api: Any) -> None:
    custom = client.CustomObjectsApi(widgets_api)
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", _widget("big", size=11)
        )
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["details"]["causes"][0]["field"] == "spec.size"

    custom.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", _widget("w2", color="red")
    )
    patched = custom.patch_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", "w2", {"spec": {"size": 3}, "status": {"x": 1}}
    )
    assert patched["spec"]["size"] == 3
    assert patched["metadata"]["generation"] == 2
    assert patched["status"] == {}  # the object itself may not change its status
    with pytest.raises(ApiException) as immutable:
        custom.patch_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w2", {"spec": {"color": "blue"}}
        )
    assert immutable.value.status == 422
    assert (
        'Widget.example.com "w2" is invalid: spec.color'
        in json.loads(immutable.value.body)["message"]
    )
    answer = custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "w2")
    assert answer["kind"] == "Status"  # the base strategy does not return the deleted object


def test_the_builtin_kinds_serve_every_builtin_type() -> None:
    assert builtin_kinds().types == R.ALL_TYPES


def test_a_kind_registered_twice_is_refused() -> None:
    kinds = Kinds([WidgetStrategy()])
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(WidgetStrategy())
    assert kinds.types == (WIDGETS,)


def _kubesim_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "kubesim":
            modules |= {f"kubesim.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kubesim."):
            modules.add(str(node.module))
        elif isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.startswith("kubesim")}
    return modules


def test_the_strategies_import_only_kubesims_vocabulary() -> None:
    # kinds/ is below the generic layer: it may not import what asks it (api, http, store...).
    allowed = {"kubesim.resources", "kubesim.meta", "kubesim.label_selectors", "kubesim.errors"}
    root = Path(kinds_package.__file__).parent
    seen = {path.name: _kubesim_imports(path) for path in root.glob("*.py")}
    assert "kubesim.resources" in seen["core_pod.py"]  # the walk sees the imports
    wrong = {
        f"{name}: {module}"
        for name, modules in seen.items()
        for module in modules
        if module not in allowed and not module.startswith("kubesim.kinds")
    }
    assert wrong == set()


def _until(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return value


def test_the_garbage_collector_finds_an_owner_of_any_registered_kind(widgets_api: Any) -> None:
    # A foreground deletion of a Widget waits for its dependents, then the collector finalizes the
    # Widget itself: it must find the owner by uid whatever its kind (it looked among four
    # built-in kinds only, so the Widget stayed "being deleted" forever).
    custom = client.CustomObjectsApi(widgets_api)
    core = client.CoreV1Api(widgets_api)
    owner = custom.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", _widget("owner")
    )
    reference = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    core.create_namespaced_config_map(
        "default",
        {"metadata": {"name": "owned", "ownerReferences": [reference]}, "data": {"a": "b"}},
    )
    custom.delete_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        "owner",
        body={"propagationPolicy": "Foreground"},
    )

    def gone(read: Any) -> bool:
        try:
            read()
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    _until(lambda: gone(lambda: core.read_namespaced_config_map("owned", "default")), "dependent")
    _until(
        lambda: gone(
            lambda: custom.get_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", "owner"
            )
        ),
        "the Widget finalized after its dependents",
    )
