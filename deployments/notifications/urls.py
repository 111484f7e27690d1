from django.urls import path

from deployments.notifications import views

urlpatterns = [
    path(
        "services/<str:name>/notifications/",
        views.subscription_create,
        name="service-notification-create",
    ),
    path(
        "services/<str:name>/notifications/<int:subscription_id>/delete/",
        views.subscription_delete,
        name="service-notification-delete",
    ),
]
