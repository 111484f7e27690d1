"""Single sign-on end to end in Chromium: Apollo (daphne, configured by APOLLO_OIDC_* as in
production) against a real OpenID provider process, panva's certified `oidc-provider` on
Node (tests/oidc/, `npm ci` from the npm registry into a temporary copy at the start).

dave exists only at the provider; his groups there decide which grants he holds in Apollo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from history.models import AuditEvent
from permissions.models import ExternalIdentity
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.live import LiveServer, start_live_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OIDC_SOURCE = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_SECRET = "test-only-client-secret-of-apollo-0123456789"


@pytest.fixture(scope="session")
def provider_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/oidc installed with `npm ci` (the lock file's exact versions) in a copy."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the OpenID provider (apt-get install nodejs npm)")
    directory = tmp_path_factory.mktemp("oidc")
    for name in ("package.json", "package-lock.json", "provider.js"):
        shutil.copy(OIDC_SOURCE / name, directory / name)
    result = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=directory, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return directory


def _listening_socket() -> socket.socket:
    """The provider's socket, bound and listening before Apollo starts: its port is in
    Apollo's settings, and no other server (Apollo's own daphne included) can take it between a
    probe and the provider's start, as happened with a port probed and released."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.set_inheritable(True)
    return listener


@dataclass
class Provider:
    issuer: str
    accounts_file: Path

    def set_account(self, login: str, **claims: Any) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[login] = claims
        self.accounts_file.write_text(json.dumps(accounts))


@dataclass
class SSO:
    apollo: LiveServer
    provider: Provider


