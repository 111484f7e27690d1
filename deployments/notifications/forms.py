from typing import Any

from django import forms

from deployments.notifications.models import Event, Subscription
from environments.models import Environment


class ServiceSubscriptionForm(forms.Form):
    """A subscription on a service's page: validates and normalises, the service decides."""

    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Subscription.Kind.choices)
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.none(), required=False, empty_label="every environment"
    )
    url = forms.CharField(max_length=500, widget=forms.PasswordInput(render_value=False))
    secret = forms.CharField(
        required=False, max_length=200, widget=forms.PasswordInput(render_value=False)
    )
    events = forms.MultipleChoiceField(
        choices=Event.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[e.value for e in Event],
    )

    def __init__(self, *args: Any, environments: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["environment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = environments
