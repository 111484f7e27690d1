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


# deployments/_rows.html as a {% for %} of template nodes, before its rows were made in Python.
TEMPLATE_ROWS = engines["django"].from_string(
    "{% load deployment_rows l10n %}{% localize off %}"
    "{% for d, cells in deployments|with_cells %}\n"
    "<tr>\n"
    '  {% if selectable %}<td><input type="checkbox" name="d" value="{{ d.pk }}" '
    'aria-label="Compare #{{ d.pk }}"></td>{% endif %}\n'
    "  <td><a href=\"{% row_url 'deployment-detail' d.pk %}\">#{{ d.pk }}</a></td>\n"
    "  <td><a href=\"{% row_url 'service-detail' d.service_name %}\">{{ d.service_name }}</a>"
    "{% if d.group_name %} / {{ d.group_name }}{% endif %}</td>\n"
    "  <td>{{ d.environment_name }}</td>\n"
    '  <td><code title="{{ d.sha }}">{{ d.sha|slice:":12" }}</code></td>\n'
    "  <td>{{ cells.badge }}</td>\n"
    "  <td>{{ d.deployed_by_name }}</td>\n"
    '  <td><time datetime="{{ cells.created_iso }}">{{ cells.age }} ago</time></td>\n'
    '  <td class="message">{{ cells.message }}</td>\n'
    "</tr>\n"
    "{% endfor %}{% endlocalize %}"
)
ROWS = engines["django"].from_string(
    "{% load deployment_rows %}{% deployment_rows deployments selectable %}"
)


@pytest.mark.parametrize("selectable", [True, False])
def test_the_rows_made_in_python_read_as_the_template_made_them_hostile_names_included(
    selectable: bool,
) -> None:
    now = timezone.now()
    hostile = "<script>alert('x')</script> & \"quoted\""
    rows = [
        TableRow(
            pk=12345 + i,
            status=status,
            message=message,
            created_at=now - HOUR * i * 7,
            service_name=service,
            environment_name=hostile if i == 1 else "staging",
            sha=("<b>" if i == 2 else "a") * 40,
            deployed_by_name=hostile if i == 3 else "alice",
            group_name=group,
        )
        for i, (status, message, service, group) in enumerate(
            [
                ("DONE", "Fix the basket", "checkout", None),
                ("FAILED", hostile, "check&out é", "eu<1>"),
                ("CANCELED", hostile * 5, "checkout", ""),
                ("STARTED", "", "a'b\"c", "blue"),
            ]
        )
    ]
    context = {"deployments": rows, "selectable": selectable}
    made = ROWS.render(context)
    assert made == TEMPLATE_ROWS.render(context)
    assert "<script>" not in made
    assert "&lt;script&gt;" in made
    assert "<b>" not in made
    assert "eu&lt;1&gt;" in made
