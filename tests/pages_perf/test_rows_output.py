"""The deployment rows (deployments/_rows.html) read the same after their cells moved from
per-row filters and includes to one pass in Python: dates, ages, status badges, messages."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.template import engines
from django.test import override_settings
from django.utils import timezone

from deployments.models import Deployment
from deployments.status import Status
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# What the row showed when Django's own filters and the badge partial made it.
DJANGO_CELLS = engines["django"].from_string(
    '{% include "deployments/_status_badge.html" with status=d.status %}'
    "<time datetime=\"{{ d.created_at|date:'c' }}\">{{ d.created_at|timesince }} ago</time>"
    '<td class="message">{{ d.message|truncatechars:80 }}</td>'
)


def _old_failed_deployment(alice: User) -> Deployment:
    d = factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.FAILED,
        message="Rolls back <the basket> & " + "a long explanation " * 10,
    )
    # Half an hour past the age shown, so that the minute the page is rendered does not matter.
    created = timezone.now() - timedelta(days=3, hours=2, minutes=30)
    Deployment.objects.filter(pk=d.pk).update(created_at=created)
    return Deployment.objects.get(pk=d.pk)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_a_row_shows_the_date_age_status_and_message_as_django_filters_did(
    alice: User, zone: str
) -> None:
    with override_settings(TIME_ZONE=zone):
        d = _old_failed_deployment(alice)
        page = login(alice).get("/history/").content.decode()
        expected = DJANGO_CELLS.render({"d": d})
    badge, rest = expected.split("<time", 1)
    time_cell, message_cell = ("<time" + rest).split("</time>", 1)
    assert badge in page
    assert time_cell + "</time>" in page
    assert "3\xa0days, 2\xa0hours ago" in time_cell
    assert message_cell in page
    assert "&lt;the basket&gt; &amp;" in message_cell
    assert "…" in message_cell
