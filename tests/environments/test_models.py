import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests import factories

pytestmark = pytest.mark.django_db


def test_a_cluster_namespace_pair_belongs_to_one_environment() -> None:
    cluster = factories.make_cluster()
    factories.make_environment("staging", cluster=cluster, namespace="apps")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_environment("staging-2", cluster=cluster, namespace="apps")
    # Another cluster may use the same namespace name.
    factories.make_environment("staging-3", namespace="apps")


def test_environment_names_are_unique() -> None:
    factories.make_environment("production")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_environment("production", namespace="other")


def test_a_namespace_must_be_a_dns_label() -> None:
    environment = factories.make_environment("qa")
    environment.namespace = "Not_A_Label"
    with pytest.raises(ValidationError) as excinfo:
        environment.full_clean()
    assert "namespace" in excinfo.value.message_dict
