"""Issue #10's acceptance: every route x persona x method answers as decided, and a route
without a decision fails.

The URLconf (recursively) and the websocket routes are enumerated; every route name (or, for a
socket, its pattern) must have an entry in ROUTES / SOCKETS, and every entry must still be a
route: a new route, or a stale entry, fails `test_every_route_has_a_decision` naming it. The
Django admin is one family (`test_the_admin_family`): every registered model's pages redirect
anybody but a staff member to the admin's log-in; alice opens them.

One test per persona walks the whole table against real objects (two environments on kubesim,
a service deployed through the real worker so real pods exist, a group, a batch, registered
versions) and reports every mismatch at once as a table. The personas (issue #10): anonymous,
mallory (no grants), carol (views everything, logs included), bob on a staging target, bob on a
production target (views only), and the jenkins API token (on pages a token authenticates
nobody). Every answer that is not an allowed write must leave the database and the cluster
unchanged (fingerprints before/after); allowed writes run last, in the table's order.

Expectation notation: "200", "404", "405", "login" (302 to the log-in page), "admin-login",
"302 /path/ success|error|info|-" (a redirect to the page's own place, with the levels of the
messages it set, or none; * matches the id of a row the request created), "ws accept" or
"ws 4403" (a socket's first answer). A trailing " w" marks an allowed write (run last, not
fingerprinted, and checked afterwards by `_written`).
"""

import fnmatch
import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from kubernetes import client as k8s

from apollo_site.routing import websocket_urlpatterns
from deployments.engine import worker as worker_module
from deployments.models import CIStatus, DeployableVersion, Deployment, Group, Service
from environments.models import Environment
from history.models import AuditEvent
from kubesim.testing import KubesimHandle
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.environments.sockets import deployed
from tests.kubeenv import deploy, kubesim_cluster, wait_until_terminal
from tests.security.cluster_tripwire import close_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only]

SHA_NEW = "a" * 40
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")

# -- The decisions ------------------------------------------------------------------------------
# Persona keys: anon, mallory, carol, bob@staging, bob@production, jenkins.
PERSONAS = ("anon", "mallory", "carol", "bob@staging", "bob@production", "jenkins")


@dataclass(frozen=True)
class Probe:
    """One request: the path's {placeholders} are filled from the world of the persona's target."""

    path: str
    data: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False


# Shorthands for who gets what: one expectation per persona.
def each(
    anon: str, mallory: str, carol: str, bob_s: str, bob_p: str, jenkins: str | None = None
) -> dict[str, str]:
    return {
        "anon": anon,
        "mallory": mallory,
        "carol": carol,
        "bob@staging": bob_s,
        "bob@production": bob_p,
        "jenkins": anon if jenkins is None else jenkins,  # pages: a token is nobody
    }


LOGIN = "login"
VIEW_LIST = each(LOGIN, "200", "200", "200", "200")
VIEW_DETAIL = each(LOGIN, "404", "200", "200", "200")
NOT_ALLOWED = each(LOGIN, "405", "405", "405", "405")  # a method the view does not take
API_NOT_ALLOWED = each("401", "405", "405", "405", "405", "405")
# The CI routes ask their permission (register versions) before the method: only jenkins gets 405.
CI_NOT_ALLOWED = each("401", "403", "403", "403", "403", "405")

# route name -> (probe, {method: expectations}); methods not listed must answer NOT_ALLOWED.
ROUTES: dict[str, tuple[Probe, dict[str, dict[str, str]]]] = {}
OK_S = "302 /environments/staging/ success w"  # bob's action in staging, back on its page
SVC_ERROR = "302 /services/web/ error"
ALL_200 = each("200", "200", "200", "200", "200", "200")
ALL_405 = each("405", "405", "405", "405", "405", "405")
ALL_404 = each("404", "404", "404", "404", "404", "404")
ALL_METHODS_405 = {"POST": ALL_405, "PUT": ALL_405, "DELETE": ALL_405}
ALL_LOGIN = each(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN)
API_LIST = each("401", "200", "200", "200", "200", "200")  # filtered: jenkins and mallory see []


