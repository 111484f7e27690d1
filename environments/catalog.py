"""Saving clusters and environments (the admin saves through here), each change recorded in
history with who and what changed, in the same transaction. Deleting an environment lives in
environments.services (its grants and blockers go first).

SECURITY: a cluster's token is never recorded: history says "token changed", nothing more.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from environments.models import Cluster, Environment
from history.services import describe, record_change

Actor = User | AnonymousUser | None
CLUSTER_SECRETS = {"token": "token_ciphertext"}


@transaction.atomic
def save_environment(*, actor: Actor, environment: Environment) -> Environment:
    saved = Environment.objects.filter(pk=environment.pk).first() if environment.pk else None
    before = describe(saved) if saved is not None else None
    environment.full_clean()
    environment.save()
    record_change(
        actor=actor,
        kind="environment",
        target=environment,
        before=before,
        after=describe(environment),
    )
    return environment


@transaction.atomic
def save_cluster(*, actor: Actor, cluster: Cluster, token_changed: bool = False) -> Cluster:
    """Create or change a cluster; ``token_changed`` says a new token was given (its value is
    already encrypted on the instance and is never recorded)."""
    saved = Cluster.objects.filter(pk=cluster.pk).first() if cluster.pk else None
    before = describe(saved, secret=CLUSTER_SECRETS) if saved is not None else None
    cluster.save()
    record_change(
        actor=actor,
        kind="cluster",
        target=cluster,
        before=before,
        after=describe(cluster, secret=CLUSTER_SECRETS),
        secret_changed=["token"] if token_changed and before is not None else [],
    )
    return cluster


@transaction.atomic
def delete_cluster(*, actor: Actor, cluster: Cluster) -> None:
    """Delete a cluster no environment uses (environments protect it)."""
    record_change(
        actor=actor,
        kind="cluster",
        target=cluster,
        before=describe(cluster, secret=CLUSTER_SECRETS),
        after=None,
    )
    cluster.delete()
