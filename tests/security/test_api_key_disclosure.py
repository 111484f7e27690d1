"""Attack: reading a freshly issued API key from where it should never have been.

The admin's add view used to put the key in a flash message, which Django's default message
storage carries in a cookie (sent back on every request, kept by proxies and browser
history). The key must be shown once, on a page that is not cached, and nowhere else.
"""

from django.contrib.auth.models import User
from django.test import Client

from permissions.models import ApiToken
from permissions.tokens import user_for_key
from tests.conftest import login

ADD_URL = "/admin/permissions/apitoken/add/"


def _every_cookie_and_message(client: Client, responses: list) -> str:  # type: ignore[type-arg]
    seen = [response.get("Set-Cookie", "") for response in responses]
    seen += [morsel.OutputString() for morsel in client.cookies.values()]
    for response in responses:
        for response_cookie in response.cookies.values():
            seen.append(response_cookie.value)
        context = getattr(response, "context", None)
        if context is not None and "messages" in context:
            seen += [str(message) for message in context["messages"]]
    return "\n".join(seen)


def test_a_new_api_key_is_shown_once_on_an_uncached_page_and_never_in_a_cookie(
    alice: User, jenkins: User
) -> None:
    client = login(alice)
    created = client.post(ADD_URL, {"user": jenkins.pk, "name": "Jenkins backup"})
    assert created.status_code == 302
    shown = client.get(created["Location"])
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    key = shown.context["api_key"]
    assert key.startswith("apollo_")
    assert key in shown.content.decode()
    assert user_for_key(key) == jenkins

    reloaded = client.get(created["Location"])
    assert reloaded.status_code == 200
    assert key not in reloaded.content.decode()
    assert "no longer be shown" in reloaded.content.decode()

    token = ApiToken.objects.get(user=jenkins, name="Jenkins backup")
    later = [
        client.get("/admin/permissions/apitoken/"),
        client.get(f"/admin/permissions/apitoken/{token.pk}/change/"),
    ]
    for page in later:
        assert key not in page.content.decode()
    assert key not in _every_cookie_and_message(client, [created, shown, reloaded, *later])


def test_another_admin_cannot_read_the_key_from_the_issued_page(alice: User, jenkins: User) -> None:
    client = login(alice)
    created = client.post(ADD_URL, {"user": jenkins.pk, "name": "Jenkins backup"})
    other_admin = User.objects.create_superuser("alice2", password="x-long-enough-pw")
    peek = login(other_admin).get(created["Location"])
    assert peek.status_code == 200
    assert "apollo_" not in peek.content.decode()
    assert "apollo_" in client.get(created["Location"]).content.decode()
