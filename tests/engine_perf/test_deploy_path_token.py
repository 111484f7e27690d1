"""The API token's lookup on the request path (#16) reads the tokens of a key's prefix in no
order: the digest is unique, so whichever comes first, each key still authenticates its own
user, and only its own, when two tokens share a prefix."""

import hashlib

import pytest
from django.contrib.auth.models import User
from django.test import Client

from permissions.models import ApiToken

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployments/"


def _token(user: User, key: str) -> None:
    digest = hashlib.sha256(key.encode()).hexdigest()
    ApiToken.objects.create(user=user, name=f"{user.username}'s", prefix="shared01", digest=digest)


def test_two_tokens_sharing_a_prefix_each_authenticate_their_own_user(
    alice: User, bob: User
) -> None:
    # Named so that the model's ordering (by username) and the ids' order differ.
    _token(bob, "apollo_shared01_bob-secret")
    _token(alice, "apollo_shared01_alice-secret")
    for key, user in (("apollo_shared01_alice-secret", alice), ("apollo_shared01_bob-secret", bob)):
        client = Client(headers={"Authorization": f"Token {key}"})
        response = client.get(URL)
        assert response.status_code == 200, response.content
        assert response.wsgi_request.user == user


def test_a_wrong_secret_under_a_shared_prefix_is_refused_and_touches_nothing(
    alice: User, bob: User
) -> None:
    _token(bob, "apollo_shared01_bob-secret")
    _token(alice, "apollo_shared01_alice-secret")
    client = Client(headers={"Authorization": "Token apollo_shared01_mallory-guess"})
    response = client.get(URL)
    assert response.status_code == 401
    assert not ApiToken.objects.filter(last_used_at__isnull=False).exists()