def api_read(anon: str, mallory: str, carol: str, bob_s: str, bob_p: str, jenkins: str) -> Any:
    # DRF answers HEAD as GET.
    row = each(anon, mallory, carol, bob_s, bob_p, jenkins)
    return {"GET": row, "HEAD": row}


def ci_refusals() -> dict[str, dict[str, str]]:
    return dict.fromkeys(("GET", "PUT", "DELETE", "HEAD"), CI_NOT_ALLOWED)


R = ROUTES
R["home"] = (Probe("/"), {"GET": VIEW_LIST})
R["environment-list"] = (Probe("/environments/"), {"GET": VIEW_LIST})
R["status-board"] = (Probe("/status/"), {"GET": VIEW_LIST})
R["environment-detail"] = (Probe("/environments/{env}/"), {"GET": VIEW_DETAIL})
R["environment-logs"] = (
    Probe("/environments/{env}/logs/", {"pod": "{pod}", "tail": "5"}),
    {"GET": each(LOGIN, "403", "200", "200", "403")},
)
R["environment-shell"] = (
    Probe("/environments/{env}/pods/{pod}/shell/"),
    {"GET": each(LOGIN, "403", "403", "200", "403")},
)
# The pod runs no Jolokia agent (no port named jolokia): 404 once allowed; an empty POST is a 400.
for name, path in [("environment-jolokia-root", ""), ("environment-jolokia", "version")]:
    R[name] = (
        Probe("/environments/{env}/pods/{pod}/jolokia/" + path),
        {
            "GET": each(LOGIN, "403", "404", "404", "403"),
            "POST": each(LOGIN, "403", "400", "400", "403"),
        },
    )
