"""The header's links, reversed once per URL configuration rather than on every page, are the
ones {% url %} gives, for each persona and page: Deploy only to who may deploy somewhere, Admin
only to staff."""

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse, set_script_prefix

from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

LINKS = [
    ("deploy", "Deploy"),
    ("environment-list", "Environments"),
    ("status-board", "Status"),
    ("history", "History"),
    ("delivery-metrics", "Metrics"),
    ("admin:index", "Admin"),
]
OFFERED = {
    "alice": ["Deploy", "Environments", "Status", "History", "Metrics", "Admin"],
    "bob": ["Deploy", "Environments", "Status", "History", "Metrics"],
    "carol": ["Environments", "Status", "History", "Metrics"],
    "mallory": ["Environments", "Status", "History", "Metrics"],
    "jenkins": ["Environments", "Status", "History", "Metrics"],
}


def _header(html: str) -> str:
    found = re.search(r'<header class="topbar">.*?</header>', html, re.S)
    assert found is not None
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", found.group(0))


def _expected_nav(offered: list[str]) -> str:
    return "\n".join(
        f'<a href="{reverse(name)}">{text}</a>' for name, text in LINKS if text in offered
    )


@pytest.mark.parametrize("persona", sorted(OFFERED))
@pytest.mark.parametrize("path", ["/", "/history/", "/environments/"])
def test_each_persona_is_offered_the_links_url_tags_give(
    persona: str, path: str, request: pytest.FixtureRequest
) -> None:
    factories.make_environment("staging-1")
    factories.make_service("checkout")
    user: User = request.getfixturevalue(persona)
    header = _header(login(user).get(path).content.decode())

    nav = re.search(r'<nav aria-label="Main">\s*(.*?)\s*</nav>', header, re.S)
    assert nav is not None
    shown = "\n".join(line.strip() for line in nav.group(1).splitlines() if line.strip())
    assert shown == _expected_nav(OFFERED[persona])
    assert f'<a class="brand" href="{reverse("home")}">Apollo</a>' in header
    assert f'action="{reverse("logout")}"' in header
    assert f'<span class="who">{user.username}</span>' in header


def test_a_script_prefix_shows_in_the_links_and_leaves_with_it(mallory: User) -> None:
    client = login(mallory)
    set_script_prefix("/apollo/")
    try:
        prefixed = _header(client.get("/history/").content.decode())
    finally:
        set_script_prefix("/")
    plain = _header(client.get("/history/").content.decode())

    assert '<a class="brand" href="/apollo/">Apollo</a>' in prefixed
    assert '<a href="/apollo/history/">History</a>' in prefixed
    assert 'action="/apollo/logout/"' in prefixed
    assert '<a href="/history/">History</a>' in plain
    assert "/apollo/" not in plain
