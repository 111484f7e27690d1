"""{% service_notifications service %}: what the notifications section of a service page shows."""

from typing import Any

from django import template
from django.contrib.auth.models import User
from django.forms import ModelChoiceField

from deployments.models import Service
from deployments.notifications.forms import ServiceSubscriptionForm
from deployments.notifications.models import Subscription
from deployments.notifications.services import manage_scopes
from environments.models import Environment

register = template.Library()


@register.simple_tag(takes_context=True)
def service_notifications(context: dict[str, Any], service: Service) -> dict[str, Any]:
    """Only for a `manage` holder of the service (somewhere): its subscriptions (the host, never
    the URL) and a form whose environments are those they manage."""
    user = context["request"].user
    if not isinstance(user, User):
        return {"shown": False}
    managed, every = manage_scopes(user, service)
    if not managed:
        return {"shown": False}
    subscriptions = list(Subscription.objects.filter(service=service).select_related("environment"))
    # Its own ids: the page holds other forms (a new group) with fields of the same names.
    form = ServiceSubscriptionForm(
        environments=Environment.objects.filter(pk__in=managed), auto_id="notification-%s"
    )
    if not every:  # "every environment" takes manage in every environment
        field = form.fields["environment"]
        assert isinstance(field, ModelChoiceField)
        field.required = True
        field.empty_label = None
    return {
        "shown": True,
        "subscriptions": [
            {
                "subscription": s,
                "may_remove": every if s.environment_id is None else s.environment_id in managed,
            }
            for s in subscriptions
        ],
        "form": form,
    }