R["deploy"] = (
    Probe(
        "/deploy/",
        {
            "environments": "{env_id}",
            "services": "{form_svc_id}",
            "sha": "{form_sha}",
            "message": "matrix",
        },
    ),
    # mallory names what she may not see (400); carol and bob in production see the target and
    # are told why they may not deploy it (409); bob in staging lands on the new deployment.
    {
        "GET": VIEW_LIST,
        "POST": each(LOGIN, "400", "409", "302 /deployments/*/ success w", "409"),
    },
)
R["deploy-versions"] = (Probe("/deploy/versions/", {"services": "{svc_id}"}), {"GET": VIEW_LIST})
R["deploy-check"] = (
    Probe(
        "/deploy/check/",
        {"environments": "{env_id}", "services": "{form_svc_id}", "sha": "{form_sha}"},
    ),
    {"POST": VIEW_LIST},  # a read: what a Deploy would answer, for what the user may view
)
R["deploy-preview"] = (
    Probe(
        "/deploy/preview/",
        {"environment": "{env_id}", "service": "{form_svc_id}", "version": "{form_sha}"},
    ),
    {"GET": VIEW_DETAIL},
)
R["deploy-results"] = (
    Probe("/deploy/results/nosuchtoken/"),
    {"GET": each(LOGIN, *["302 /deploy/ info"] * 4)},
)
R["deployment-diff"] = (
    Probe("/deployments/diff/", {"a": "{dep}", "b": "{dep}"}),
    {"GET": VIEW_DETAIL},
)
R["deployment-detail"] = (Probe("/deployments/{dep}/"), {"GET": VIEW_DETAIL})
CANCEL_NO = "302 /deployments/{pending}/ error"
R["deployment-cancel"] = (
    Probe("/deployments/{pending}/cancel/"),
    {
        "GET": each(LOGIN, "404", CANCEL_NO, "200", CANCEL_NO),
        "POST": each(LOGIN, "404", CANCEL_NO, "302 /deployments/{pending}/ success w", CANCEL_NO),
    },
)
R["deployment-batch"] = (Probe("/deployments/batch/{batch}/"), {"GET": VIEW_DETAIL})
R["deployment-batch-status"] = (Probe("/deployments/batch/{batch}/status/"), {"GET": VIEW_DETAIL})
BATCH_NO = "302 /deployments/batch/{batch}/ error"
R["deployment-batch-cancel"] = (
    Probe("/deployments/batch/{batch}/cancel/", {"deployment": "{batch_pending}"}),
    {"POST": each(LOGIN, "404", BATCH_NO, "302 /deployments/batch/{batch}/ success w", BATCH_NO)},
)
R["deployment-batch-revert"] = (
    Probe("/deployments/batch/{batch}/revert/", {"deployment": "{revert_dep}"}),
    # A revert is a new batch of its own.
    {"POST": each(LOGIN, "404", BATCH_NO, "302 /deployments/batch/*/ success w", BATCH_NO)},
)
R["environment-pod-restart"] = (
    Probe("/environments/{env}/pods/{pod}/restart/"),
    {"POST": each(LOGIN, "403", "403", OK_S, "403")},
)
R["environment-service-restart"] = (
    Probe("/environments/{env}/services/web/restart/"),
    {"POST": each(LOGIN, "403", "403", OK_S, "403")},
)
R["environment-group-scale"] = (
    Probe("/environments/{env}/groups/{gid}/scale/", {"replicas": "2"}),
    {"POST": each(LOGIN, "403", "403", OK_S, "403")},
)
R["service-detail"] = (Probe("/services/web/"), {"GET": VIEW_DETAIL})
GROUP_FORM = {
    "environment": "{env_id}",
    "name": "green",
    "scaling_factor": "1",
    "variables": "{{}}",
}
# Creating, changing and deleting a group takes `manage`, which no persona but alice holds.
R["service-group-create"] = (
    Probe("/services/web/groups/", GROUP_FORM),
    {"POST": each(LOGIN, "404", SVC_ERROR, SVC_ERROR, SVC_ERROR)},
)
R["service-group-change"] = (
    Probe("/services/web/groups/{gid}/", {**GROUP_FORM, "name": "blue"}),
    {"POST": each(LOGIN, "404", SVC_ERROR, SVC_ERROR, SVC_ERROR)},
)
R["service-group-scale"] = (
    Probe("/services/web/groups/{gid}/scale/", {"replicas": "3"}),
    {"POST": each(LOGIN, "404", SVC_ERROR, "302 /services/web/ success w", SVC_ERROR)},
)
R["service-group-delete"] = (
    Probe("/services/web/groups/{gid}/delete/"),
    {"POST": each(LOGIN, "404", SVC_ERROR, SVC_ERROR, SVC_ERROR)},
)
# Notifications on a service's page take `manage` (alice only), like its groups.
R["service-notification-create"] = (
    Probe(
        "/services/web/notifications/",
        {"name": "n", "kind": "slack", "url": "https://hooks.example.com/x", "events": "done"},
    ),
    {"POST": each(LOGIN, "404", SVC_ERROR, SVC_ERROR, SVC_ERROR)},
)
R["service-notification-delete"] = (
    Probe("/services/web/notifications/0/delete/"),
    {"POST": each(LOGIN, "404", SVC_ERROR, SVC_ERROR, SVC_ERROR)},
)
# After the restarts: a redeploy puts web's target in progress, which refuses restarts.
REDEPLOY_NO = "302 /deploy/results/*/ error"  # the results page says why
R["deployment-redeploy"] = (
    Probe("/deployments/{dep}/redeploy/", {"which": "this"}),
    {"POST": each(LOGIN, "404", REDEPLOY_NO, "302 /deployments/*/ success w", REDEPLOY_NO)},
)
R["history"] = (Probe("/history/"), {"GET": VIEW_LIST})
# The Metrics page and its export: what the persona may view (mallory's figures are empty).
R["delivery-metrics"] = (Probe("/history/metrics/"), {"GET": VIEW_LIST})
R["login"] = (
    Probe("/login/", {"username": "nobody", "password": "wrong"}),
    {"GET": ALL_200, "POST": ALL_200, "PUT": ALL_405, "DELETE": ALL_405, "HEAD": ALL_405},
)
# Probes answer everybody (GET and HEAD only); /metrics is off without a token or allow-list.
R["healthz"] = (Probe("/healthz"), {"GET": ALL_200, "HEAD": ALL_200, **ALL_METHODS_405})
R["readyz"] = (Probe("/readyz"), {"GET": ALL_200, "HEAD": ALL_200, **ALL_METHODS_405})
R["metrics"] = (Probe("/metrics"), {"GET": ALL_404, "HEAD": ALL_404, **ALL_METHODS_405})
R["api:deployable-versions"] = (
    Probe(
        "/api/v1/deployable-versions/", {"service": "web", "git_commit_sha": SHA_NEW}, as_json=True
    ),
    {"POST": each("401", "403", "403", "403", "403", "201 w"), **ci_refusals()},
)
R["api:ci-status"] = (
    Probe(
        "/api/v1/deployable-versions/web/{sha}/ci-status/",
        {"context": "jenkins/unit", "state": "success"},
        as_json=True,
    ),
    {"POST": each("401", "403", "403", "403", "403", "201 w"), **ci_refusals()},
)
R["api:deployments"] = (
    Probe(
        "/api/v1/deployments/",
        {"service": "api", "environment": "{env}", "git_commit_sha": "{api_sha}"},
        as_json=True,
    ),
    {**api_read(*API_LIST.values()), "POST": each("401", "403", "403", "201 w", "403", "403")},
)
R["api:groups"] = (Probe("/api/v1/groups/"), api_read(*API_LIST.values()))
R["api:deployment"] = (
    Probe("/api/v1/deployments/{dep}/"),
    api_read("401", "404", "200", "200", "200", "404"),
)
R["api:deployment-cancel"] = (
    Probe("/api/v1/deployments/{api_pending}/cancel/", as_json=True),
    {"POST": each("401", "404", "403", "200 w", "403", "404")},
)
R["api:schema"] = (Probe("/api/v1/schema/"), api_read(*API_LIST.values()))
R["api:metrics"] = (Probe("/api/v1/metrics/"), api_read(*API_LIST.values()))
# Rollbacks that stick (issue #14): marking takes `cancel` (bob in staging), unmarking `manage`
# (alice only; mark 0 does not exist: a 404 for everybody signed in). After the redeploy row:
# the marks written here would refuse it. {dep} has no previous version: nothing to revert to.
R["deployment-mark-bad"] = (
    Probe("/deployments/{dep}/mark-bad/", {"reason": "matrix"}),
    {
        "POST": each(
            LOGIN,
            "404",
            "302 /deployments/{dep}/ error",
            "302 /deployments/{dep}/ success w",
            "302 /deployments/{dep}/ error",
        )
    },
)
R["bad-versions"] = (Probe("/bad-versions/"), {"GET": VIEW_LIST})
R["bad-version-unmark"] = (
    Probe("/bad-versions/0/unmark/", {"reason": "matrix"}),
    {"POST": each(LOGIN, "404", "404", "404", "404")},
)
R["api:bad-versions"] = (
    Probe(
        "/api/v1/bad-versions/",
        {"service": "api", "environment": "{env}", "git_commit_sha": "{api_sha}", "reason": "m"},
        as_json=True,
    ),
    {**api_read(*API_LIST.values()), "POST": each("401", "403", "403", "201 w", "403", "403")},
)
R["api:bad-version-unmark"] = (
    Probe("/api/v1/bad-versions/0/unmark/", {"reason": "matrix"}, as_json=True),
    {"POST": each("401", "404", "404", "404", "404", "404")},
)
R["api:deployment-revert"] = (
    Probe("/api/v1/deployments/{dep}/revert/", as_json=True),
    {"POST": each("401", "404", "409", "409", "409", "404")},
)
# Last: it ends the session (for anybody signed in, an allowed write).
R["logout"] = (
    Probe("/logout/"),
    {
        "GET": ALL_405,
        "PUT": ALL_405,
        "DELETE": ALL_405,
        "HEAD": ALL_405,
        "POST": each(LOGIN, LOGIN + " w", LOGIN + " w", LOGIN + " w", LOGIN + " w", LOGIN),
    },
)

