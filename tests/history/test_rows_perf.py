"""The deployment rows' shortcuts give what Django's own filters give (deployment_rows.py)."""

from datetime import timedelta

import pytest
from django.template import engines
from django.utils import timezone, translation
from django.utils.timesince import timesince

from deployments.selectors import TableRow
from deployments.templatetags.deployment_rows import _truncated, with_cells

HOUR = timedelta(hours=1)

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


@pytest.mark.parametrize("language", ["en-us", "fr", "pl"])
def test_ages_read_as_timesince_writes_them_in_every_language(language: str) -> None:
    now = timezone.now()
    # Plural forms differ by number (Polish has three), units by size; one page shares them.
    created = [now - timedelta(seconds=37 * i * i + 5) for i in range(200)] + [now, now + HOUR]
    rows = [
        TableRow(
            pk=i,
            status="DONE",
            message="",
            created_at=when,
            service_name="checkout",
            environment_name="staging",
            sha="0" * 40,
            deployed_by_name="alice",
            group_name=None,
        )
        for i, when in enumerate(created)
    ]
    with translation.override(language):
        # with_cells reads the clock once, between these two readings.
        before = timezone.now()
        ages = [cells["age"] for _, cells in with_cells(rows)]
        after = timezone.now()
        for when, age in zip(created, ages, strict=True):
            assert age in {timesince(when, before), timesince(when, after)}, (when, age)
    assert len(set(ages)) > 20
