"""The Deploy page as a developer posts from it (a service and two environments chosen): a
fixed number of queries whatever the size of the catalogue and the history, and the check
before a version is chosen deciding only the chosen pairs, as `can` would."""

import re
from datetime import UTC

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.forms import DeployForm
from deployments.models import Service
from deployments.selectors import pair_refusals
from environments.models import Environment
from permissions.models import Blocker
from permissions.selectors import allowed_targets
from permissions.services import can, grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# The chosen page's queries today (session and user, the form's choices, the blockers, the
# versions picker, what runs, the check): a change that adds one per row breaks the equality
# below, one that adds a fixed one must raise this on purpose.
MAX_QUERIES = {"alice": 12, "bob": 15}


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _grow(deployer: User, checkout: Service, environments: list[Environment]) -> None:
    """Ten times the catalogue, and a history for the chosen targets."""
    for _ in range(10):
        factories.make_version(factories.make_service())
        factories.make_environment(availability="production")
        for environment in environments:
            factories.make_deployment(
                service=checkout, environment=environment, deployed_by=deployer
            )


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_a_service_and_two_environments_chosen_cost_the_same_queries_for_ten_times_everything(
    persona: str,
    request: pytest.FixtureRequest,
    alice: User,
    staging: Environment,
    production: Environment,
    checkout: Service,
) -> None:
    user: User = request.getfixturevalue(persona)
    factories.make_version(checkout)
    query = {"services": [checkout.pk], "environments": [staging.pk, production.pk]}
    client = login(user)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/deploy/", query).status_code == 200
    _grow(alice, checkout, [staging, production])
    with CaptureQueriesContext(connection) as many:
        page = client.get("/deploy/", query)
    assert page.status_code == 200
    assert len(page.context["checks"]) == 2  # the page did check both targets
    assert len(many) == len(few) <= MAX_QUERIES[persona]


def test_the_check_before_a_version_refuses_exactly_the_chosen_pairs_can_refuses(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    """bob deploys in staging (his persona), and here also checkout in production (a pair
    grant) but not ledger in staging (a pair DENY, more specific than his staging grant)."""
    ledger = factories.make_service("ledger")
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=checkout, environment=production)
    grant(
        actor=None,
        user=bob,
        verbs=[Verb.DEPLOY],
        effect=Effect.DENY,
        service=ledger,
        environment=staging,
    )
    query = {"services": [checkout.pk, ledger.pk], "environments": [staging.pk, production.pk]}
    checks = login(bob).get("/deploy/", query).context["checks"]
    verdicts = {(r.service.name, r.environment.name): r for r in checks}
    assert len(verdicts) == 4
    for (service, environment), row in verdicts.items():
        allowed = can(
            bob,
            Verb.DEPLOY,
            service=Service.objects.get(name=service),
            environment=Environment.objects.get(name=environment),
        )
        assert row.kind == ("unchecked" if allowed else "refused"), (service, environment)
    assert verdicts[("checkout", "production")].kind == "unchecked"
    assert verdicts[("ledger", "staging")].kind == "refused"
    assert "bob may not deploy ledger in staging" in verdicts[("ledger", "staging")].reason
    assert "bob may not deploy ledger in production" in verdicts[("ledger", "production")].reason


def test_an_inactive_account_is_refused_every_pair_whatever_its_grants(
    bob: User, staging: Environment, checkout: Service
) -> None:
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    refused = pair_refusals(bob, [checkout], [staging])
    assert refused == {(checkout.pk, staging.pk): refused[(checkout.pk, staging.pk)]}
    assert "account inactive" in refused[(checkout.pk, staging.pk)]


def test_the_choices_a_user_may_deploy_agree_with_allowed_targets(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    """The page decides deployable choices from scopes (whole environments and other pairs),
    not from every pair spelled out: the same answer as allowed_targets, here with a pair
    ALLOW in production, a service ALLOW everywhere and an environment DENY beside bob's
    staging grant."""
    ledger, audit = factories.make_service("ledger"), factories.make_service("audit")
    closed = factories.make_environment("staging-closed", availability="staging")
    hidden = factories.make_environment("production-2", availability="production")
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=checkout, environment=production)
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=audit)
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], effect=Effect.DENY, environment=closed)
    pairs = allowed_targets(bob, Verb.DEPLOY)
    page = login(bob).get("/deploy/").context
    deployable_environments = {c.pk for _, c in page["environment_boxes"] if c.deployable}
    deployable_services = {c.pk for _, c in page["service_boxes"] if c.deployable}
    assert deployable_environments == {e for _, e in pairs}
    assert deployable_services == {s for s, _ in pairs}
    assert closed.pk not in deployable_environments  # the DENY holds for every service
    assert hidden.pk in deployable_environments  # through audit's service grant
    assert ledger.pk in deployable_services  # through the staging grant


