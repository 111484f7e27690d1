import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model

from deployments.models import Deployment
from permissions.sessions import UserSession
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
OUR_APPS = {"environments", "deployments", "permissions", "history"}


def _our_models() -> list[type[Model]]:
    # SECURITY: sessions have no admin: their keys (the rows' ids) are secrets that no page
    # renders (permissions.sessions).
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS and m is not UserSession]


def test_every_model_of_ours_has_an_admin() -> None:
    missing = [m.__name__ for m in _our_models() if not admin.site.is_registered(m)]
    assert missing == []


def test_alice_can_open_every_changelist_and_add_page(alice: User) -> None:
    factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
    )
    client = login(alice)
    for model in _our_models():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(base).status_code == 200, base
        assert client.get(base, {"q": "x"}).status_code == 200, base


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_non_staff_personas_are_sent_to_the_admin_login(
    personas: dict[str, User], persona: str
) -> None:
    response = login(personas[persona]).get("/admin/environments/cluster/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_deployments_cannot_be_added_or_edited_in_the_admin(alice: User) -> None:
    client = login(alice)
    assert client.get("/admin/deployments/deployment/add/").status_code == 403


def test_deployments_cannot_be_deleted_from_the_admin(alice: User) -> None:
    deployment = factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
    )
    client = login(alice)
    url = f"/admin/deployments/deployment/{deployment.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Deployment.objects.filter(pk=deployment.pk).exists()


def test_a_registered_versions_service_and_sha_cannot_be_edited(alice: User) -> None:
    service = factories.make_service("api")
    version = factories.make_version(service, "a" * 40)
    client = login(alice)
    response = client.post(
        f"/admin/deployments/deployableversion/{version.pk}/change/",
        {
            "service": factories.make_service("other").pk,
            "git_commit_sha": "b" * 40,
            "branch": "main",
        },
    )
    assert response.status_code == 302
    version.refresh_from_db()
    assert (version.service, version.git_commit_sha, version.branch) == (service, "a" * 40, "main")
