"""The replica limit is written once (deployments.models.MAX_SCALING_FACTOR): the pages' scale
inputs take it from there rather than repeating the number."""

import re
from pathlib import Path

from deployments.models import MAX_SCALING_FACTOR
from deployments.templatetags.scaling import max_scaling_factor

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_no_template_hard_codes_the_replica_limit() -> None:
    scale_inputs = [
        (path.name, line)
        for path in TEMPLATES.rglob("*.html")
        for line in path.read_text().splitlines()
        if 'name="replicas"' in line
    ]
    assert scale_inputs, "the scale inputs moved: update this test"
    for name, line in scale_inputs:
        assert re.search(r'max="\d', line) is None, (name, line)
        assert 'max="{% max_scaling_factor %}"' in line, (name, line)


def test_the_tag_gives_the_services_limit() -> None:
    assert max_scaling_factor() == MAX_SCALING_FACTOR
