from django.urls import path

from deployments import views

urlpatterns = [
    path("deploy/", views.deploy, name="deploy"),
    path("deploy/versions/", views.version_choices, name="deploy-versions"),
    path("deploy/results/<str:token>/", views.deploy_results, name="deploy-results"),
    path("deployments/diff/", views.diff, name="deployment-diff"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment-detail"),
    path("deployments/<int:deployment_id>/cancel/", views.cancel, name="deployment-cancel"),
    path("deployments/<int:deployment_id>/redeploy/", views.redeploy, name="deployment-redeploy"),
]