WS_VIEW = each("ws 4401", "ws 4404", "ws accept", "ws accept", "ws accept")
# Socket pattern -> (path, expectations). A socket carries no API token: jenkins is anonymous.
SOCKETS: dict[str, tuple[str, dict[str, str]]] = {
    "ws/deployments/<int:deployment_id>/": ("/ws/deployments/{dep}/", WS_VIEW),
    "ws/deployments/batch/<uuid:batch>/": ("/ws/deployments/batch/{batch}/", WS_VIEW),
    "ws/environments/<str:name>/status/": ("/ws/environments/{env}/status/", WS_VIEW),
    # The status board's one socket: like the board page, open to every signed-in user, and it
    # follows only what they may view (mallory: nothing).
    "ws/status-board/": (
        "/ws/status-board/?environment={env}",
        each("ws 4401", "ws accept", "ws accept", "ws accept", "ws accept"),
    ),
    "ws/environments/<str:name>/logs/": (
        "/ws/environments/{env}/logs/?pod={pod}",
        each("ws 4401", "ws 4403", "ws accept", "ws accept", "ws 4403"),
    ),
    "ws/environments/<str:name>/pods/<str:pod>/shell/": (
        "/ws/environments/{env}/pods/{pod}/shell/",
        each("ws 4401", "ws 4403", "ws 4403", "ws accept w", "ws 4403"),
    ),
}


