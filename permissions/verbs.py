"""The verbs a grant can carry. Each verb is also a Django permission codename on Grant."""

from django.db import models


class Verb(models.TextChoices):
    VIEW = "view", "view deployments, manifests, variables and history"
    DEPLOY = "deploy", "deploy"
    CANCEL = "cancel", "cancel or revert a deployment"
    RESTART = "restart", "restart pods, rolling restart, scale"
    VIEW_LOGS = "view_logs", "view logs"
    EXEC = "exec", "exec into a container"
    OVERRIDE_BLOCKERS = "override_blockers", "deploy past a blocker with a reason"
    MANAGE = "manage", "manage the service or environment"


# Verbs whose ALLOW also allows VIEW at the same scope (see rule 6 in permissions.rules).
IMPLIES_VIEW = tuple(verb for verb in Verb if verb != Verb.VIEW)


class Effect(models.TextChoices):
    ALLOW = "ALLOW", "ALLOW"
    DENY = "DENY", "DENY"
