"""`{{ code|status_label }}`: a deployment status as people read it (deployments.phases)."""

from django import template

from deployments.phases import status_label as label_of

register = template.Library()


@register.filter
def status_label(code: str) -> str:
    return label_of(code)