# -- The enumeration ----------------------------------------------------------------------------


def _http_routes() -> dict[str, str]:
    """Every route of the URLconf, recursively: name (namespaced) -> pattern."""
    found: dict[str, str] = {}

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, prefix + str(entry.pattern), ns)
            elif isinstance(entry, URLPattern):
                found[
                    f"{namespace}{entry.name or ''}" if entry.name else prefix + str(entry.pattern)
                ] = prefix + str(entry.pattern)

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_route_has_a_decision() -> None:
    routes = {name for name, pattern in _http_routes().items() if not pattern.startswith("admin/")}
    sockets = {str(route.pattern) for route in websocket_urlpatterns}
    problems = [
        f"route {name!r} has no decision in ROUTES" for name in sorted(routes - set(ROUTES))
    ]
    problems += [
        f"ROUTES entry {name!r} is no route any more" for name in sorted(set(ROUTES) - routes)
    ]
    problems += [f"socket {p!r} has no decision in SOCKETS" for p in sorted(sockets - set(SOCKETS))]
    problems += [
        f"SOCKETS entry {p!r} is no socket any more" for p in sorted(set(SOCKETS) - sockets)
    ]
    assert not problems, "\n".join(problems)


# -- The world ----------------------------------------------------------------------------------


@dataclass
class World:
    values: dict[str, dict[str, str]]  # target ("staging"/"production") -> placeholder values
    kubesim: KubesimHandle
    namespaces: list[str]
    jenkins_key: str


def _run_worker_until(done: Callable[[], None]) -> None:
    """The real worker loop in a thread while `done` runs, then stopped and joined: afterwards
    nothing moves unless a request moves it."""
    shutdown = threading.Event()
    thread = threading.Thread(
        target=worker_module.run_worker,
        kwargs={"shutdown": shutdown, "poll_interval": 0.1, "owner": "matrix-worker"},
        daemon=True,
    )
    thread.start()
    try:
        done()
    finally:
        shutdown.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop"


