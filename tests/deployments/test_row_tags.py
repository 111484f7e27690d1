"""The per-row tags of the deployment tables give what {% url %} and {% include %} give."""

import pytest
from django.template import Context, Template
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from deployments.status import Status


def _render(source: str, **context: object) -> str:
    return Template("{% load deployment_rows %}" + source).render(Context(context))


def test_row_url_matches_reverse_for_int_and_str_arguments() -> None:
    rendered = _render(
        "{% for pk in pks %}{% row_url 'deployment-detail' pk %}|{% endfor %}"
        "{% for n in names %}{% row_url 'service-detail' n %}|{% endfor %}",
        pks=[1, 42, 9081726354],
        names=["checkout", "a b&c"],
    )
    expected = [reverse("deployment-detail", args=[pk]) for pk in (1, 42, 9081726354)]
    expected += [reverse("service-detail", args=[n]) for n in ("checkout", "a b&c")]
    # {% url %} escapes its output for HTML; so does row_url.
    assert rendered == "|".join(expected).replace("&", "&amp;") + "|"


@pytest.mark.parametrize("arg", ["", "a/b"])
def test_row_url_raises_like_url_for_an_argument_no_converter_takes(arg: str) -> None:
    with pytest.raises(NoReverseMatch):
        _render("{% row_url 'service-detail' arg %}", arg=arg)


def test_status_badge_is_the_partial_and_is_not_escaped_twice() -> None:
    rendered = _render(
        "{% for s in statuses %}{% status_badge s %}{% endfor %}",
        statuses=[Status.DONE, Status.FAILED, Status.DONE],
    )
    expected = "".join(
        render_to_string("deployments/_status_badge.html", {"status": s})
        for s in (Status.DONE, Status.FAILED, Status.DONE)
    )
    assert rendered == expected
    assert "&lt;" not in rendered


def test_status_badge_escapes_the_status_as_the_partial_does() -> None:
    assert "<b>" not in _render("{% status_badge s %}", s="<b>")
