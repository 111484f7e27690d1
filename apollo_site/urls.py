from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

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
            template_name="registration/login.html", http_method_names=["get", "post"]
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apollo_site.api_urls")),
    path("", include("ops.urls")),
]

# The site's own error pages (apollo_site.errors), in its layout, saying what to do next.
handler403 = "apollo_site.errors.forbidden"
handler404 = "apollo_site.errors.not_found"
handler500 = "apollo_site.errors.server_error"