@contextmanager
def _provider_process(install: Path, config: dict[str, Any], tmp: Path) -> Iterator[None]:
    (tmp / "provider.json").write_text(json.dumps(config))
    log = (tmp / "provider.log").open("wb")
    process = subprocess.Popen(
        ["node", str(install / "provider.js"), str(tmp / "provider.json")],
        cwd=install, stdout=log, stderr=subprocess.STDOUT, pass_fds=(config["fd"],),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        discovery = f"{config['issuer']}/.well-known/openid-configuration"
        while True:
            try:
                with urllib.request.urlopen(discovery, timeout=5):  # noqa: S310 (a local URL)
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the provider did not start: {(tmp / 'provider.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def start_sso(
    provider_install: Path, transactional_db: None, tmp_path: Path, monkeypatch: Any
) -> Iterator[Callable[..., SSO]]:
    """Starts Apollo with single sign-on (extra environment variables given), then the
    provider that knows Apollo's callback (Apollo's port is known only once it runs)."""
    stack: list[Any] = []

    def start(**environment: str) -> SSO:
        listener = _listening_socket()
        stack.append(listener)
        port = int(listener.getsockname()[1])
        issuer = f"http://127.0.0.1:{port}"
        settings_env = {
            "APOLLO_OIDC_ISSUER": issuer,
            "APOLLO_OIDC_CLIENT_ID": "apollo",
            "APOLLO_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "APOLLO_OIDC_AUTHORIZATION_ENDPOINT": f"{issuer}/auth",
            "APOLLO_OIDC_TOKEN_ENDPOINT": f"{issuer}/token",
            "APOLLO_OIDC_JWKS_ENDPOINT": f"{issuer}/jwks",
            "APOLLO_OIDC_END_SESSION_ENDPOINT": f"{issuer}/session/end",
            "APOLLO_OIDC_NAME": "Example SSO",
            **environment,
        }
        for name, value in settings_env.items():
            monkeypatch.setenv(name, value)  # read by the spawned daphne's settings
        server = start_live_server()
        apollo = server.__enter__()
        stack.append(server)
        accounts = tmp_path / "accounts.json"
        accounts.write_text("{}")
        config = {
            "issuer": issuer,
            "fd": listener.fileno(),
            "accounts": str(accounts),
            "client": {
                "client_id": "apollo",
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{apollo.url}/oidc/callback/"],
                "post_logout_redirect_uris": [f"{apollo.url}/login/"],
            },
        }
        process = _provider_process(provider_install, config, tmp_path)
        process.__enter__()
        stack.append(process)
        return SSO(apollo=apollo, provider=Provider(issuer, accounts))

    yield start
    for item in reversed(stack):
        if isinstance(item, socket.socket):
            item.close()
        else:
            item.__exit__(None, None, None)
    for name in list(os.environ):
        if name.startswith("APOLLO_OIDC_"):
            monkeypatch.delenv(name, raising=False)


def sso_log_in(page: Page, sso: SSO, login: str) -> None:
    page.goto(sso.apollo.url + "/login/")
    page.get_by_role("link", name="Log in with Example SSO").click()
    # The provider's own log-in page (its development interaction: any password).
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password at the provider")
    page.get_by_role("button", name="Sign-in").click()


def deployers_see_qa_east() -> Group:
    environment = factories.make_environment("qa-east", namespace="qa-apps")
    deployers = Group.objects.create(name="deployers")
    grant(actor=None, group=deployers, verbs=[Verb.VIEW], environment=environment)
    return deployers


def test_dave_is_created_at_his_first_sso_log_in_and_his_groups_grants_apply(
    start_sso: Callable[..., SSO], page: Page
) -> None:
    deployers = deployers_see_qa_east()
    sso = start_sso()
    sso.provider.set_account(
        "dave-0001", preferred_username="dave", email="dave@example.com", groups=["deployers"]
    )
    sso_log_in(page, sso, "dave-0001")
    expect(page.locator(".who")).to_have_text("dave")
    expect(page.get_by_role("cell", name="qa-east", exact=True)).to_be_visible()
    dave = User.objects.get(username="dave")
    assert list(dave.groups.all()) == [deployers]
    assert not dave.has_usable_password()
    assert not dave.is_staff
    identity = ExternalIdentity.objects.get(user=dave)
    assert (identity.issuer, identity.subject) == (sso.provider.issuer, "dave-0001")
    assert AuditEvent.objects.filter(action="user.sso_created", summary__contains="dave").exists()


def test_logging_out_ends_the_providers_session_too(
    start_sso: Callable[..., SSO], page: Page
) -> None:
    sso = start_sso()
    sso.provider.set_account("dave-0001", preferred_username="dave", groups=[])
    sso_log_in(page, sso, "dave-0001")
    expect(page.locator(".who")).to_have_text("dave")
    page.get_by_role("button", name="Log out").click()
    # The provider asks before it ends its session, then sends the browser back to Apollo.
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(sso.apollo.url + "/login/")
    expect(page.locator(".who")).to_have_count(0)
    page.goto(sso.apollo.url + "/")
    expect(page).to_have_url(sso.apollo.url + "/login/?next=/")
    # Single sign-on again asks for the provider's log-in: its session has ended as well.
    page.get_by_role("link", name="Log in with Example SSO").click()
    expect(page.locator("input[name=login]")).to_be_visible()


def test_a_group_removed_at_the_provider_is_removed_at_the_next_log_in(
    start_sso: Callable[..., SSO], page: Page
) -> None:
    deployers_see_qa_east()
    sso = start_sso()
    sso.provider.set_account("dave-0001", preferred_username="dave", groups=["deployers"])
    sso_log_in(page, sso, "dave-0001")
    expect(page.get_by_role("cell", name="qa-east", exact=True)).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(sso.apollo.url + "/login/")

    sso.provider.set_account("dave-0001", preferred_username="dave", groups=["not-in-apollo"])
    sso_log_in(page, sso, "dave-0001")
    expect(page.locator(".who")).to_have_text("dave")
    expect(page.get_by_role("heading", name="Environments")).to_be_visible()
    expect(page.get_by_role("cell", name="qa-east", exact=True)).to_have_count(0)
    dave = User.objects.get(username="dave")
    assert list(dave.groups.all()) == []  # and no group was created for the unknown name
    assert not Group.objects.filter(name="not-in-apollo").exists()
    change = AuditEvent.objects.filter(action="user.sso_groups").order_by("-pk").first()
    assert change is not None
    assert change.data["removed"] == ["deployers"]


def test_a_provider_account_named_like_the_local_admin_does_not_become_her(
    start_sso: Callable[..., SSO], page: Page, alice: User
) -> None:
    sso = start_sso()
    sso.provider.set_account(
        "mallory-at-idp", preferred_username="alice", email="alice@example.com", groups=[]
    )
    sso_log_in(page, sso, "mallory-at-idp")
    expect(page.get_by_role("heading", name="Log in to Apollo")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("already exists")
    expect(page.locator(".who")).to_have_count(0)
    assert not ExternalIdentity.objects.exists()
    assert User.objects.filter(username="alice").count() == 1


def test_with_password_log_in_off_only_sso_remains(
    start_sso: Callable[..., SSO], page: Page, bob: User
) -> None:
    sso = start_sso(APOLLO_PASSWORD_LOGIN="false")
    page.goto(sso.apollo.url + "/login/")
    expect(page.get_by_role("link", name="Log in with Example SSO")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)
    # A password posted anyway is refused (the page takes GET only), and bob is not logged in.
    answer = page.request.post(
        sso.apollo.url + "/login/", form={"username": "bob", "password": factories.PASSWORD}
    )
    assert answer.status in {403, 405}
    page.goto(sso.apollo.url + "/admin/login/?next=/admin/")
    expect(page).to_have_url(sso.apollo.url + "/login/?next=/admin/")
    page.goto(sso.apollo.url + "/")
    expect(page).to_have_url(sso.apollo.url + "/login/?next=/")