@pytest.fixture
def world(
    kubesim: KubesimHandle, kubesim_namespace: str, alice: User, bob: User, jenkins: User
) -> Iterator[World]:
    core = k8s.CoreV1Api(kubesim.api_client())
    production_ns = f"{kubesim_namespace}-prod"
    core.create_namespace({"metadata": {"name": production_ns}})
    # bob execs in staging (the product brief; the persona fixture leaves exec out).
    grant(actor=None, user=bob, verbs=[Verb.EXEC], availability="staging", note="matrix")
    cluster = kubesim_cluster(kubesim)
    envs = {
        "staging": factories.make_environment(
            "staging",
            cluster=cluster,
            namespace=kubesim_namespace,
            availability="staging",
            rollout_timeout_seconds=30,
        ),
        "production": factories.make_environment(
            "production",
            cluster=cluster,
            namespace=production_ns,
            availability="production",
            rollout_timeout_seconds=30,
        ),
    }
    values: dict[str, dict[str, str]] = {}

    def deploy_everywhere() -> None:
        service = deployed(alice, envs["staging"], "web", replicas=1)
        version = service.versions.get()
        outcome = deploy(alice, service, envs["production"], version, message="prod")
        assert outcome.deployment is not None, outcome.reason
        assert wait_until_terminal(outcome.deployment).status == "DONE"

    _run_worker_until(deploy_everywhere)
    service = Service.objects.get(name="web")
    version = service.versions.get()
    other = factories.make_service("worker")
    api_service = factories.make_service("api")  # deployed through the API (no pending row)
    form_service = factories.make_service("form")  # deployed through the Deploy form
    for target, env in envs.items():
        done = Deployment.objects.get(service=service, environment=env)
        batch = uuid.uuid4()
        Deployment.objects.filter(pk=done.pk).update(batch=batch)
        pending = factories.make_deployment(
            service=other, environment=env, deployed_by=alice, status="PENDING"
        )
        # Separate targets: one deployment per target may be in progress at a time.
        api_pending = factories.make_deployment(
            service=factories.make_service(f"cron-{target}"),
            environment=env,
            deployed_by=alice,
            status="PENDING",
        )
        batch_pending = factories.make_deployment(
            service=factories.make_service(f"queue-{target}"),
            environment=env,
            deployed_by=alice,
            status="PENDING",
            batch=batch,
        )
        api_version = factories.make_version(api_service)
        form_version = factories.make_version(form_service)
        # A batch revert needs a version that ran before: two finished rows of their own.
        legacy = factories.make_service(f"legacy-{target}")
        first = factories.make_deployment(service=legacy, environment=env, deployed_by=alice)
        revert_dep = factories.make_deployment(
            service=legacy,
            environment=env,
            deployed_by=alice,
            batch=batch,
            source_version=first.version,
        )
        group = Group.objects.create(service=service, environment=env, name="blue")
        pods = core.list_namespaced_pod(env.namespace, label_selector="app=web").items
        assert pods, f"no pod of web in {target}"
        values[target] = {
            "env": env.name,
            "env_id": str(env.pk),
            "svc_id": str(service.pk),
            "sha": version.git_commit_sha,
            "dep": str(done.pk),
            "pending": str(pending.pk),
            "batch": str(batch),
            "gid": str(group.pk),
            "pod": pods[0].metadata.name,
            "api_pending": str(api_pending.pk),
            "batch_pending": str(batch_pending.pk),
            "api_sha": api_version.git_commit_sha,
            "revert_dep": str(revert_dep.pk),
            "form_svc_id": str(form_service.pk),
            "form_sha": form_version.git_commit_sha,
        }
    try:
        yield World(
            values=values,
            kubesim=kubesim,
            namespaces=[kubesim_namespace, production_ns],
            jenkins_key=jenkins.api_key,  # type: ignore[attr-defined]
        )
    finally:
        core.delete_namespace(production_ns)
        core.api_client.close()


