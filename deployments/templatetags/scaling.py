"""The replica limit for the pages' scale inputs: the same constant the services enforce."""

from django import template

from deployments.models import MAX_SCALING_FACTOR

register = template.Library()


@register.simple_tag
def max_scaling_factor() -> int:
    return MAX_SCALING_FACTOR
