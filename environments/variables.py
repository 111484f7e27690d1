"""Template variables (an environment's, a service's defaults): a JSON object of scalars.

Anything else (a list, an object of objects, null) would be stored and then break every
deploy that renders with it, so the admin forms refuse it with a message naming the keys.
Group variables are stricter still (strings only, deployments.models).
"""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SCALARS = (str, int, float, bool)


def validate_variables(value: object, *, label: str = "Variables") -> None:
    if not isinstance(value, dict):
        raise ValidationError(f'{label} must be a JSON object, e.g. {{"host": "example.com"}}.')
    bad_names = sorted(str(k) for k in value if not re.match(VARIABLE_NAME, str(k)))
    if bad_names:
        raise ValidationError(
            "Variable names are letters, digits and _ (not starting with a digit): "
            f"{', '.join(bad_names)}."
        )
    not_scalars = sorted(k for k, v in value.items() if not isinstance(v, SCALARS))
    if not_scalars:
        raise ValidationError(
            f"{label} are a JSON object of scalars; not a string, number or true/false: "
            f"{', '.join(not_scalars)}."
        )


class VariablesField(forms.JSONField):
    """A form field for variables: JSON, an object of scalars, never a 500 on deep nesting."""

    def __init__(self, *, label_in_errors: str = "Variables", **kwargs: Any) -> None:
        self.label_in_errors = label_in_errors
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-displaying the refused input parses it again: deep nesting must not 500 there.
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)

    def clean(self, value: Any) -> Any:
        try:
            cleaned = super().clean(value)
        except RecursionError:  # "[[[[..." nested deeper than the parser recurses
            raise forms.ValidationError(f"{self.label_in_errors}: nested too deeply.") from None
        if cleaned in (None, ""):
            return {}
        try:
            validate_variables(cleaned, label=self.label_in_errors)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return cleaned
