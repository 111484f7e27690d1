"""The Deploy page: what it offers each persona, how it validates, and the per-item results."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Group, Service
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

SHA = "abcdef0123456789abcdef0123456789abcdef01"


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _post(client: Client, **data: object) -> Any:
    return client.post("/deploy/", data)


def _results(client: Client, response: Any) -> list[dict[str, Any]]:
    """Per target: what was created (the page followed next: one deployment's page, or the
    batch page) or, when anything was refused, the Deploy page again with every target."""
    if response.status_code == 302:
        page = client.get(response.url)
        assert page.status_code == 200
        if "/deployments/batch/" in response.url:
            batch = response.url.rstrip("/").rsplit("/", 1)[-1]
            created = list(Deployment.objects.filter(batch=batch).order_by("id"))
        else:
            created = [Deployment.objects.get(pk=response.url.rstrip("/").rsplit("/", 1)[-1])]
        return [
            {
                "kind": "created",
                "deployment_id": d.pk,
                "service": d.service.name,
                "environment": d.environment.name,
                "group": d.group_key,
            }
            for d in created
        ]
    assert response.status_code == 409, getattr(response, "context", None)
    assert "Nothing was deployed" in response.content.decode()
    return [
        {
            "kind": r.kind,
            "service": r.service.name,
            "environment": r.environment.name,
            "group": r.group.name if r.group else "",
            "reason": r.reason,
            "blockers": [{"name": b.name, "kind": b.kind} for b in r.refusals],
            "may_override": r.may_override,
        }
        for r in response.context["checks"]
    ]


# -- who sees what -------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/deploy/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert client.post("/deploy/", {}).status_code == 302
    assert Deployment.objects.count() == 0


def test_bob_sees_production_disabled_with_the_reason_beside_it(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    page = login(bob).get("/deploy/")
    boxes = {choice.name: choice for _, choice in page.context["environment_boxes"]}
    assert boxes["staging"].deployable
    assert not boxes["production"].deployable
    assert boxes["production"].reason == "bob may not deploy production: no grant matches"
    body = page.content.decode()
    assert f'id="env-{production.pk}" disabled aria-describedby="why-env-{production.pk}"' in body
    assert "bob may not deploy production: no grant matches" in body
    assert f'id="env-{staging.pk}">' in body  # enabled


def test_a_deny_is_named_beside_the_service_it_refuses(
    bob: User, staging: Environment, checkout: Service
) -> None:
    secret = factories.make_service("vault")
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=secret, effect=Effect.DENY)
    page = login(bob).get("/deploy/")
    boxes = {choice.name: choice for _, choice in page.context["service_boxes"]}
    assert boxes["checkout"].deployable
    assert not boxes["vault"].deployable
    assert "DENY" in boxes["vault"].reason
    assert "bob may not deploy vault" in page.content.decode()


def test_alice_is_offered_everything(
    alice: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    page = login(alice).get("/deploy/")
    assert set(page.context["form"].fields["environments"].queryset) == {staging, production}


@pytest.mark.parametrize("persona", ["carol", "mallory"])
def test_users_without_grants_are_offered_nothing_and_told_why(
    personas: dict[str, User], persona: str, staging: Environment, checkout: Service
) -> None:
    page = login(personas[persona]).get("/deploy/")
    assert page.status_code == 200
    assert "You may not deploy anything anywhere" in page.content.decode()


@pytest.mark.parametrize("persona", ["carol", "mallory"])
def test_a_forged_post_from_a_user_without_grants_creates_nothing(
    personas: dict[str, User], persona: str, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA)
    response = _post(
        login(personas[persona]),
        environments=[staging.pk],
        services=[checkout.pk],
        sha=SHA,
    )
    body = response.content.decode()
    assert "You may not deploy anything anywhere" in body
    assert "not one of the available choices" not in body
    if persona == "mallory":  # sees nothing: the ids name nothing she may see
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert f"There is no environment {staging.pk} that you may see." in errors["environments"]
    else:  # carol sees staging and checkout: the gate names why she may not deploy
        assert response.status_code == 409
        assert "carol may not deploy checkout in staging" in body
    assert Deployment.objects.count() == 0


def test_bob_cannot_post_production_even_by_forging_the_form(
    bob: User, production: Environment, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA)
    response = _post(login(bob), environments=[production.pk], services=[checkout.pk], sha=SHA)
    assert response.status_code == 409
    assert "bob may not deploy checkout in production" in response.content.decode()
    assert "not one of the available choices" not in response.content.decode()
    assert Deployment.objects.count() == 0


def test_a_forged_id_gets_a_clear_message(
    bob: User, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA)
    response = _post(login(bob), environments=[424242], services=[checkout.pk], sha=SHA)
    assert response.status_code == 400
    assert "There is no environment 424242 that you may see." in response.content.decode()
    assert not Deployment.objects.exists()


def test_the_page_lists_recent_versions_of_the_chosen_service(
    bob: User, staging: Environment, checkout: Service
) -> None:
    factories.make_version(
        checkout, SHA, commit_message="Fix the basket", commit_author="dev", branch="main"
    )
    page = login(bob).get("/deploy/", {"services": [checkout.pk]}).content.decode()
    assert "Fix the basket" in page
    assert SHA[:12] in page
    assert f'value="{SHA}"' in page


def test_the_versions_fragment_answers_for_the_chosen_services(
    bob: User, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA, commit_message="Fragment me")
    fragment = login(bob).get("/deploy/versions/", {"services": [checkout.pk]})
    assert "Fragment me" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


@pytest.mark.parametrize("path", ["/deploy/", "/deploy/versions/"])
def test_it_ignores_service_ids_that_are_not_ascii_digits(
    bob: User, staging: Environment, checkout: Service, path: str
) -> None:
    response = login(bob).get(path, {"services": ["²", "9" * 30, str(checkout.pk)]})
    assert response.status_code == 200


@pytest.mark.parametrize("field", ["services", "environments", "groups"])
def test_it_explains_an_out_of_range_id_instead_of_failing(
    bob: User, staging: Environment, checkout: Service, field: str
) -> None:
    data = {"services": checkout.pk, "environments": staging.pk, "sha": SHA[:8]}
    response = _post(login(bob), **{**data, field: "9" * 30})
    assert response.status_code == 400
    assert not Deployment.objects.exists()


def test_the_page_makes_a_constant_number_of_queries(
    alice: User, staging: Environment, checkout: Service
) -> None:
    client = login(alice)
    factories.make_version(checkout)
    with CaptureQueriesContext(connection) as few:
        client.get("/deploy/", {"services": [checkout.pk]})
    for _ in range(10):
        service = factories.make_service()
        factories.make_version(service)
        factories.make_environment()
        factories.make_version(checkout)
    with CaptureQueriesContext(connection) as many:
        client.get("/deploy/", {"services": [checkout.pk]})
    assert len(many) == len(few)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"sha": "abc"}, "at least 4 hex digits"),
        ({"sha": "xyz123"}, "only hex digits"),
        ({}, "Choose the version one way"),
        ({"sha": SHA, "branch": "main"}, "Choose the version one way"),
        ({"sha": "0000000"}, "No version 0000000 is registered for checkout"),
        ({"branch": "nowhere"}, "No chosen service has a version on branch"),
        ({"version": "not-a-sha"}, "Pick a version from the list"),
    ],
)
def test_bad_input_is_explained_and_creates_nothing(
    bob: User, staging: Environment, checkout: Service, data: dict[str, str], error: str
) -> None:
    factories.make_version(checkout, SHA)
    response = _post(login(bob), environments=[staging.pk], services=[checkout.pk], **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert Deployment.objects.count() == 0


def test_an_ambiguous_prefix_lists_the_candidates(
    bob: User, staging: Environment, checkout: Service
) -> None:
    first = factories.make_version(checkout, "abcd1" + "0" * 35)
    second = factories.make_version(checkout, "abcd2" + "0" * 35)
    response = _post(login(bob), environments=[staging.pk], services=[checkout.pk], sha="abcd")
    body = response.content.decode()
    assert response.status_code == 400
    assert "matches 2 commits" in body
    assert first.git_commit_sha[:12] in body
    assert second.git_commit_sha[:12] in body
    assert Deployment.objects.count() == 0


def test_nothing_is_required_that_is_missing(bob: User, staging: Environment) -> None:
    response = _post(login(bob), sha=SHA)
    assert response.status_code == 400
    assert response.context["form"].errors.keys() >= {"environments", "services"}


def test_a_group_of_another_target_is_refused(
    alice: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA)
    elsewhere = Group.objects.create(service=checkout, environment=production, name="eu")
    response = _post(
        login(alice),
        environments=[staging.pk],
        services=[checkout.pk],
        sha=SHA,
        groups=[elsewhere.pk],
    )
    assert response.status_code == 400
    assert "not of a chosen service and environment" in response.content.decode()


# -- results -------------------------------------------------------------------------------


def test_bob_deploys_a_picked_version_to_staging(
    bob: User, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, SHA)
    client = login(bob)
    response = _post(
        client, environments=[staging.pk], services=[checkout.pk], version=SHA, message="go"
    )
    [result] = _results(client, response)
    deployment = Deployment.objects.get()
    assert result["kind"] == "created"
    assert result["deployment_id"] == deployment.pk
    assert deployment.message == "go"
    assert deployment.status == Status.PENDING
    assert deployment.deployed_by == bob
    # One deployment: the user lands on its page, which follows it live.
    assert response.url == f"/deployments/{deployment.pk}/"


def test_a_sha_prefix_deploys_the_version_it_names(
    bob: User, staging: Environment, checkout: Service
) -> None:
    version = factories.make_version(checkout, SHA)
    client = login(bob)
    [result] = _results(
        client, _post(client, environments=[staging.pk], services=[checkout.pk], sha="ABCDEF01")
    )
    assert result["kind"] == "created"
    assert Deployment.objects.get().version == version


def test_latest_on_a_branch_deploys_the_newest_version_of_that_branch(
    bob: User, staging: Environment, checkout: Service
) -> None:
    factories.make_version(checkout, branch="release")
    newest = factories.make_version(checkout, branch="release")
    factories.make_version(checkout, branch="main")
    client = login(bob)
    _results(
        client, _post(client, environments=[staging.pk], services=[checkout.pk], branch="release")
    )
    assert Deployment.objects.get().version == newest


def test_one_sha_to_several_services_and_environments_gives_a_result_per_item_and_holds_all(
    alice: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    payments = factories.make_service("payments")
    factories.make_version(checkout, SHA)
    factories.make_version(payments, SHA)
    lonely = factories.make_service("lonely")
    client = login(alice)
    results = _results(
        client,
        _post(
            client,
            environments=[staging.pk, production.pk],
            services=[checkout.pk, payments.pk, lonely.pk],
            sha=SHA[:10],
        ),
    )
    kinds = {(r["service"], r["environment"]): r["kind"] for r in results}
    # All or nothing (deployments.services.deploy.request_deployments): lonely has no such
    # version, so nothing is created and the others are held.
    assert kinds == {
        ("checkout", "staging"): "held",
        ("payments", "staging"): "held",
        ("lonely", "staging"): "invalid",
        ("checkout", "production"): "held",
        ("payments", "production"): "held",
        ("lonely", "production"): "invalid",
    }
    invalid = next(r for r in results if r["kind"] == "invalid")
    assert invalid["reason"] == f"lonely has no version {SHA[:10]}"
    assert Deployment.objects.count() == 0
    results = _results(
        client,
        _post(
            client,
            environments=[staging.pk, production.pk],
            services=[checkout.pk, payments.pk],
            sha=SHA[:10],
        ),
    )
    assert [r["kind"] for r in results] == ["created"] * 4
    assert Deployment.objects.count() == 4
    assert len(set(Deployment.objects.values_list("batch", flat=True))) == 1


def test_staging_and_production_without_a_message_creates_nothing_and_lists_the_refusal(
    alice: User, staging: Environment, checkout: Service
) -> None:
    strict = factories.make_environment("prod", require_deployment_message=True)
    factories.make_version(checkout, SHA)
    client = login(alice)
    response = _post(client, environments=[staging.pk, strict.pk], services=[checkout.pk], sha=SHA)
    results = _results(client, response)
    assert {(r["environment"], r["kind"]) for r in results} == {
        ("staging", "held"),
        ("prod", "invalid"),
    }
    body = response.content.decode()
    assert "prod requires a deployment message" in body
    assert "1 of 2 targets refused" in body
    # The selection is kept, so the user may untick the refused target or add a message.
    assert f'value="{strict.pk}" id="env-{strict.pk}" checked' in body
    assert Deployment.objects.count() == 0


def test_bob_is_refused_per_item_with_the_explanation(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    # bob may deploy payments to production, so production is offered, but not checkout.
    payments = factories.make_service("payments")
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=payments, environment=production)
    factories.make_version(checkout, SHA)
    client = login(bob)
    [result] = _results(
        client, _post(client, environments=[production.pk], services=[checkout.pk], sha=SHA)
    )
    assert result["kind"] == "refused"
    assert "checkout" in str(result["reason"])
    assert "production" in str(result["reason"])
    response = _post(client, environments=[production.pk], services=[checkout.pk], sha=SHA)
    assert str(result["reason"]) in response.content.decode().replace("&#x27;", "'")
    assert Deployment.objects.count() == 0


def test_an_environment_that_requires_a_message_reports_it(bob: User, checkout: Service) -> None:
    strict = factories.make_environment("strict", require_deployment_message=True)
    factories.make_version(checkout, SHA)
    client = login(bob)
    [result] = _results(
        client, _post(client, environments=[strict.pk], services=[checkout.pk], sha=SHA)
    )
    assert result["kind"] == "invalid"
    assert result["reason"] == "strict requires a deployment message"


def test_a_service_deployed_per_group_needs_groups_and_deploys_each(
    bob: User, staging: Environment
) -> None:
    sharded = factories.make_service("sharded", deployed_per_group=True)
    factories.make_version(sharded, SHA)
    eu = Group.objects.create(service=sharded, environment=staging, name="eu")
    us = Group.objects.create(service=sharded, environment=staging, name="us")
    client = login(bob)
    [result] = _results(
        client, _post(client, environments=[staging.pk], services=[sharded.pk], sha=SHA)
    )
    assert result["kind"] == "invalid"
    assert "deployed per group" in str(result["reason"])
    page = client.get("/deploy/").content.decode()
    assert "sharded / staging / eu" in page
    assert "deployed per group" in page
    results = _results(
        client,
        _post(
            client, environments=[staging.pk], services=[sharded.pk], sha=SHA, groups=[eu.pk, us.pk]
        ),
    )
    assert [(r["group"], r["kind"]) for r in results] == [("eu", "created"), ("us", "created")]
    assert set(Deployment.objects.values_list("group_key", flat=True)) == {"eu", "us"}


def test_already_in_progress_links_the_running_deployment(
    bob: User, staging: Environment, checkout: Service
) -> None:
    version = factories.make_version(checkout, SHA)
    running = factories.make_deployment(
        service=checkout,
        environment=staging,
        deployed_by=bob,
        version=version,
        status=Status.STARTED,
    )
    client = login(bob)
    response = _post(client, environments=[staging.pk], services=[checkout.pk], sha=SHA)
    [result] = _results(client, response)
    assert result["kind"] == "in_progress"
    assert "already in progress" in result["reason"]
    assert running.status == Status.STARTED


def _blocker(**extra: object) -> Blocker:
    return Blocker.objects.create(name="freeze", kind="unconditional", **extra)


def test_a_blocked_item_lists_its_blockers_and_offers_no_override_to_bob(
    bob: User, staging: Environment, checkout: Service
) -> None:
    _blocker(environment=staging)
    factories.make_version(checkout, SHA)
    client = login(bob)
    response = _post(client, environments=[staging.pk], services=[checkout.pk], sha=SHA)
    [result] = _results(client, response)
    assert result["kind"] == "blocked"
    assert result["blockers"][0]["name"] == "freeze"
    assert result["may_override"] is False
    page = response.content.decode()
    assert "freeze" in page
    assert "override_reason" not in page
    assert Deployment.objects.count() == 0


def test_alice_overrides_a_blocker_from_the_deploy_page(
    alice: User, staging: Environment, checkout: Service
) -> None:
    _blocker(environment=staging)
    factories.make_version(checkout, SHA)
    client = login(alice)
    response = _post(
        client, environments=[staging.pk], services=[checkout.pk], sha=SHA, message="hotfix"
    )
    [result] = _results(client, response)
    assert result["kind"] == "blocked"
    assert result["may_override"] is True
    assert 'name="override_reason"' in response.content.decode()
    again = _post(
        client,
        environments=[staging.pk],
        services=[checkout.pk],
        sha=SHA,
        message="hotfix",
        override_reason="customer is down",
    )
    assert [r["kind"] for r in _results(client, again)] == ["created"]
    deployment = Deployment.objects.get()
    assert deployment.override_reason == "customer is down"
    assert deployment.message == "hotfix"
    assert deployment.overridden_blockers[0]["name"] == "freeze"


def test_stale_results_send_the_user_back_to_the_form(bob: User) -> None:
    response = login(bob).get("/deploy/results/nope/")
    assert response.status_code == 302
    assert response["Location"] == "/deploy/"


def test_group_options_name_their_service_and_environment_for_the_page_script(
    bob: User, staging: Environment
) -> None:
    sharded = factories.make_service("sharded", deployed_per_group=True)
    eu = Group.objects.create(service=sharded, environment=staging, name="eu")
    page = login(bob).get("/deploy/").content.decode()
    assert f'data-service="{sharded.pk}" data-environment="{staging.pk}"' in page
    assert f'type="checkbox" name="groups" value="{eu.pk}"' in page


def test_environments_that_require_a_message_say_so(bob: User, checkout: Service) -> None:
    strict = factories.make_environment("strict", require_deployment_message=True)
    page = login(bob).get("/deploy/")
    boxes = {choice.name: choice for _, choice in page.context["environment_boxes"]}
    assert boxes["strict"].note == "message required"
    assert "message required" in page.content.decode()
    assert strict.pk


def test_the_page_makes_a_constant_number_of_queries_for_bob_too(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    """bob's refusals are explained from one read of his holdings, not one query per choice."""
    client = login(bob)
    factories.make_version(checkout)
    query = {"services": [checkout.pk], "environments": [staging.pk, production.pk]}
    with CaptureQueriesContext(connection) as few:
        client.get("/deploy/", query)
    for _ in range(10):
        factories.make_version(factories.make_service())
        factories.make_environment(availability="production")
    with CaptureQueriesContext(connection) as many:
        page = client.get("/deploy/", query)
    assert len(many) == len(few)
    assert sum(not c.deployable for _, c in page.context["environment_boxes"]) == 11


