import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

from environments import crypto
from environments.models import Cluster
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
TOKEN = "kube-token-7f3a9c0d1e2b4a5968776655443322110"


def test_the_token_is_stored_encrypted_and_read_back() -> None:
    cluster = factories.make_cluster("prod")
    cluster.set_token(TOKEN)
    cluster.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT token_ciphertext FROM environments_cluster WHERE id = %s", [cluster.pk]
        )
        stored = cursor.fetchone()[0]
    assert TOKEN not in stored
    assert Cluster.objects.get(pk=cluster.pk).get_token() == TOKEN


def test_a_token_encrypted_under_another_key_fails_closed() -> None:
    ciphertext = crypto.encrypt(TOKEN)
    with (
        override_settings(SECRET_KEY="another-secret-key-entirely-0123456789"),
        pytest.raises(crypto.CredentialError),
    ):
        crypto.decrypt(ciphertext)


def test_the_admin_never_renders_the_token(alice: User) -> None:
    client = login(alice)
    response = client.post(
        "/admin/environments/cluster/add/",
        {
            "name": "prod",
            "connection": "token",
            "api_url": "https://k8s.example.com:6443",
            "token": TOKEN,
            "verify_tls": "on",
        },
    )
    assert response.status_code == 302, response.content
    cluster = Cluster.objects.get(name="prod")
    assert cluster.get_token() == TOKEN
    for url in [
        "/admin/environments/cluster/",
        f"/admin/environments/cluster/{cluster.pk}/change/",
        "/",
        "/environments/",
    ]:
        page = client.get(url).content.decode()
        assert TOKEN not in page, url
        assert cluster.token_ciphertext not in page, url


def test_saving_without_a_token_keeps_the_stored_one(alice: User) -> None:
    cluster = factories.make_cluster("prod")
    cluster.connection = Cluster.Connection.TOKEN
    cluster.api_url = "https://k8s.example.com:6443"
    cluster.set_token(TOKEN)
    cluster.save()
    response = login(alice).post(
        f"/admin/environments/cluster/{cluster.pk}/change/",
        {
            "name": "prod",
            "connection": "token",
            "api_url": "https://k8s.example.com:6443",
            "token": "",
            "verify_tls": "on",
        },
    )
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.get_token() == TOKEN


def test_a_token_connection_without_url_or_token_is_refused(alice: User) -> None:
    response = login(alice).post(
        "/admin/environments/cluster/add/", {"name": "prod", "connection": "token"}
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "api_url" in errors
    assert "token" in errors
    assert not Cluster.objects.exists()
