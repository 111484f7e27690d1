"""The querysets built once per process (#16: the board's cells and blockers, the Deploy page's
"what runs now" and closing blockers, the permission holdings) are bases each request clones.
None may ever be evaluated: its rows (the blockers in force, the grants, what runs) would then
be kept for the life of the process and every later request would see them. After the pages
that use them, for a superuser and a developer, every base is still unevaluated, and a blocker,
a grant and a deployment made between two requests show on the second."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import QuerySet

from deployments import selectors as deployment_selectors
from environments import board
from environments.models import Environment
from permissions import selectors as permission_selectors
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _bases() -> dict[str, QuerySet[Any]]:
    bases: dict[str, QuerySet[Any]] = {
        "board._ranked": board._ranked(),
        "board._active_blockers": board._active_blockers(),
        "deployments._closing_blockers": deployment_selectors._closing_blockers(),
        "deployments._last_done": deployment_selectors._last_done(),
    }
    users, groups = permission_selectors._every_verb_queries()
    bases |= {"permissions._every_verb_queries": users, "(groups)": groups}
    for verb in Verb:
        users, groups = permission_selectors._holding_queries(verb)
        bases |= {f"permissions._holding_queries({verb})": users, f"({verb}, groups)": groups}
    return bases


def _pages(user: User, staging: Environment, production: Environment, service_pk: int) -> str:
    client = login(user)
    chosen = {"services": [service_pk], "environments": [staging.pk, production.pk]}
    pages = [client.get(path) for path in ("/", "/status/", "/history/", "/deploy/")]
    pages.append(client.get("/deploy/", chosen))
    assert [page.status_code for page in pages] == [200] * len(pages)
    return "".join(page.content.decode() for page in pages)


def test_no_base_is_evaluated_and_what_changes_between_requests_shows(
    alice: User, carol: User
) -> None:
    staging = factories.make_environment("staging-eu", availability="staging")
    production = factories.make_environment("prod-eu", availability="production")
    service = factories.make_service("checkout")
    factories.make_deployment(service=service, environment=staging, deployed_by=alice)
    grant(actor=None, user=carol, verbs=[Verb.VIEW, Verb.DEPLOY], environment=staging)
    for user in (alice, carol):
        _pages(user, staging, production, service.pk)

    # Between two requests: a blocker, carol's grant on production, a deployment there.
    Blocker.objects.create(name="freeze-after-first-page", kind="unconditional")
    grant(actor=None, user=carol, verbs=[Verb.VIEW, Verb.DEPLOY], environment=production)
    later = factories.make_version(service, commit_message="shipped between two pages")
    factories.make_deployment(
        service=service, environment=production, deployed_by=alice, version=later
    )
    for user in (alice, carol):
        page = _pages(user, staging, production, service.pk)
        assert "freeze-after-first-page" in page, user
        assert "prod-eu" in page, user
        assert later.git_commit_sha[:12] in page, user

    evaluated = [name for name, base in _bases().items() if base._result_cache is not None]
    assert evaluated == []
