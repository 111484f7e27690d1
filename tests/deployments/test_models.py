import pytest
from django.db import DataError, IntegrityError, transaction

from deployments.models import DeployableVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_version_is_unique_per_service_and_sha() -> None:
    service = factories.make_service()
    factories.make_version(service, "a" * 40)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_version(service, "a" * 40)
    # The same sha for another service is a different version.
    factories.make_version(factories.make_service(), "a" * 40)


@pytest.mark.parametrize("sha", ["abc", "A" * 40, "g" * 40, "a" * 41, ""])
def test_the_database_refuses_a_sha_that_is_not_40_lower_hex(sha: str) -> None:
    service = factories.make_service()
    # PostgreSQL refuses an over-long value by its column width (DataError) before the check.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        DeployableVersion.objects.create(service=service, git_commit_sha=sha)


def test_the_image_is_the_repository_tagged_with_the_full_sha() -> None:
    service = factories.make_service("api", image_repository="demo/api")
    version = factories.make_version(service, "0123456789abcdef0123456789abcdef01234567")
    assert version.image == "demo/api:0123456789abcdef0123456789abcdef01234567"
