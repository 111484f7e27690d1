from django.urls import path

from environments import views

urlpatterns = [
    path("", views.home, name="home"),
    path("environments/", views.environment_list, name="environment-list"),
]
