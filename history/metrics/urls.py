from django.urls import path

from history.metrics import views

urlpatterns = [path("", views.metrics_page, name="delivery-metrics")]
