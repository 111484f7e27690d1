from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils import timezone

from deployments.models import Service
from environments.models import Environment
from history.metrics.compute import Period
from permissions.selectors import Visibility, visibility

MAX_DAYS = 366
DEFAULT_DAYS = 30


def default_period(today: date | None = None) -> Period:
    end = today or timezone.localdate()
    return Period(end - timedelta(days=DEFAULT_DAYS - 1), end)


class MetricsForm(forms.Form):
    """The scope (a service, an environment, or the whole team) and the period. Only what the
    user may view is offered, and anything else is not a valid choice."""

    service: forms.ModelChoiceField[Service] = forms.ModelChoiceField(
        queryset=Service.objects.none(),
        required=False,
        to_field_name="name",
        empty_label="every service",
    )
    environment: forms.ModelChoiceField[Environment] = forms.ModelChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        to_field_name="name",
        empty_label="every environment",
    )
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, user: User | AnonymousUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What the user may view, read once per request: the choices and the figures use it.
        self.seen: Visibility = visibility(user)
        services, environments = Service.objects.all(), Environment.objects.all()
        if not self.seen.everything:
            services = services.filter(pk__in=sorted(self.seen.service_ids))
            environments = environments.filter(pk__in=sorted(self.seen.environment_ids))
        service = self.fields["service"]
        environment = self.fields["environment"]
        assert isinstance(service, forms.ModelChoiceField)
        assert isinstance(environment, forms.ModelChoiceField)
        # SECURITY: offer (and accept) only the services and environments the user may view.
        service.queryset = services.order_by("name")
        environment.queryset = environments.order_by("name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        default = default_period()
        end = data.get("end") or default.end
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("The period starts after it ends.")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"The period is at most {MAX_DAYS} days.")
        data["period"] = Period(start, end)
        return data

    def choice_queryset(self, name: str) -> QuerySet[Any]:
        """The rows field `name` (service or environment) accepts: what the user may view."""
        field = self.fields[name]
        assert isinstance(field, forms.ModelChoiceField)
        assert field.queryset is not None
        return field.queryset