def _db_fingerprint() -> tuple[Any, ...]:
    return (
        list(Deployment.objects.order_by("pk").values_list("pk", "status", "batch")),
        DeployableVersion.objects.count(),
        CIStatus.objects.count(),
        list(Group.objects.order_by("pk").values_list("pk", "name", "scaling_factor")),
        AuditEvent.objects.count(),
        Service.objects.count(),
        Environment.objects.count(),
        User.objects.count(),
    )


def _cluster_fingerprint(world: World) -> int:
    # kubesim's resourceVersion counts every write the cluster accepted, in any namespace.
    return int(world.kubesim.server.cluster.store.resource_version)


# -- Asking -------------------------------------------------------------------------------------


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def _client(persona: str, world: World, users: dict[str, User]) -> Client:
    if persona == "jenkins":
        return Client(
            raise_request_exception=False, headers={"Authorization": f"Token {world.jenkins_key}"}
        )
    client = Client(raise_request_exception=False)
    user = users.get(persona.split("@")[0])
    if user is not None:
        client.force_login(user)
    return client


def _answer(response: Any) -> str:
    """The response in the table's notation."""
    status = response.status_code
    if status not in (301, 302, 303):
        return str(status)
    location = response["Location"]
    if location.startswith("/login/"):
        return LOGIN
    if location.startswith("/admin/login/"):
        return "admin-login"
    levels = (
        sorted({m.tags.split()[-1] for m in get_messages(response.wsgi_request)})
        if hasattr(response, "wsgi_request")
        else []
    )
    return f"{status} {location} {','.join(levels) or '-'}"


def _ask(client: Client, method: str, probe: Probe, values: dict[str, str]) -> str:
    try:
        return _request(client, method, probe, values)
    finally:
        client.cookies.pop("messages", None)  # each answer shows only its own messages


def _request(client: Client, method: str, probe: Probe, values: dict[str, str]) -> str:
    path = _fill(probe.path, values)
    data = {k: _fill(v, values) for k, v in probe.data.items()}
    call = getattr(client, method.lower())
    if method in ("GET", "HEAD"):
        return _answer(call(path, data))
    if probe.as_json:
        return _answer(call(path, json.dumps(data), content_type="application/json"))
    if method == "POST":
        return _answer(call(path, data))
    return _answer(call(path))


def _socket_answer(path: str, user: User | None) -> str:
    message = async_to_sync(close_of)(path, user)
    if message["type"] == "websocket.accept":
        return "ws accept"
    return f"ws {message.get('code')}"


def _expected(persona: str, method: str, decisions: dict[str, dict[str, str]], api: bool) -> str:
    if method in decisions:
        return decisions[method].get(persona, "?")
    return (API_NOT_ALLOWED if api else NOT_ALLOWED)[persona]


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_route_matrix(
    persona: str, world: World, mallory: User, carol: User, bob: User
) -> None:
    users = {"mallory": mallory, "carol": carol, "bob": bob}
    target = "production" if persona == "bob@production" else "staging"
    values = world.values[target]
    client = _client(persona, world, users)
    asks: list[tuple[str, str, Callable[[], str], str]] = []
    for name, (probe, decisions) in ROUTES.items():
        api = name.startswith("api:")
        for method in METHODS:
            expected = _fill(_expected(persona, method, decisions, api), values)
            asks.append(
                (name, method, functools.partial(_ask, client, method, probe, values), expected)
            )
    socket_user = users.get(persona.split("@")[0])
    for pattern, (path, socket_decisions) in SOCKETS.items():
        call: Callable[[], str] = functools.partial(
            _socket_answer, _fill(path, values), socket_user
        )
        asks.append((pattern, "WS", call, socket_decisions[persona]))
    # Allowed writes last, in the table's order; everything else must change nothing.
    # Sockets' writes (a shell session) before the pages' (a pod restart replaces the pod).
    asks.sort(key=lambda a: (a[3].endswith(" w"), a[1] != "WS", a[0] == "logout"))
    mismatches = []
    for name, method, call, expected in asks:
        writes = expected.endswith(" w")
        before = None if writes else (_db_fingerprint(), _cluster_fingerprint(world))
        actual = call()
        if not fnmatch.fnmatchcase(actual, expected.removesuffix(" w")):
            mismatches.append((name, method, expected, actual))
        elif before is not None and before != (_db_fingerprint(), _cluster_fingerprint(world)):
            mismatches.append((name, method, expected, actual + " BUT WROTE"))
    table = "\n".join(f"  {n:32} {m:6} expected {e!r:34} got {a!r}" for n, m, e, a in mismatches)
    assert not mismatches, f"{persona} ({target}): {len(mismatches)} mismatches\n{table}"
    assert not _written(persona, world), _written(persona, world)


