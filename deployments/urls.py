from django.urls import path

from deployments import bad_version_views, group_views, views

urlpatterns = [
    path("deploy/", views.deploy, name="deploy"),
    path("deploy/versions/", views.version_choices, name="deploy-versions"),
    path("deploy/check/", views.deploy_check, name="deploy-check"),
    path("deploy/preview/", views.deploy_preview, name="deploy-preview"),
    path("deploy/results/<str:token>/", views.deploy_results, name="deploy-results"),
    path("deployments/diff/", views.diff, name="deployment-diff"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment-detail"),
    path("deployments/<int:deployment_id>/cancel/", views.cancel, name="deployment-cancel"),
    path("deployments/<int:deployment_id>/redeploy/", views.redeploy, name="deployment-redeploy"),
    path(
        "deployments/<int:deployment_id>/mark-bad/",
        bad_version_views.mark_bad,
        name="deployment-mark-bad",
    ),
    path("bad-versions/", bad_version_views.bad_version_list, name="bad-versions"),
    path(
        "bad-versions/<int:mark_id>/unmark/",
        bad_version_views.unmark,
        name="bad-version-unmark",
    ),
    path("deployments/batch/<uuid:batch>/", group_views.batch_detail, name="deployment-batch"),
    path(
        "deployments/batch/<uuid:batch>/status/",
        group_views.batch_status,
        name="deployment-batch-status",
    ),
    path(
        "deployments/batch/<uuid:batch>/cancel/",
        group_views.batch_cancel,
        name="deployment-batch-cancel",
    ),
    path(
        "deployments/batch/<uuid:batch>/revert/",
        group_views.batch_revert,
        name="deployment-batch-revert",
    ),
    path("services/<str:name>/", group_views.service_detail, name="service-detail"),
    path("services/<str:name>/groups/", group_views.group_create, name="service-group-create"),
    path(
        "services/<str:name>/groups/<int:group_id>/",
        group_views.group_change,
        name="service-group-change",
    ),
    path(
        "services/<str:name>/groups/<int:group_id>/delete/",
        group_views.group_delete,
        name="service-group-delete",
    ),
    path(
        "services/<str:name>/groups/<int:group_id>/scale/",
        group_views.group_scale,
        name="service-group-scale",
    ),
]
