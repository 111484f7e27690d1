"""Attack: guessing passwords and API keys as fast as the server answers.

Logins (the site's and the admin's) lock a user name or an address out after ten wrong
passwords; API tokens are throttled per token, and bad tokens per client address. Time is
moved on by ageing the recorded attempts (logins) or by a clock the throttles read (API),
never by sleeping.
"""

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client
from django.urls import reverse

from permissions import throttling
from tests.factories import PASSWORD, token_for

LIMIT = 10


def _the_clock_moves_on(seconds: int) -> None:
    """What axes sees when `seconds` pass: every recorded failure is that much older."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def _log_in(client: Client, url: str, username: str, password: str) -> int:
    response = client.post(url, {"username": username, "password": password, "next": "/"})
    return response.status_code


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_the_eleventh_wrong_password_in_a_minute_is_refused_and_so_is_the_right_one(
    alice: User, url_name: str
) -> None:
    client = Client()
    url = reverse(url_name)
    for _ in range(LIMIT):
        assert _log_in(client, url, "alice", "wrong") == 200  # the form again, with its error
    assert _log_in(client, url, "alice", "wrong") == 429  # the 11th
    refused = client.post(url, {"username": "alice", "password": PASSWORD, "next": "/"})
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    assert int(refused["Retry-After"]) > 0
    assert "Too many failed log-in attempts" in refused.content.decode()

    _the_clock_moves_on(60)
    assert _log_in(client, url, "alice", PASSWORD) == 429  # still inside the cool-off
    _the_clock_moves_on(throttling.login_cool_off().seconds)
    assert _log_in(client, url, "alice", PASSWORD) == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_a_locked_out_user_name_is_refused_from_another_address(alice: User) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(LIMIT + 1):
        _log_in(attacker, reverse("login"), "alice", "wrong")
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert _log_in(elsewhere, reverse("login"), "alice", PASSWORD) == 429


def test_one_address_guessing_many_user_names_is_locked_out(alice: User, bob: User) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(LIMIT + 1):
        _log_in(attacker, reverse("login"), f"user{n}", "wrong")
    assert _log_in(attacker, reverse("login"), "bob", PASSWORD) == 429
    assert _log_in(Client(REMOTE_ADDR="198.51.100.7"), reverse("login"), "bob", PASSWORD) == 302


def test_a_correct_login_within_the_limit_is_not_held_back(bob: User) -> None:
    client = Client()
    for _ in range(LIMIT):
        _log_in(client, reverse("login"), "bob", "wrong")
    assert _log_in(client, reverse("login"), "bob", PASSWORD) == 302


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(throttling, "clock", fake)
    return fake


def _versions(key: str, address: str = "203.0.113.9") -> int:
    client = Client(REMOTE_ADDR=address)
    response = client.get(reverse("api:deployments"), headers={"Authorization": f"Token {key}"})
    return response.status_code


def test_guessing_api_keys_from_one_address_is_throttled_then_even_a_good_key_waits(
    bob: User, clock: _Clock
) -> None:
    good = token_for(bob, "bob")
    for n in range(LIMIT):
        assert _versions(f"apollo_{n:08x}_guess") == 401
    client = Client(REMOTE_ADDR="203.0.113.9")
    refused = client.get(reverse("api:deployments"), headers={"Authorization": f"Token {good}"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "throttled" in refused.json()["detail"].lower()
    assert _versions(good, address="198.51.100.7") == 200  # another address is not held back

    clock.now += 61
    assert _versions(good) == 200


def test_one_token_is_limited_to_its_rate(bob: User, clock: _Clock, settings: Any) -> None:
    settings.APOLLO_API_RATE = "5/minute"
    key = token_for(bob, "bob")
    for _ in range(5):
        assert _versions(key) == 200
    refused = Client(REMOTE_ADDR="198.51.100.7").get(
        reverse("api:deployments"), headers={"Authorization": f"Token {key}"}
    )
    assert refused.status_code == 429  # per token, whatever the address
    assert 0 < int(refused["Retry-After"]) <= 60
    clock.now += 61
    assert _versions(key) == 200


def test_the_recorded_failures_never_keep_the_password(alice: User) -> None:
    _log_in(Client(), reverse("login"), "alice", "my-secret-guess")
    attempt = AccessAttempt.objects.get(username="alice")
    assert "my-secret-guess" not in f"{attempt.post_data} {attempt.get_data}"
