"""One Event watch per namespace in a worker, shared by the rollouts that follow it (#16): it
hands each rollout the Events that involve it, closes when its last follower leaves, and goes
on for the others when one follower fails (as the shared Deployment and Pod watches do).
Watches are counted in the test's own namespace only, through kubesim's view."""

import copy
import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from deployments.engine import event_watch, object_watch
from deployments.engine.rollout import Follower
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.engine.cluster_objects import create_deployment
from tests.workers import until

pytestmark = pytest.mark.django_db(transaction=True)


def _event(api: Any, namespace: str, pod: str, reason: str) -> None:
    client.CoreV1Api(api).create_namespaced_event(
        namespace,
        {
            "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:8]}"},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
            "reason": reason,
            "message": f"{reason} for {pod}",
            "type": "Warning",
        },
    )


def _reasons(feed: event_watch.EventFeed) -> list[str]:
    seen = []
    while not feed.queue.empty():
        kind, (_, payload) = feed.queue.get_nowait()
        items = payload if kind == "list" else [payload.object]
        seen += [str(item.get("reason")) for item in items]
    return seen


def test_two_rollouts_share_one_watch_each_gets_its_own_events_and_the_last_out_closes_it(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    web = event_watch.subscribe(staging.cluster, ns, "web")
    api = event_watch.subscribe(staging.cluster, ns, "api")
    assert web.covered
    assert api.covered
    until(lambda: kubesim.watches_in(ns) == 1)

    _event(kubesim_api, ns, "web-7d9f-abcde", "BackOff")
    _event(kubesim_api, ns, "api-55c4-fghij", "Pulled")
    got: dict[str, list[str]] = {"web": [], "api": []}

    def both_arrived() -> bool:
        got["web"] += _reasons(web)
        got["api"] += _reasons(api)
        return bool(got["web"] and got["api"])

    until(both_arrived)
    assert got == {"web": ["BackOff"], "api": ["Pulled"]}

    web.close()
    _event(kubesim_api, ns, "api-55c4-fghij", "Started")
    until(lambda: "Started" in _reasons(api))
    assert kubesim.watches_in(ns) == 1  # still open for api

    api.close()
    api.close()  # (twice is harmless)
    until(lambda: kubesim.watches_in(ns) == 0)
    assert event_watch.watching(staging.cluster, ns) == 0


def _follower(environment: Environment, name: str) -> Follower:
    return Follower(
        cluster=environment.cluster,
        namespace=environment.namespace,
        name=name,
        sha="a" * 40,
        deadline=time.monotonic() + 30,
        timeout_seconds=30,
        unreachable_limit=10,
        event_feed=event_watch.subscribe(environment.cluster, environment.namespace, name),
    )


def test_a_follower_that_fails_leaves_the_shared_watch_working_for_the_others(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    for name in ("broken", "healthy"):
        create_deployment(kubesim_api, ns, name)
    broken, healthy = _follower(staging, "broken"), _follower(staging, "healthy")
    broken_steps, healthy_steps = broken.follow(), healthy.follow(keep_watching=True)
    next(broken_steps), next(healthy_steps)
    # One Deployment, one Pod and one Event watch for both (object_watch.py, event_watch.py).
    until(lambda: kubesim.watches_in(ns) == 3)

    # What a failure in the worker does to a rollout: an exception where it was following.
    with pytest.raises(RuntimeError):
        broken_steps.throw(RuntimeError("the database went away mid-step"))
    assert event_watch.watching(staging.cluster, ns) == 1
    assert object_watch.watching(staging.cluster, ns, "Deployment") == 1
    assert object_watch.watching(staging.cluster, ns, "Pod") == 1

    _event(kubesim_api, ns, "healthy-6b8c-klmno", "Unhealthy")
    feed = healthy.event_feed
    assert feed is not None
    queued = feed.queue.queue  # (read in place: the follower reads it when stepped)
    until(
        lambda: any(
            kind == "event" and payload[1].object.get("reason") == "Unhealthy"
            for kind, payload in list(queued)
        )
    )
    assert kubesim.watches_in(ns) == 3  # still open for healthy
    healthy.close()
    until(lambda: kubesim.watches_in(ns) == 0)


def test_after_a_token_rotation_new_rollouts_watch_with_the_new_connection(
    kubesim: KubesimHandle, staging: Environment
) -> None:
    ns = staging.namespace
    before = event_watch.subscribe(staging.cluster, ns, "web")
    rotated = copy.copy(staging.cluster)
    rotated.token_ciphertext = rotated.token_ciphertext + "-rotated"  # another connection
    after = event_watch.subscribe(rotated, ns, "api")
    try:
        assert before._watch is not after._watch
        # Each connection's watch serves its own follower.
        assert event_watch.watching(staging.cluster, ns) == 1
        assert event_watch.watching(rotated, ns) == 1
    finally:
        before.close()
        after.close()
    until(lambda: kubesim.watches_in(ns) == 0)


def test_a_shared_watch_that_closed_reports_itself_ended_rather_than_failing_when_asked(
    kubesim: KubesimHandle, staging: Environment
) -> None:
    # Its stop flag once shadowed threading.Thread._stop, which is_alive() and join() call on
    # an ended thread: asking whether it had ended raised "'Event' object is not callable".
    ns = staging.namespace
    feed = event_watch.subscribe(staging.cluster, ns, "web")
    objects = object_watch.subscribe(
        staging.cluster, ns, "Deployment", object_watch.named("web"), feed.queue
    )
    threads = [feed._watch, objects._watch]
    until(lambda: kubesim.watches_in(ns) == 2)
    feed.close()
    objects.close()
    for thread in threads:
        assert thread is not None
        thread.join(timeout=30)
        assert not thread.is_alive()


def _queued(feed: event_watch.EventFeed, reason: str) -> bool:
    return any(
        kind == "event" and payload[1].object.get("reason") == reason
        for kind, payload in list(feed.queue.queue)  # (read in place, not taken)
    )


def test_a_rollouts_last_events_stop_where_the_next_rollout_of_its_deployment_subscribes(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    """After its verdict a rollout takes the Events still on their way (close(drain=True));
    those delivered once a newer rollout of the same Deployment has subscribed (before its
    apply) are the newer one's story, not the older one's timeline."""
    ns = staging.namespace
    create_deployment(kubesim_api, ns, "web")
    first = _follower(staging, "web")
    steps = first.follow(keep_watching=True)
    next(steps)
    feed = first.event_feed
    assert feed is not None
    _event(kubesim_api, ns, "web-1111-aaaaa", "Pulled")
    until(lambda: _queued(feed, "Pulled"))

    successor = event_watch.subscribe(staging.cluster, ns, "web")
    _event(kubesim_api, ns, "web-2222-bbbbb", "Scheduled")
    until(lambda: _queued(successor, "Scheduled") and _queued(feed, "Scheduled"))

    notes = [message for _, message in first.close(drain=True)]
    assert any("Pulled Pod/web-1111-aaaaa" in message for message in notes), notes
    assert not any("web-2222" in message for message in notes), notes
    successor.close()
    until(lambda: event_watch.watching(staging.cluster, ns) == 0)


def test_a_rollout_still_followed_when_the_next_one_subscribes_goes_on_following(
    kubesim: KubesimHandle, kubesim_api: Any, staging: Environment
) -> None:
    ns = staging.namespace
    with kubesim.settings(startup_delay=600):  # (its pods stay unready: no verdict meanwhile)
        create_deployment(kubesim_api, ns, "web")
        first = _follower(staging, "web")
        steps = first.follow()
        next(steps)
        feed = first.event_feed
        assert feed is not None
        successor = event_watch.subscribe(staging.cluster, ns, "web")
        assert (event_watch.SUCCESSOR, None) in list(feed.queue.queue)
        while (event_watch.SUCCESSOR, None) in list(feed.queue.queue):
            steps.send(False)  # (one queued item a step; the mark is taken in its turn)
        steps.close()
        successor.close()
    until(lambda: event_watch.watching(staging.cluster, ns) == 0)
