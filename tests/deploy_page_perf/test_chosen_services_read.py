"""The Deploy form's services (deployments.forms.ServiceChoiceField): when the user may view
every service, the chosen ones are read by a statement compiled once per number of ids, as
Service instances Django would give (converted columns, name order); an id that does not
exist is refused as Django's check refuses it, and a user who may view some services only is
checked by Django, a hidden id refused like a missing one."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.forms import DeployForm
from deployments.models import Service
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


def _form(user: User, services: list[object], staging: Environment) -> DeployForm:
    form = DeployForm(
        {"services": [str(s) for s in services], "environments": [str(staging.pk)]}, user=user
    )
    form.is_valid()
    return form


def test_the_chosen_services_read_as_django_reads_them_in_name_order(
    staging: Environment,
) -> None:
    admin = factories.make_user("root", is_superuser=True)
    zeta = factories.make_service("zeta", default_variables={"region": "eu"})
    alpha = factories.make_service("alpha", deployed_per_group=True)
    with CaptureQueriesContext(connection) as captured:
        form = _form(admin, [zeta.pk, alpha.pk, zeta.pk], staging)
    chosen = form.cleaned_data["services"]
    assert [s.name for s in chosen] == ["alpha", "zeta"]
    assert chosen == list(Service.objects.filter(pk__in=[zeta.pk, alpha.pk]).order_by("name"))
    assert chosen[0].deployed_per_group is True
    assert chosen[1].default_variables == {"region": "eu"}
    assert chosen[1].created_at == zeta.created_at
    assert len([q for q in captured if "deployments_service" in q["sql"]]) == 1


@pytest.mark.parametrize("count", [1, 3])
def test_a_missing_id_is_refused_as_djangos_check_refuses_it(
    count: int, staging: Environment
) -> None:
    admin = factories.make_user("root", is_superuser=True)
    services = [factories.make_service(f"svc-{n}").pk for n in range(count - 1)]
    missing = Service.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    form = _form(admin, [*services, missing + 1000], staging)
    assert form.errors["services"] == [f"There is no service {missing + 1000} that you may see."]


def test_a_service_hidden_from_the_user_is_refused_like_a_missing_one(
    staging: Environment,
) -> None:
    seen, hidden = factories.make_service("seen"), factories.make_service("hidden")
    carol = factories.make_user("carol")
    grant(actor=None, user=carol, verbs=[Verb.VIEW], service=seen, environment=staging)
    assert list(_form(carol, [seen.pk], staging).cleaned_data["services"]) == [seen]
    refused = _form(carol, [seen.pk, hidden.pk], staging)
    assert refused.errors["services"] == [f"There is no service {hidden.pk} that you may see."]
