"""Single sign-on settings (APOLLO_OIDC_*, APOLLO_PASSWORD_LOGIN) fail loudly when incomplete,
and configure mozilla-django-oidc and the log-in when complete.
End to end: tests/browser/test_sso.py."""

from __future__ import annotations

import pytest

from tests.apollo_site.test_settings import _settings_in_subprocess

ISSUER = "https://idp.example.com"
COMPLETE = {
    "APOLLO_OIDC_ISSUER": ISSUER,
    "APOLLO_OIDC_CLIENT_ID": "apollo",
    "APOLLO_OIDC_CLIENT_SECRET": "test-only-client-secret",
    "APOLLO_OIDC_AUTHORIZATION_ENDPOINT": f"{ISSUER}/auth",
    "APOLLO_OIDC_TOKEN_ENDPOINT": f"{ISSUER}/token",
    "APOLLO_OIDC_JWKS_ENDPOINT": f"{ISSUER}/jwks",
}


@pytest.mark.parametrize("missing", ["APOLLO_OIDC_CLIENT_ID", "APOLLO_OIDC_JWKS_ENDPOINT"])
def test_an_issuer_without_the_client_or_an_endpoint_stops_the_start_naming_it(
    missing: str,
) -> None:
    env = {k: v for k, v in COMPLETE.items() if k != missing}
    result = _settings_in_subprocess(env, "s.AUTHENTICATION_BACKENDS")
    assert result.returncode != 0
    assert f"{missing} is required when APOLLO_OIDC_ISSUER is set" in result.stderr


def test_password_login_off_without_single_sign_on_stops_the_start() -> None:
    result = _settings_in_subprocess({"APOLLO_PASSWORD_LOGIN": "false"}, "1")
    assert result.returncode != 0
    assert "APOLLO_PASSWORD_LOGIN=false needs single sign-on" in result.stderr


def test_with_password_login_off_only_the_sso_backend_authenticates() -> None:
    env = {**COMPLETE, "APOLLO_PASSWORD_LOGIN": "false"}
    result = _settings_in_subprocess(env, "s.AUTHENTICATION_BACKENDS")
    assert result.returncode == 0, result.stderr
    assert "ModelBackend" not in result.stdout
    assert "permissions.oidc.ApolloOIDCBackend" in result.stdout


def test_the_sign_algorithm_is_one_of_the_asymmetric_ones() -> None:
    # HS256 would make the client secret the key that signs ID tokens.
    result = _settings_in_subprocess({**COMPLETE, "APOLLO_OIDC_SIGN_ALGO": "HS256"}, "1")
    assert result.returncode != 0
    assert "APOLLO_OIDC_SIGN_ALGO" in result.stderr


def test_the_providers_logout_page_is_allowed_as_a_form_target() -> None:
    env = {**COMPLETE, "APOLLO_OIDC_END_SESSION_ENDPOINT": f"{ISSUER}/session/end"}
    result = _settings_in_subprocess(env, "s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']")
    assert result.returncode == 0, result.stderr
    assert ISSUER in result.stdout
