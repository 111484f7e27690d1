from django.urls import path

from deployments import views

urlpatterns = [
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment-detail"),
]
