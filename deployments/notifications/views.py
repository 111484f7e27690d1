"""The notifications section of a service's page: add and remove (POST, then redirect)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from deployments.models import Service
from deployments.notifications.forms import ServiceSubscriptionForm
from deployments.notifications.models import Subscription
from deployments.notifications.services import subscribe_service, unsubscribe_service
from environments.models import Environment
from permissions.selectors import visibility


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def _service_or_404(user: User, name: str) -> Service:
    """SECURITY: a service the user may view nowhere is a 404, as on its page."""
    service = get_object_or_404(Service, name=name)
    if not visibility(user).sees(service_id=service.pk, environment_id=None):
        raise Http404(f"No service '{name}'.")
    return service


def _back(service: Service) -> HttpResponse:
    return redirect("service-detail", name=service.name)


@login_required
@require_POST
def subscription_create(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    service = _service_or_404(user, name)
    form = ServiceSubscriptionForm(request.POST, environments=Environment.objects.all())
    if not form.is_valid():
        errors = "; ".join(f"{f}: {' '.join(str(m) for m in e)}" for f, e in form.errors.items())
        messages.error(request, f"Not subscribed: {errors}")
        return _back(service)
    data = form.cleaned_data
    try:
        subscription = subscribe_service(
            user=user,
            service=service,
            environment=data["environment"],
            name=data["name"],
            kind=data["kind"],
            url=data["url"],
            secret=data["secret"],
            events=data["events"],
        )
    except PermissionDenied as exc:
        messages.error(request, f"Not subscribed: {exc}.")
    except ValidationError as exc:
        messages.error(request, "Not subscribed: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Notifications {subscription.name} added.")
    return _back(service)


@login_required
@require_POST
def subscription_delete(request: HttpRequest, name: str, subscription_id: int) -> HttpResponse:
    user = _user(request)
    service = _service_or_404(user, name)
    subscription = Subscription.objects.filter(pk=subscription_id, service=service).first()
    if subscription is None:
        messages.error(request, "Not removed: no such notification for this service.")
        return _back(service)
    try:
        unsubscribe_service(user=user, subscription=subscription)
    except PermissionDenied as exc:
        messages.error(request, f"Not removed: {exc}.")
    else:
        messages.success(request, f"Notifications {subscription.name} removed.")
    return _back(service)
