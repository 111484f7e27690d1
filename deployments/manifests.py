"""Manifests for a deployment: the model-aware side of deployments.rendering."""

from typing import Any

from deployments import policy, rendering
from deployments.models import DeployableVersion, Deployment, Group, Service
from environments import crypto
from environments.models import Environment

SAMPLE_SHA = "0" * 40


def target_for(
    *, service: Service, environment: Environment, sha: str, group: Group | None
) -> rendering.Target:
    return rendering.Target(
        service=service.name,
        image_repository=service.image_repository,
        sha=sha,
        environment=environment.name,
        namespace=environment.namespace,
        availability=environment.availability,
        region=environment.region,
        node_port_coefficient=environment.node_port_coefficient,
        group=group.name if group is not None else "",
        replicas=group.scaling_factor if group is not None else None,
    )


def render_for(
    *, service: Service, environment: Environment, version: DeployableVersion, group: Group | None
) -> list[dict[str, Any]]:
    """The finalized documents to apply. Raises rendering.RenderError with a clear message."""
    target = target_for(
        service=service, environment=environment, sha=version.git_commit_sha, group=group
    )
    return _render(service, target, environment.variables, group.variables if group else {})


def policy_rules(*, service: Service, environment: Environment, sha: str) -> policy.Rules:
    return policy.Rules(
        image=f"{service.image_repository}:{sha}",
        sidecar_images=frozenset(service.allowed_sidecar_images or []),
        service_accounts=frozenset(service.allowed_service_accounts or []),
        secrets=frozenset(service.allowed_secrets or []),
        allow_privileged=environment.allow_privileged_workloads,
    )


def render_checked(
    *, service: Service, environment: Environment, version: DeployableVersion, group: Group | None
) -> list[dict[str, Any]]:
    """The documents to apply, checked against the manifest policy.

    Raises rendering.RenderError or policy.PolicyViolation, each with a clear message. The
    request and the worker both call this: the worker checks what it is about to apply."""
    documents = render_for(service=service, environment=environment, version=version, group=group)
    rules = policy_rules(service=service, environment=environment, sha=version.git_commit_sha)
    policy.check(documents, rules)
    return documents


# -- what is stored on the deployment and applied by the worker ---------------------------------

SECRET_FIELDS = ("data", "stringData")


def seal(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents as stored on the deployment (`manifest_documents`).

    SECURITY: every value of a Secret's data and stringData is Fernet-encrypted at rest
    (environments.crypto); everything else is stored as rendered, to be applied as is."""
    return [_map_secret_values(doc, crypto.encrypt) for doc in documents]


def unseal(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents to apply, Secret values decrypted. Raises crypto.CredentialError when
    the key changed since they were stored."""
    return [_map_secret_values(doc, crypto.decrypt) for doc in stored]


def _map_secret_values(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    if doc.get("kind") != "Secret":
        return doc
    doc = dict(doc)
    for key in SECRET_FIELDS:
        if isinstance(doc.get(key), dict):
            doc[key] = {name: change(str(value)) for name, value in doc[key].items()}
    return doc


def recorded_checked(*, deployment: Deployment, sha: str) -> list[dict[str, Any]]:
    """The documents recorded on `deployment`, checked against today's manifest policy for
    the target of the deployment being driven (sha: the image it may run).

    Raises policy.PolicyViolation (an allow-list narrowed since the request) or
    crypto.CredentialError."""
    documents = unseal(deployment.manifest_documents)
    rules = policy_rules(service=deployment.service, environment=deployment.environment, sha=sha)
    policy.check(documents, rules)
    return documents


def _render(
    service: Service,
    target: rendering.Target,
    environment_variables: dict[str, Any],
    group_variables: dict[str, Any],
) -> list[dict[str, Any]]:
    variables = rendering.build_variables(
        target, service.default_variables, environment_variables, group_variables
    )
    sources = rendering.template_sources(
        service.deployment_template,
        service.service_template,
        service.ingress_template,
        service.extra_templates,
    )
    return rendering.finalize(rendering.render_documents(sources, variables), target)


def preview(service: Service, environment: Environment | None = None) -> str:
    """Render with sample values (or a real environment) for validation and the admin preview."""
    target = rendering.Target(
        service=service.name or "service",
        image_repository=service.image_repository or "registry.example.com/service",
        sha=SAMPLE_SHA,
        environment=environment.name if environment else "sample",
        namespace=environment.namespace if environment else "sample",
        availability=environment.availability if environment else "staging",
        region=environment.region if environment else "",
        node_port_coefficient=environment.node_port_coefficient if environment else 0,
    )
    documents = _render(service, target, environment.variables if environment else {}, {})
    return rendering.to_yaml(documents)
