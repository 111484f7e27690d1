"""The manifest policy: what a service's rendered manifests may ask of the cluster.

Checked when a deployment is requested (refused with the reasons, nothing is created) and
again by the worker on exactly the documents it is about to apply (the deployment ends FAILED
with the reasons, nothing is applied). The rules, for every pod spec of the manifests (bare
Pods, and the pod templates of Deployments and of every other workload kind):

1. Every container image (containers, initContainers, ephemeralContainers) is the service's
   image repository at the deployed sha, or one of the sidecar images an admin allowed on the
   service (exact references, tag or digest included).
2. Unless the environment allows privileged workloads (an admin setting, off by default): no
   privileged container, no allowPrivilegeEscalation: true, no added capabilities, no
   hostNetwork, hostPID or hostIPC, no hostPath volume, no hostPort, no Windows hostProcess.
3. serviceAccountName (and the deprecated serviceAccount) only from the service's allowed
   service accounts; automountServiceAccountToken is left alone (never set to true: that
   would mount a token the service account itself does not hand out).
4. Secrets are referenced (volumes, projected volumes, envFrom, env valueFrom secretKeyRef,
   imagePullSecrets, an Ingress's TLS secretName) only from the service's allowed secrets,
   or the Secrets the same manifests create (Apollo applies those only when this service
   owns them).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


class PolicyViolation(Exception):
    """The manifests break the manifest policy; `problems` says each way they do."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Rules:
    """What one deployment's manifests may use."""

    image: str  # <image repository>:<deployed sha>
    sidecar_images: frozenset[str] = frozenset()
    service_accounts: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    allow_privileged: bool = False


def check(documents: list[dict[str, Any]], rules: Rules) -> None:
    """Raise PolicyViolation naming every problem of the documents."""
    problems = violations(documents, rules)
    if problems:
        raise PolicyViolation(problems)


def violations(documents: list[dict[str, Any]], rules: Rules) -> list[str]:
    own_secrets = {
        str(_dict(doc.get("metadata")).get("name"))
        for doc in documents
        if doc.get("kind") == "Secret"
    }
    allowed_secrets = rules.secrets | own_secrets
    problems: list[str] = []
    for doc in documents:
        if doc.get("kind") == "Ingress":
            where = f"Ingress/{_dict(doc.get('metadata')).get('name')}"
            tls = _dicts(_dict(doc.get("spec")).get("tls"))
            names = {str(t["secretName"]) for t in tls if t.get("secretName") is not None}
            problems.extend(
                f"{where}: TLS Secret {name!r} is not allowed for this service"
                for name in sorted(names - allowed_secrets)
            )
        for where, spec in pod_specs(doc):
            problems.extend(_images(where, spec, rules))
            if not rules.allow_privileged:
                problems.extend(_privileges(where, spec))
            problems.extend(_service_account(where, spec, rules))
            problems.extend(
                f"{where}: Secret {name!r} is not allowed for this service"
                for name in sorted(secret_references(spec) - allowed_secrets)
            )
    return problems


def pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each pod spec a document carries, with where it is ("Deployment/checkout")."""
    where = f"{doc.get('kind')}/{_dict(doc.get('metadata')).get('name')}"
    spec = _dict(doc.get("spec"))
    if doc.get("kind") == "Pod":
        yield where, spec
    if doc.get("kind") == "PodTemplate":
        yield where, _dict(_dict(doc.get("template")).get("spec"))
    job_template = _dict(_dict(spec.get("jobTemplate")).get("spec"))  # CronJob
    for holder in (spec, job_template):
        template = holder.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            yield where, template["spec"]


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in CONTAINER_KEYS:
        yield from _dicts(spec.get(key))


def secret_references(spec: dict[str, Any]) -> set[str]:
    names = {_dict(ref).get("name") for ref in _dicts(spec.get("imagePullSecrets"))}
    for volume in _dicts(spec.get("volumes")):
        names.add(_dict(volume.get("secret")).get("secretName"))
        for source in _dicts(_dict(volume.get("projected")).get("sources")):
            names.add(_dict(source.get("secret")).get("name"))
    for container in containers(spec):
        for source in _dicts(container.get("envFrom")):
            names.add(_dict(source.get("secretRef")).get("name"))
        for variable in _dicts(container.get("env")):
            names.add(_dict(_dict(variable.get("valueFrom")).get("secretKeyRef")).get("name"))
    return {str(name) for name in names if name is not None}


def _images(where: str, spec: dict[str, Any], rules: Rules) -> Iterator[str]:
    allowed = {rules.image} | rules.sidecar_images
    for container in containers(spec):
        image = container.get("image")
        if image not in allowed:
            yield (
                f"{where}: container {container.get('name')!r} runs image {image!r}; only "
                f"{rules.image} and the service's allowed sidecar images may run"
            )


def _privileges(where: str, spec: dict[str, Any]) -> Iterator[str]:
    for key in HOST_NAMESPACES:
        if spec.get(key):
            yield f"{where}: {key} is not allowed in this environment"
    for volume in _dicts(spec.get("volumes")):
        if "hostPath" in volume:
            name = volume.get("name")
            yield f"{where}: hostPath volume {name!r} is not allowed in this environment"
    for container in containers(spec):
        name, context = container.get("name"), _dict(container.get("securityContext"))
        if context.get("privileged"):
            yield f"{where}: container {name!r} is privileged, not allowed in this environment"
        if context.get("allowPrivilegeEscalation"):
            yield (
                f"{where}: container {name!r} sets allowPrivilegeEscalation, "
                "not allowed in this environment"
            )
        if _dict(context.get("capabilities")).get("add"):
            yield f"{where}: container {name!r} adds capabilities, not allowed in this environment"
        if any(port.get("hostPort") for port in _dicts(container.get("ports"))):
            yield f"{where}: container {name!r} binds a hostPort, not allowed in this environment"
    pod_context = _dict(spec.get("securityContext"))
    for context in [pod_context] + [_dict(c.get("securityContext")) for c in containers(spec)]:
        if _dict(context.get("windowsOptions")).get("hostProcess"):
            yield f"{where}: a hostProcess container is not allowed in this environment"
            break


def _service_account(where: str, spec: dict[str, Any], rules: Rules) -> Iterator[str]:
    for key in ("serviceAccountName", "serviceAccount"):
        account = spec.get(key)
        if account is not None and str(account) not in rules.service_accounts:
            yield f"{where}: service account {account!r} is not allowed for this service"
    if spec.get("automountServiceAccountToken") is True:
        yield f"{where}: automountServiceAccountToken must be left alone (not set to true)"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
