"""The property behind the injection fix, over generated values: whatever string a variable
holds, it comes back exactly as given and the documents keep the harmless value's structure
(and their stored YAML reads back the same)."""

import dataclasses
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from deployments import rendering
from tests.security.test_variable_injection import HARMLESS, TEMPLATE, _replace

TARGET = rendering.Target(
    service="ingest",
    image_repository="registry.example.com/ingest",
    sha="0" * 40,
    environment="staging",
    namespace="staging",
    availability="staging",
    region="",
    node_port_coefficient=0,
    group="eu",
    replicas=2,
)
YAML_MEANINGFUL = st.sampled_from([*"\"'{}[]&*!|>#%@`,:-?\n\t ", "---", "...", "\\", "0", "true"])
VALUES = st.lists(st.one_of(st.text(max_size=8), YAML_MEANINGFUL), max_size=12).map("".join)


def _render(queue: str) -> list[dict[str, Any]]:
    variables = rendering.build_variables(TARGET, {"note": "n"}, {"queue": queue})
    documents = rendering.render_documents([("deployment", TEMPLATE)], variables)
    return rendering.finalize(documents, dataclasses.replace(TARGET))


HARMLESS_DOCUMENTS = _render(HARMLESS)
# Alone in an unquoted position, a value that reads as a whole number or true/false is that
# number or boolean (replicas: {{replicas}}): the one documented exception, tested below.
READS_AS_NUMBER_OR_BOOLEAN = re.compile(r"-?(0|[1-9][0-9]*)|true|false")


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(VALUES)
@example('x"}\n- {name: evil, image: "evil:1"}\n---\nkind: Ingress')
@example("&a [*a, *a]")
def test_any_value_is_exactly_one_scalar(value: str) -> None:
    assume(not READS_AS_NUMBER_OR_BOOLEAN.fullmatch(value))
    rendered = _render(value)
    assert rendered == _replace(HARMLESS_DOCUMENTS, HARMLESS, value)
    assert list(yaml.safe_load_all(rendering.to_yaml(rendered))) == rendered


def test_a_number_or_boolean_alone_unquoted_is_typed_and_quoted_stays_a_string() -> None:
    for value, typed in (("3", 3), ("-12", -12), ("true", True), ("false", False)):
        [doc] = _render(value)
        env = {
            e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["PLAIN"] == typed
        assert env["DOUBLE"] == env["SINGLE"] == value
        assert env["JOINED"] == f"pre-{value}-post"
    [doc] = _render("007")
    assert doc["spec"]["template"]["spec"]["containers"][0]["env"][2]["value"] == "007"
