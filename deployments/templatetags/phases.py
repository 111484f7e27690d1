"""`{% deployment_phases deployment as summary %}`: deployments.phases for a template."""

from typing import Any

from django import template
from django.utils import timezone

from deployments.phases import Summary, summarise

register = template.Library()


@register.simple_tag
def deployment_phases(deployment: Any) -> Summary:
    return summarise(deployment, timezone.now())
