"""One Deployment watch and one Pod watch per namespace in a worker, shared by the rollouts that
follow there (#16, deployments/engine/object_watch.py): each rollout gets its own objects (those
kept when it subscribes, then their changes), a watch that expired lists again for everyone, a
dropped one resumes, the last one out closes them, a follower that fails leaves them working
for the others, and a follower never goes back to an older generation of its Deployment.
Watches are counted in the test's own namespace only, through kubesim's view."""

import queue
import time
from typing import Any

import pytest
from kubernetes import client

from deployments.engine import namespace_watch, object_watch
from deployments.engine.rollout import Follower, Observation
from deployments.engine.snapshots import take_snapshot
from environments.kube.labels import LABEL_SERVICE, LABEL_SHA, MANAGED_BY
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.engine.cluster_objects import create_deployment
from tests.workers import until

Item = tuple[str, Any]


def _scale(api: Any, namespace: str, name: str, replicas: int) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        name, namespace, {"spec": {"replicas": replicas}}
    )


class _Seen:
    """What a subscription's queue delivered, read as it arrives."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Item] = queue.Queue()
        self.items: list[Item] = []

    def read(self) -> list[Item]:
        while not self.queue.empty():
            self.items.append(self.queue.get_nowait())
        return self.items

    def lists(self) -> list[list[str]]:
        return [[o["metadata"]["name"] for o in p[1]] for k, p in self.read() if k == "list"]

    def replicas(self) -> list[int]:
        return [int(p[1].object["spec"]["replicas"]) for k, p in self.read() if k == "event"]


@pytest.mark.kubesim_only  # (kubesim counts the watches and drops them)
@pytest.mark.django_db(transaction=True)
def test_two_rollouts_share_one_deployment_watch_each_gets_its_own_and_the_last_out_closes_it(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    for name in ("web", "api"):
        create_deployment(kubesim_api, ns, name)
    web, api = _Seen(), _Seen()
    web_sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), web.queue
    )
    api_sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("api"), api.queue
    )
    until(lambda: kubesim.watches_in(ns) == 1)
    assert object_watch.watching(staging.cluster, ns, "Deployment") == 2
    # Each first gets its own Deployment as kept, then only its own changes.
    until(lambda: web.lists() == [["web"]] and api.lists() == [["api"]])
    _scale(kubesim_api, ns, "web", 3)
    _scale(kubesim_api, ns, "api", 2)
    until(lambda: 3 in web.replicas() and 2 in api.replicas())
    assert 2 not in web.replicas()
    assert 3 not in api.replicas()

    web_sub.close()
    _scale(kubesim_api, ns, "api", 4)
    until(lambda: 4 in api.replicas())
    assert kubesim.watches_in(ns) == 1  # still open for api
    api_sub.close()
    api_sub.close()  # (twice is harmless)
    until(lambda: kubesim.watches_in(ns) == 0)
    assert object_watch.watching(staging.cluster, ns, "Deployment") == 0


@pytest.mark.kubesim_only  # (kubesim counts the watches and drops them)
@pytest.mark.django_db(transaction=True)
def test_a_dropped_watch_resumes_and_an_expired_one_lists_again_for_every_follower(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    create_deployment(kubesim_api, ns, "web")
    web = _Seen()
    sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), web.queue
    )
    try:
        until(lambda: web.lists() == [["web"]] and kubesim.watches_in(ns) == 1)
        # Dropped: it resumes from where it was, without listing again.
        assert kubesim.end_watches() >= 1
        _scale(kubesim_api, ns, "web", 2)
        until(lambda: 2 in web.replicas())
        assert web.lists() == [["web"]]
        # Expired (410 when it resumes): the namespace listed again, the follower's objects
        # given again.
        kubesim.expire_watches(1)
        assert kubesim.end_watches() >= 1
        until(lambda: len(web.lists()) == 2)
        _scale(kubesim_api, ns, "web", 3)
        until(lambda: 3 in web.replicas())
    finally:
        sub.close()
    until(lambda: kubesim.watches_in(ns) == 0)


def _generation(generation: int, uid: str = "u-1", ready: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "uid": uid, "generation": generation},
        "status": {"readyReplicas": ready},
    }


def test_a_follower_never_goes_back_to_an_older_generation_of_its_deployment() -> None:
    follower = Follower(
        cluster=None,  # type: ignore[arg-type]  # (no cluster: nothing is asked of it)
        namespace="staging",
        name="web",
        sha="a" * 40,
        deadline=time.monotonic() + 30,
        timeout_seconds=30,
        unreachable_limit=10,
        observation=Observation(),
    )
    follower._deployment_seen(_generation(3))
    # What the shared watch kept before the apply this rollout read: ignored.
    follower._deployment_seen(_generation(2, ready=2))
    assert follower.observation.deployment == _generation(3)
    follower._deployment_seen(_generation(3, ready=1))  # the same generation, newer status
    assert follower.observation.deployment == _generation(3, ready=1)
    # Deleted and created again: another object, whatever its generation.
    follower._deployment_seen(_generation(1, uid="u-2"))
    assert follower.observation.deployment == _generation(1, uid="u-2")


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_at_a_verdict_is_taken_from_the_kept_deployments_without_a_list(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    assert object_watch.kept(staging.cluster, ns, "Deployment") is None  # no watch: a list
    sha = "b" * 40
    labels = {MANAGED_BY: "apollo", LABEL_SERVICE: "web", LABEL_SHA: sha}
    client.AppsV1Api(kubesim_api).create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", **labels}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        },
    )
    create_deployment(kubesim_api, ns, "by-hand")  # not Apollo's: not in the snapshot
    web = _Seen()
    sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), web.queue
    )
    try:
        until(lambda: web.lists() == [["web"]])
        kept = object_watch.kept(staging.cluster, ns, "Deployment")
        assert kept is not None
        assert sorted(obj["metadata"]["name"] for obj in kept) == ["by-hand", "web"]
        snapshot = take_snapshot(staging, deployments=kept)
        assert snapshot == take_snapshot(staging)  # what a list says
        assert list(snapshot["services"]) == ["web"]
        assert snapshot["services"]["web"]["sha"] == sha
    finally:
        sub.close()


@pytest.mark.kubesim_only  # (kubesim counts the watches)
@pytest.mark.django_db(transaction=True)
def test_the_next_rollout_in_a_namespace_joins_the_watch_the_last_one_left_open_behind_it(
    kubesim: KubesimHandle,
    kubesim_api: Any,
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = staging.namespace
    create_deployment(kubesim_api, ns, "web")
    monkeypatch.setattr(namespace_watch, "LINGER_SECONDS", 60.0)  # (long: no race to join)
    first = _Seen()
    sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), first.queue
    )
    until(lambda: first.lists() == [["web"]])
    lingering = sub._watch
    sub.close()
    assert object_watch.watching(staging.cluster, ns, "Deployment") == 0
    assert kubesim.watches_in(ns) == 1  # left open for the next one

    # The next one joins it: its objects at once, from what the watch keeps, and their changes.
    second = _Seen()
    again = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), second.queue
    )
    assert again._watch is lingering
    assert second.lists() == [["web"]]  # put while subscribing: no list request to wait for
    _scale(kubesim_api, ns, "web", 2)
    until(lambda: 2 in second.replicas())
    assert kubesim.watches_in(ns) == 1

    # Left with nobody to join it, it closes once the linger is over.
    monkeypatch.setattr(namespace_watch, "LINGER_SECONDS", 0.05)
    again.close()
    until(lambda: kubesim.watches_in(ns) == 0)
    assert lingering is not None
    lingering.join(timeout=30)
    assert not lingering.is_alive()
    # A subscriber after that opens a new watch, never the closed one.
    third = _Seen()
    fresh = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), third.queue
    )
    try:
        assert fresh._watch is not lingering
        until(lambda: third.lists() == [["web"]])
    finally:
        fresh.close()
    until(lambda: kubesim.watches_in(ns) == 0)


@pytest.mark.kubesim_only  # (kubesim counts the watches)
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_stops_closes_the_watches_left_open_for_a_next_rollout_at_once(
    kubesim: KubesimHandle,
    kubesim_api: Any,
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = staging.namespace
    create_deployment(kubesim_api, ns, "web")
    monkeypatch.setattr(namespace_watch, "LINGER_SECONDS", 60.0)
    seen, kept = _Seen(), _Seen()
    left = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), seen.queue
    )
    busy = object_watch.subscribe(staging.cluster, ns, "Pod", object_watch.named("x"), kept.queue)
    until(lambda: seen.lists() == [["web"]] and kubesim.watches_in(ns) == 2)
    left.close()
    # What run_worker does when it ends: the unused one closes now, the one in use stays.
    assert namespace_watch.close_unused() >= 1
    until(lambda: kubesim.watches_in(ns) == 1)
    assert object_watch.watching(staging.cluster, ns, "Pod") == 1
    busy.close()
    assert namespace_watch.close_unused() >= 1
    until(lambda: kubesim.watches_in(ns) == 0)


@pytest.mark.django_db(transaction=True)
def test_closing_the_unused_watches_can_wait_until_their_threads_have_ended(
    kubesim_api: Any, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's end waits for them: a watch's thread still reading its TLS connection while
    the process exits ran into OpenSSL's cleanup (the worker aborted, SIGABRT)."""
    ns = staging.namespace
    create_deployment(kubesim_api, ns, "web")
    monkeypatch.setattr(namespace_watch, "LINGER_SECONDS", 60.0)
    seen = _Seen()
    sub = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), seen.queue
    )
    until(lambda: seen.lists() == [["web"]])
    watch = sub._watch
    assert watch is not None
    sub.close()
    assert watch.is_alive()  # lingering for a next rollout
    assert namespace_watch.close_unused(wait=30) >= 1
    assert not watch.is_alive()
