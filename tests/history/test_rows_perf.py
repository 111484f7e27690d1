"""The deployment rows' shortcuts give what Django's own filters give (deployment_rows.py)."""

import pytest
from django.template import engines

from deployments.templatetags.deployment_rows import _truncated

TRUNCATECHARS = engines["django"].from_string("{{ text|truncatechars:80 }}")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Fix the basket",
        "x" * 80,
        "x" * 81,
        "é" * 80,
        "é" * 81,
        "e\u0301" * 80,  # combining accents: not counted, and normalised
        "<b>" * 30,
        "a long explanation " * 10,
    ],
)
def test_a_message_is_cut_as_truncatechars_cuts_it(text: str) -> None:
    expected = TRUNCATECHARS.render({"text": text}, None)
    # The template escapes; compare the unescaped cut.
    assert engines["django"].from_string("{{ t }}").render({"t": _truncated(text, 80)}) == expected