def _written(persona: str, world: World) -> list[str]:
    """What an allowed write left behind, per persona: they really happened."""
    values = world.values["production" if persona == "bob@production" else "staging"]
    missing = []
    if persona == "bob@staging":
        for key in ("pending", "batch_pending", "api_pending"):
            status = Deployment.objects.get(pk=values[key]).status
            if status not in ("CANCELED", "PENDING_CANCELLATION"):
                missing.append(f"{key} is {status}, not cancelled")
        for service in ("form", "api", "web", "legacy-staging"):
            if not Deployment.objects.filter(service__name=service, status="PENDING").exists():
                missing.append(f"no deployment of {service} was requested")
        if not Group.objects.filter(pk=values["gid"], scaling_factor=3).exists():
            missing.append("group blue was not scaled to 3")
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        missing += [f"no {a} event" for a in ("service.restarted",) if a not in actions]
    if persona == "jenkins":
        if not DeployableVersion.objects.filter(git_commit_sha=SHA_NEW).exists():
            missing.append("the version was not registered")
        if not CIStatus.objects.filter(version__git_commit_sha=values["sha"]).exists():
            missing.append("the CI status was not recorded")
    return missing


def _admin_sample() -> list[str]:
    """The index and every registered model's changelist and add page."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
    return urls


def test_the_admin_family(
    alice: User, mallory: User, carol: User, bob: User, jenkins: User
) -> None:
    """The admin is one family: staff only (alice); anybody else, signed in or not, or with the
    jenkins token, is sent to the admin's log-in for every page, and nothing changes."""
    names = {n for n in _http_routes() if n.startswith("admin:")}
    assert names, "the admin's routes were not found"
    urls = _admin_sample()
    mismatches = []
    staff = Client(raise_request_exception=False)
    staff.force_login(alice)
    for url in urls:
        status = staff.get(url).status_code
        if status not in (200, 403):  # 403: an admin that refuses adding (audit events)
            mismatches.append(("alice", "GET", url, str(status)))
    key = jenkins.api_key  # type: ignore[attr-defined]
    token = Client(raise_request_exception=False, headers={"Authorization": f"Token {key}"})
    others: dict[str, Client] = {"anon": Client(raise_request_exception=False), "jenkins": token}
    for user in (mallory, carol, bob):
        others[user.username] = Client(raise_request_exception=False)
        others[user.username].force_login(user)
    before = _db_fingerprint()
    for persona, client in others.items():
        for url in urls:
            for method in ("GET", "POST"):
                answer = _answer(getattr(client, method.lower())(url))
                if answer != "admin-login":
                    mismatches.append((persona, method, url, answer))
    assert _db_fingerprint() == before
    table = "\n".join(f"  {p:8} {m:5} {u:50} got {a!r}" for p, m, u, a in mismatches)
    assert not mismatches, f"{len(mismatches)} admin mismatches\n{table}"
