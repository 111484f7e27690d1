from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from mozilla_django_oidc.views import OIDCLogoutView

# Single sign-on (permissions/oidc.py) when configured; with APOLLO_PASSWORD_LOGIN=false the
# log-in page takes no password (GET only) and the admin's log-in sends people to it.
SSO = bool(settings.APOLLO_OIDC_ISSUER)
login_context = {
    "oidc_enabled": SSO,
    "oidc_name": settings.APOLLO_OIDC_NAME,
    "password_login": settings.APOLLO_PASSWORD_LOGIN,
}
sso_patterns = [path("oidc/", include("mozilla_django_oidc.urls"))] if SSO else []
password_off_patterns = (
    []
    if settings.APOLLO_PASSWORD_LOGIN
    else [path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True))]
)

urlpatterns = [
    path("", include("environments.urls")),
    path("", include("deployments.urls")),
    path("", include("deployments.notifications.urls")),
    path("history/metrics/", include("history.metrics.urls")),
    path("history/", include("history.urls")),
    path(
        "login/",
        # SECURITY: GET and POST only (the form view would also take PUT as a POST).
        auth_views.LoginView.as_view(
            template_name="registration/login.html",
            http_method_names=["get", "post"] if settings.APOLLO_PASSWORD_LOGIN else ["get"],
            extra_context=login_context,
        ),
        name="login",
    ),
    path(
        "logout/",
        # A single sign-on session also ends at the provider (its end-session page).
        OIDCLogoutView.as_view(http_method_names=["post"])
        if SSO
        else auth_views.LogoutView.as_view(),
        name="logout",
    ),
    *sso_patterns,
    *password_off_patterns,
    path("admin/", admin.site.urls),
    path("api/v1/", include("apollo_site.api_urls")),
    path("", include("apollo_site.ops.urls")),
]

# The site's own error pages (apollo_site.errors), in its layout, saying what to do next.
handler403 = "apollo_site.errors.forbidden"
handler404 = "apollo_site.errors.not_found"
handler500 = "apollo_site.errors.server_error"
