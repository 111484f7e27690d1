"""The filter form's first read (history.selectors.read_catalogue) is Django's statement,
compiled once per process and shape, its stand-in found among the parameters and replaced by
the name asked for: it reads every service and environment and the user named, as the
querysets it was compiled from read them; filter_options narrows the names to the ids the
reader may view, by code point. The rows are given to the request's permission reads, which
then decide over them without reading the tables again."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from history.selectors import _catalogue_sql, filter_options, read_catalogue
from permissions.selectors import reads_shared_for_one_request, visibility
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("user", [False, True])
def test_every_shape_compiles_with_its_stand_in_found_once(user: bool) -> None:
    sql, params, name_at = _catalogue_sql("default", connection.vendor, with_user=user)
    assert (name_at is not None) == user
    assert sql.count("UNION ALL") == 1 + user
    assert len(params) == sql.count("%s")


def test_it_reads_what_the_querysets_read(alice: User, bob: User) -> None:
    names = ["checkout", "Basket", "api", "zeta"]
    services = [factories.make_service(name) for name in names]
    environments = [
        factories.make_environment(name, availability=availability)
        for name, availability in (("prod", "production"), ("Stage", "staging"), ("dev", "dev"))
    ]
    read = read_catalogue(username="bob")
    assert sorted(read.services) == sorted(Service.objects.values_list("pk", "name"))
    assert sorted(read.environments) == sorted(
        Environment.objects.values_list("pk", "availability", "name")
    )
    assert read.user_id == bob.pk
    assert read_catalogue(username="nobody").user_id is None
    assert read_catalogue(username=None).user_id is None

    service_ids = {s.pk for s in services[1:3]}
    environment_ids = {e.pk for e in environments[:2]}
    some = filter_options(read, service_ids=service_ids, environment_ids=environment_ids)
    every = filter_options(read, service_ids=None, environment_ids=None)

    def pairs(rows: object) -> list[tuple[str, int]]:
        return sorted(rows.values_list("name", "pk"))  # type: ignore[attr-defined]

    assert some.services == pairs(Service.objects.filter(pk__in=service_ids))
    assert some.environments == pairs(Environment.objects.filter(pk__in=environment_ids))
    assert every.services == pairs(Service.objects.all())
    assert every.environments == pairs(Environment.objects.all())
    # By code point, as SQLite's BINARY and PostgreSQL's C collations sort.
    assert [name for name, _ in every.services] == ["Basket", "api", "checkout", "zeta"]


@pytest.mark.parametrize("granted", ["staging", "production"])
def test_the_visibility_is_decided_over_the_rows_read_without_reading_them_again(
    granted: str,
) -> None:
    reader = factories.make_user("dana")
    factories.make_service("checkout")
    staging = factories.make_environment("staging-1", availability="staging")
    production = factories.make_environment("prod-1", availability="production")
    grant(actor=None, user=reader, verbs=[Verb.VIEW], availability=granted, note="test")
    decided_alone = visibility(reader)
    with reads_shared_for_one_request(), CaptureQueriesContext(connection) as queries:
        read_catalogue(username=None)
        decided = visibility(reader)
    assert decided == decided_alone
    assert decided.environment_ids == {staging.pk if granted == "staging" else production.pk}
    # The catalogue, then the reader's grants: no read of the services or environments alone.
    reads = [q["sql"] for q in queries.captured_queries]
    assert len(reads) == 2, reads
    assert "UNION ALL" in reads[0]
    assert "permissions_grant" in reads[1]


def test_a_reader_who_may_view_none_is_offered_none() -> None:
    factories.make_service("checkout")
    factories.make_environment("prod")

    read = filter_options(read_catalogue(username=None), service_ids=set(), environment_ids=set())

    assert read.services == read.environments == []
