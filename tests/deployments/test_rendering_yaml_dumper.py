"""The stored manifests' YAML stays PyYAML's own emitter's (#16: libyaml's was measured 4x faster
and not adopted). The deploy preview diffs the rendering against the applied rendered_manifests:
an emitter writing the same values differently shows unchanged lines as changed. libyaml's
CSafeDumper (PyYAML 6.0.4) writes four documents below differently: an empty key, a long key
with spaces, a double-quoted string folded at another column, escaped unicode folded elsewhere
(a random search found thousands more)."""

from typing import Any

import pytest
import yaml

from deployments import rendering

LONG_LINES = ("long line " * 30 + "\n") * 3
CASES: list[Any] = [
    {"metadata": {"annotations": {"": "an empty key"}}},
    {"metadata": {"annotations": {" ".join(["word"] * 25): "a long key with spaces"}}},
    {"data": {"config": LONG_LINES}},
    {"data": {"greeting": "ü" * 300}},
    {"data": {"mixed": "日本語 ☃ 😀 é", "multi": "one\ntwo\n  three\n", "empty": "", "none": None}},
    {
        "data": {
            "port": "8080",
            "flag": "yes",
            "float": "1.5",
            "octal": "0o17",
            "date": "2026-11-30",
        }
    },
]


@pytest.mark.parametrize("document", CASES)
def test_stored_manifests_are_written_by_pyyamls_own_emitter(document: dict[str, Any]) -> None:
    expected = yaml.dump_all(
        [document], Dumper=yaml.SafeDumper, sort_keys=False, default_flow_style=False
    )
    shown = rendering.to_yaml([document])
    assert shown == expected
    assert list(yaml.safe_load_all(shown)) == [document]