def test_bobs_page_binds_no_list_of_every_services_id(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    # bob may view every service of staging, so every service: the form's services are not
    # filtered by a list of every id (three such lists were a quarter of his page at 1,000
    # services); only the chosen one is named.
    for _ in range(25):
        factories.make_service()
    query = {"services": [checkout.pk], "environments": [staging.pk, production.pk]}
    with CaptureQueriesContext(connection) as captured:
        assert login(bob).get("/deploy/", query).status_code == 200
    lists = [
        ids.split(",")
        for q in captured.captured_queries
        for ids in re.findall(r'"deployments_service"\."id" IN \(([^)]*)\)', q["sql"])
    ]
    assert lists
    assert all(len(ids) == 1 for ids in lists), lists


def test_bobs_page_reads_the_catalogue_once(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    # Every service's id and every environment's availability, which his visibility and his
    # deploy choices both decide over: read once for the request, not once each.
    query = {"services": [checkout.pk], "environments": [staging.pk, production.pk]}
    with CaptureQueriesContext(connection) as captured:
        assert login(bob).get("/deploy/", query).status_code == 200
    whole_tables = [
        q["sql"].split(" ORDER BY")[0]
        for q in captured.captured_queries
        if " WHERE " not in q["sql"]
        and (
            'FROM "deployments_service"' in q["sql"]
            or 'FROM "environments_environment"' in q["sql"]
        )
    ]
    assert sorted(whole_tables) == sorted(set(whole_tables)), whole_tables


def test_a_blocker_closes_an_environment_for_everyone_but_the_users_it_exempts(
    alice: User, bob: User, carol: User, staging: Environment
) -> None:
    # environment_blockers excludes the user's exemptions as a subquery of blocker ids, on a
    # query built once per process: the exemption must stay the signed-in user's own.
    exempted = Blocker.objects.create(name="not-for-bob", kind="unconditional")
    exempted.exempt_users.add(bob, carol)
    Blocker.objects.create(name="for-carol-too", kind="unconditional", availability="staging")
    notes = {}
    for user in (alice, bob, carol):
        page = login(user).get("/deploy/")
        notes[user.username] = {c.name: c.note for _, c in page.context["environment_boxes"]}
    assert notes["alice"]["staging"] == (
        "blocked by 'for-carol-too' until it is lifted; blocked by 'not-for-bob' until it is lifted"
    )
    assert notes["bob"].get("staging", "") == notes["carol"].get("staging", "")
    assert notes["carol"]["staging"] == "blocked by 'for-carol-too' until it is lifted"


def test_a_form_takes_the_choices_of_a_form_of_its_own_user_only(
    alice: User, mallory: User, staging: Environment
) -> None:
    # The page's GET binds its selection form with the page form's choices (built once).
    alices = DeployForm(initial={}, user=alice)
    with pytest.raises(ValueError, match="same user"):
        DeployForm({"environments": [staging.pk]}, user=mallory, offered_like=alices)
    again = DeployForm({"environments": [staging.pk]}, user=alice, offered_like=alices)
    assert list(again.offered[0]) == [staging]


def test_a_hidden_environment_named_in_the_query_string_is_still_refused(
    bob: User, staging: Environment
) -> None:
    # bob's selection form takes his page form's choices: production is among them (he views
    # it), an environment nobody granted him is not.
    production = factories.make_environment("prod-1", availability="production")
    hidden = factories.make_environment("secret-1", availability="secret")
    checkout = factories.make_service("checkout")
    client = login(bob)
    for environment, offered in ((staging, True), (production, True), (hidden, False)):
        page = client.get(
            "/deploy/", {"services": [checkout.pk], "environments": [environment.pk]}
        ).content.decode()
        assert (f'value="{environment.pk}" id="env-{environment.pk}"' in page) is offered
        assert (environment.name in page) is offered


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_the_chosen_environments_are_read_with_the_listed_ones_not_again(
    persona: str,
    request: pytest.FixtureRequest,
    staging: Environment,
    production: Environment,
    checkout: Service,
) -> None:
    # The page lists every environment the user may view; the selection's validation picks
    # the chosen ones from that list rather than reading them again.
    user: User = request.getfixturevalue(persona)
    for _ in range(5):
        factories.make_environment(availability="staging")
    query = {"services": [checkout.pk], "environments": [staging.pk, production.pk]}
    with CaptureQueriesContext(connection) as captured:
        page = login(user).get("/deploy/", query)
    assert page.status_code == 200
    assert [(c.environment.name, c.service.name) for c in page.context["checks"]] == [
        ("production", "checkout"),
        ("staging", "checkout"),
    ]
    environment_rows = [
        q["sql"]
        for q in captured.captured_queries
        if ' FROM "environments_environment"' in q["sql"]
        and '"environments_environment"."namespace"' in q["sql"]
    ]
    assert len(environment_rows) == 1, environment_rows


def test_the_selection_refuses_a_hidden_or_unknown_environment_among_listed_ones(
    bob: User, staging: Environment, checkout: Service
) -> None:
    # SECURITY: validated against the list of what bob may view, an environment he may not
    # view is refused in the same words as one that does not exist, and "0<id>" is not <id>.
    hidden = factories.make_environment("secret-1", availability="secret")
    page_form = DeployForm(initial={}, user=bob)
    for wrong in (hidden.pk, hidden.pk + 1000, f"0{staging.pk}"):
        form = DeployForm(
            {"services": [checkout.pk], "environments": [staging.pk, wrong]},
            user=bob,
            offered_like=page_form,
        )
        assert not form.is_valid()
        assert form.errors["environments"] == [f"There is no environment {wrong} that you may see."]
    form = DeployForm(
        {"services": [checkout.pk], "environments": [staging.pk, "x"]},
        user=bob,
        offered_like=page_form,
    )
    assert not form.is_valid()
    assert form.errors["environments"] == ["“x” is not a environment id."]


def test_pages_of_the_same_shape_each_show_what_runs_in_their_own_targets(
    alice: User, staging: Environment, production: Environment
) -> None:
    # What runs is read by SQL compiled once per number of environments and services
    # (selectors._last_done_sql): two pages of one service and two environments each bind
    # their own ids, and get the last DONE deployment of each target, its version whole
    # enough to compare (its registration time an aware datetime, as Django reads it).
    from datetime import timedelta

    from django.utils import timezone

    from deployments.selectors import running_versions

    now = timezone.now()
    expected = {}
    for name in ("api", "web"):
        service = factories.make_service(name)
        for environment in (staging, production):
            for age, status in ((3, "DONE"), (2, "DONE"), (1, "FAILED")):
                version = factories.make_version(
                    service, commit_message=f"{name} {environment.name} {age}"
                )
                deployment = factories.make_deployment(
                    service=service,
                    environment=environment,
                    deployed_by=alice,
                    version=version,
                    status=status,
                    finished_at=now - timedelta(minutes=age),
                )
                if age == 2:
                    expected[(service.pk, environment.pk, "")] = (deployment, version)
    client = login(alice)
    for name, other in (("api", "web"), ("web", "api"), ("api", "web")):
        service = Service.objects.get(name=name)
        query = {"services": [service.pk], "environments": [staging.pk, production.pk]}
        page = client.get("/deploy/", query)
        assert page.status_code == 200
        [(_, rows)] = page.context["recent"]
        runs = {row.version.commit_message: row.runs_in for row in rows if row.runs_in}
        assert runs == {f"{name} staging 2": ["staging"], f"{name} production 2": ["production"]}
        assert other not in " ".join(runs)
    running = running_versions(list(Service.objects.all()), [staging, production])
    assert set(running) == set(expected)
    for key, (deployment, version) in expected.items():
        found = running[key]
        assert (found.pk, found.finished_at, found.environment.name) == (
            deployment.pk,
            deployment.finished_at,
            deployment.environment.name,
        )
        assert (found.version.pk, found.version.created_at, found.version.git_commit_sha) == (
            version.pk,
            version.created_at,
            version.git_commit_sha,
        )
        assert found.version.created_at.tzinfo is not None


def test_the_closing_blockers_are_read_with_their_config_in_force(
    alice: User, staging: Environment
) -> None:
    # The closing blockers are read by SQL compiled once per process with the user's id
    # (selectors._closing_blockers_sql), their config decoded as Django decodes it: an open
    # window names its end, and a change of config between two pages shows on the second.
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now().astimezone(UTC)
    window = Blocker.objects.create(
        name="lunch",
        kind="time_window",
        availability="staging",
        config={
            "days": list(range(7)),
            "start": f"{now - timedelta(hours=1):%H:%M}",
            "end": f"{now + timedelta(hours=1):%H:%M}",
            "timezone": "UTC",
        },
    )
    client = login(alice)

    def note() -> str:
        page = client.get("/deploy/")
        return str({c.name: c.note for _, c in page.context["environment_boxes"]}["staging"])

    assert note() == f"blocked by 'lunch' until {now + timedelta(hours=1):%H:%M} UTC"
    Blocker.objects.filter(pk=window.pk).update(
        kind="unconditional", config={"except_services": ["checkout"]}
    )
    assert note() == ""  # an unconditional blocker with exceptions does not close it all
    Blocker.objects.filter(pk=window.pk).update(config={})
    assert note() == "blocked by 'lunch' until it is lifted"
