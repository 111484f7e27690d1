"""Every action control shows only when the action is possible for this user now (issue 13,
defect 5): Cancel all / Revert all on a batch, the Deploy link in the header, the Deploy and
Logs links of the service page."""

import re
import uuid

import pytest
from django.contrib.auth.models import User

from deployments.models import Group, Service
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


def _batch(alice: User, checkout: Service, environment: Environment, status: str) -> uuid.UUID:
    batch = uuid.uuid4()
    for service in (checkout, factories.make_service()):
        factories.make_deployment(
            service=service,
            environment=environment,
            deployed_by=alice,
            source_version=factories.make_version(service),
            status=status,
            batch=batch,
        )
    return batch


def _shown(page: str, form_id: str) -> bool:
    tag = re.search(rf'<form[^>]*id="{form_id}"[^>]*>', page)
    assert tag is not None, form_id
    return " hidden" not in tag.group(0)


def test_bob_may_cancel_and_revert_a_running_batch_in_staging(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    batch = _batch(alice, checkout, stage, Status.STARTED)
    page = login(bob).get(f"/deployments/batch/{batch}/").content.decode()
    assert _shown(page, "cancel-all")
    assert _shown(page, "revert-all")


def test_carol_sees_neither_cancel_all_nor_revert_all(
    alice: User, carol: User, checkout: Service, stage: Environment
) -> None:
    batch = _batch(alice, checkout, stage, Status.STARTED)
    response = login(carol).get(f"/deployments/batch/{batch}/")
    page = response.content.decode()
    assert not _shown(page, "cancel-all")
    assert not _shown(page, "revert-all")
    state = login(carol).get(f"/deployments/batch/{batch}/status/").json()
    assert state["any_cancel"] is False
    assert state["any_revert"] is False


def test_a_finished_batch_offers_revert_all_and_says_why_cancel_all_is_disabled(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    batch = _batch(alice, checkout, stage, Status.DONE)
    page = login(bob).get(f"/deployments/batch/{batch}/").content.decode()
    assert _shown(page, "cancel-all")
    assert 'disabled aria-describedby="why-cancel-all"' in page
    assert "Nothing left to cancel: every deployment has finished." in page
    assert _shown(page, "revert-all")
    assert 'disabled aria-describedby="why-revert-all"' not in page


def test_bob_may_not_revert_a_finished_batch_in_production_and_is_told_why(
    alice: User, bob: User, checkout: Service, production: Environment, stage: Environment
) -> None:
    batch = _batch(alice, checkout, production, Status.DONE)
    page = login(bob).get(f"/deployments/batch/{batch}/").content.decode()
    # bob deploys in staging: he could revert, not here; the rows and Revert all say why.
    assert _shown(page, "revert-all")
    assert 'disabled aria-describedby="why-revert-all"' in page
    rows = re.findall(r'<form[^>]*class="revert"[^>]*>', page)
    assert len(rows) == 2
    assert not any(" hidden" in row for row in rows)
    assert page.count("bob may not deploy") >= 3


def test_the_deploy_link_shows_to_who_may_deploy_somewhere(
    alice: User, bob: User, carol: User, mallory: User, stage: Environment, checkout: Service
) -> None:
    for user, shown in ((alice, True), (bob, True), (carol, False), (mallory, False)):
        page = login(user).get("/").content.decode()
        assert ('href="/deploy/"' in page) is shown, user.username


def test_the_service_page_links_deploy_and_logs_only_where_allowed(
    bob: User, stage: Environment, production: Environment
) -> None:
    ingest = factories.make_service("ingest", deployed_per_group=True)
    for environment in (stage, production):
        Group.objects.create(service=ingest, environment=environment, name="eu")
    page = login(bob).get("/services/ingest/").content.decode()
    assert f"environments={stage.pk}&amp;groups=" in page
    assert f"environments={production.pk}&amp;groups=" not in page
    assert "/environments/stage-1/logs/?service=ingest" in page
    assert "/environments/production/logs/?service=ingest" not in page
