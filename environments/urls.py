from django.urls import path

from environments import board_views
from environments.live import jolokia, views

urlpatterns = [
    path("", views.home, name="home"),
    path("environments/", views.environment_list, name="environment-list"),
    path("status/", board_views.board, name="status-board"),
    path("environments/<str:name>/", views.environment_detail, name="environment-detail"),
    path("environments/<str:name>/logs/", views.logs, name="environment-logs"),
    path(
        "environments/<str:name>/pods/<str:pod>/restart/",
        views.restart_pod,
        name="environment-pod-restart",
    ),
    path("environments/<str:name>/pods/<str:pod>/shell/", views.shell, name="environment-shell"),
    path(
        "environments/<str:name>/pods/<str:pod>/jolokia/",
        jolokia.proxy,
        {"path": ""},
        name="environment-jolokia-root",
    ),
    path(
        "environments/<str:name>/pods/<str:pod>/jolokia/<path:path>",
        jolokia.proxy,
        name="environment-jolokia",
    ),
    path(
        "environments/<str:name>/services/<str:service>/restart/",
        views.restart_service,
        name="environment-service-restart",
    ),
    path(
        "environments/<str:name>/groups/<int:group_id>/scale/",
        views.scale_group,
        name="environment-group-scale",
    ),
]
