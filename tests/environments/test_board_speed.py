"""What the status board's faster paths write (#16): each row by environments.board.Row.html
rather than a template loop (its header links to its service's page, names its group, and
escapes both), and a cell's dates from one isoformat() where the zone allows it."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import Deployment, Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_each_row_links_to_its_service_and_names_its_group(
    alice: User, checkout: Service, production: Environment
) -> None:
    factories.make_deployment(service=checkout, environment=production, deployed_by=alice)
    grouped = factories.make_deployment(service=checkout, environment=production, deployed_by=alice)
    Deployment.objects.filter(pk=grouped.pk).update(group_key="blue")
    page = login(alice).get("/status/").content.decode()
    link = '<th scope="row"><a href="/services/checkout/">checkout</a>'
    assert f'<tr data-key="checkout">\n    {link}</th>\n    <td class="cell' in page
    assert (
        f'<tr data-key="checkout/blue">\n    {link} <span class="group">/ blue</span></th>' in page
    )


def test_a_group_name_is_escaped_in_its_row(
    alice: User, checkout: Service, production: Environment
) -> None:
    deployment = factories.make_deployment(
        service=checkout, environment=production, deployed_by=alice
    )
    Deployment.objects.filter(pk=deployment.pk).update(group_key='<b id="x">')
    page = login(alice).get("/status/").content.decode()
    assert '<b id="x">' not in page
    assert '<tr data-key="checkout/&lt;b id=&quot;x&quot;&gt;">' in page
    assert '<span class="group">/ &lt;b id=&quot;x&quot;&gt;</span>' in page


def test_no_row_says_there_is_nothing_to_show(alice: User, production: Environment) -> None:
    page = login(alice).get("/status/?service=").content.decode()
    assert "<tbody>\n  \n  <tr><td colspan=" in page
    assert 'class="empty">Nothing to show.</td></tr>' in page


@pytest.mark.parametrize(
    ("zone", "stamp"),
    [("UTC", "2026-07-01 10:30 UTC"), ("Europe/Berlin", "2026-07-01 12:30 CEST")],
)
def test_a_cell_dates_its_version_in_utc_and_titles_it_in_the_current_zone(
    alice: User, checkout: Service, production: Environment, zone: str, stamp: str
) -> None:
    # The title is sliced from the UTC isoformat() when the zone's offset is UTC's, from the
    # zone's own otherwise (environments.board._commit).
    factories.make_deployment(
        service=checkout,
        environment=production,
        deployed_by=alice,
        finished_at=datetime(2026, 7, 1, 10, 30, 5, 250000, tzinfo=UTC),
    )
    client = login(alice)
    with timezone.override(ZoneInfo(zone)):
        page = client.get("/status/").content.decode()
    assert f'<time datetime="2026-07-01T10:30:05.250000+00:00" title="{stamp}">' in page
