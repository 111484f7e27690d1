"""Apollo's URLs plus a trivial view: the baseline every page is measured against; and an empty
page in the site's layout, what every signed-in page pays before its own content (the session
and its user, the header's navigation, the messages)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def empty_page(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html")


urlpatterns = [
    path("bench/trivial/", trivial),
    path("bench/empty/", empty_page),
    path("", include("apollo_site.urls")),
]