def test_a_blocker_that_closes_an_environment_is_named_beside_it_with_its_end(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    Blocker.objects.create(
        name="late-freeze",
        kind="time_window",
        availability="staging",
        config={"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59", "timezone": "UTC"},
    )
    Blocker.objects.create(name="prod-lock", kind="unconditional", environment=production)
    # Not environment-wide: scoped to one service (the check per target names it).
    Blocker.objects.create(name="checkout-only", kind="unconditional", service=checkout)
    exempted = Blocker.objects.create(name="not-for-bob", kind="unconditional")
    exempted.exempt_users.add(bob)
    page = login(bob).get("/deploy/")
    notes = {choice.name: choice.note for _, choice in page.context["environment_boxes"]}
    assert notes["staging"] == "blocked by 'late-freeze' until 23:59 UTC"
    assert notes["production"] == "blocked by 'prod-lock' until it is lifted"
    body = page.content.decode().replace("&#x27;", "'")
    assert "blocked by 'late-freeze' until 23:59 UTC" in body
    assert "checkout-only" not in body
    assert "not-for-bob" not in body


def test_a_refused_deploy_keeps_the_override_reason_typed(
    alice: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    _blocker(environment=staging)
    factories.make_version(checkout, SHA)
    production.require_deployment_message = True
    production.save()
    response = _post(
        login(alice),
        environments=[staging.pk, production.pk],
        services=[checkout.pk],
        sha=SHA,
        override_reason="customer is down",
    )
    assert response.status_code == 409  # production still wants a message
    assert 'value="customer is down"' in response.content.decode()
    assert not Deployment.objects.exists()
