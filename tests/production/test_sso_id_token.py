"""The ID token rule of permissions/oidc.py (rule 1): signature, expiry and nonce are the
library's; the issuer and the audience are ours. Tokens signed here with a key of the test's
own, given to the backend as the provider's key (OIDC_RP_IDP_SIGN_KEY)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import SuspiciousOperation

from permissions.oidc import ApolloOIDCBackend, LoginRefused

ISSUER = "https://idp.example.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


@pytest.fixture
def backend(settings: Any) -> ApolloOIDCBackend:
    settings.APOLLO_OIDC_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID = "apollo"
    settings.OIDC_RP_CLIENT_SECRET = "test-only-client-secret"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.OIDC_OP_USER_ENDPOINT = ""
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_RP_IDP_SIGN_KEY = PUBLIC_PEM
    return ApolloOIDCBackend()


def token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "apollo", "sub": "dave-0001", "nonce": "n1", "exp": now + 60}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, KEY, algorithm="RS256")


def test_a_token_of_the_provider_for_apollo_is_accepted(backend: ApolloOIDCBackend) -> None:
    assert backend.verify_token(token(), nonce="n1")["sub"] == "dave-0001"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example.com"}, "another provider"),
        ({"aud": "another-app"}, "another application"),
        ({"aud": ["another-app", "apollo"], "azp": "another-app"}, "another application"),
        ({"aud": None}, "another application"),
    ],
)
def test_a_token_from_another_issuer_or_for_another_client_is_refused(
    backend: ApolloOIDCBackend, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(LoginRefused, match=reason):
        backend.verify_token(token(**claims), nonce="n1")


def test_an_expired_token_a_replayed_nonce_or_a_foreign_signature_is_refused(
    backend: ApolloOIDCBackend,
) -> None:
    # An expired token was PyJWT's error escaping the callback (a 500); now a refusal.
    with pytest.raises(LoginRefused, match="ExpiredSignatureError"):
        backend.verify_token(token(exp=int(time.time()) - 5), nonce="n1")
    with pytest.raises(SuspiciousOperation):
        backend.verify_token(token(), nonce="another-log-in")
    forged = jwt.encode(
        {"iss": ISSUER, "aud": "apollo", "sub": "x", "nonce": "n1", "exp": int(time.time()) + 60},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
    )
    with pytest.raises(SuspiciousOperation):
        backend.verify_token(forged, nonce="n1")
