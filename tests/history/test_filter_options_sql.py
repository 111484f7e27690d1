"""The filter form's statement (history.selectors.filter_options) is Django's, compiled once per
process and shape, its stand-ins found among the parameters and replaced by the reader's ids
and the name asked for: it reads what the querysets it was compiled from read."""

from itertools import product

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Service
from environments.models import Environment
from history.selectors import _options_sql, filter_options
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("services", "environments", "user"), list(product([False, True], repeat=3))
)
def test_every_shape_compiles_with_each_stand_in_found_once(
    services: bool, environments: bool, user: bool
) -> None:
    sql, params, ids_at, name_at = _options_sql(
        "default",
        connection.vendor,
        services_filtered=services,
        environments_filtered=environments,
        with_user=user,
    )
    assert len(ids_at) == services + environments
    assert (name_at is not None) == user
    assert sql.count("UNION ALL") == 1 + user
    assert len(params) == sql.count("%s")


def test_it_reads_what_the_querysets_read(alice: User, bob: User) -> None:
    names = ["checkout", "Basket", "api", "zeta"]
    services = [factories.make_service(name) for name in names]
    environments = [factories.make_environment(name) for name in ("prod", "Stage", "dev")]
    service_ids = {s.pk for s in services[1:3]}
    environment_ids = {e.pk for e in environments[:2]}

    read = filter_options(service_ids=service_ids, environment_ids=environment_ids, username="bob")
    every = filter_options(service_ids=None, environment_ids=None, username="nobody")

    def pairs(rows: object) -> list[tuple[str, int]]:
        return sorted(rows.values_list("name", "pk"))  # type: ignore[attr-defined]

    assert read.services == pairs(Service.objects.filter(pk__in=service_ids))
    assert read.environments == pairs(Environment.objects.filter(pk__in=environment_ids))
    assert read.user_id == bob.pk
    assert every.services == pairs(Service.objects.all())
    assert every.environments == pairs(Environment.objects.all())
    assert every.user_id is None
    # By code point, as SQLite's BINARY and PostgreSQL's C collations sort.
    assert [name for name, _ in every.services] == ["Basket", "api", "checkout", "zeta"]


def test_a_reader_who_may_view_none_is_offered_none() -> None:
    factories.make_service("checkout")
    factories.make_environment("prod")

    read = filter_options(service_ids=set(), environment_ids=set(), username=None)

    assert read.services == read.environments == []
