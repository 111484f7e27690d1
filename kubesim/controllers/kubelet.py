"""The simulated kubelet: schedules pods, pulls images, runs containers, and terminates pods.

Each pod gets one asyncio task per container that walks it through Pending/ContainerCreating,
image pull (or ErrImagePull/ImagePullBackOff), Running, readiness, and crash loops, writing the
pod status after every step. With startup_delay 0 a normal pod reaches Running/Ready at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.controllers.podstatus import (
    init_status,
    set_container_state,
    write_pod,
)
from kubesim.events import NODE_NAME
from kubesim.image_registry import ImageBehaviour, image_id
from kubesim.logs import LogBook, LogRun
from kubesim.meta import iso
from kubesim.store import WatchEvent

JSON = dict[str, Any]
HOST_IP = "172.18.0.2"


def container_id(uid: str, name: str, restart: int) -> str:
    return "containerd://" + hashlib.sha256(f"{uid}/{name}/{restart}".encode()).hexdigest()


class Kubelet:
    def __init__(self, cluster: Cluster, book: LogBook) -> None:
        self.cluster = cluster
        self.book = book
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}
        self.terminating: set[str] = set()
        cluster.store.add_listener(self._on_event)

    def _on_event(self, rtype: R.ResourceType, event: WatchEvent) -> None:
        if rtype is not R.PODS:
            return
        uid = event.obj["metadata"]["uid"]
        if event.type == "ADDED" and uid not in self.tasks:
            self.tasks[uid] = []
            self.cluster.spawn(self._start_pod(event.obj))
        elif event.type == "MODIFIED" and event.obj["metadata"].get("deletionTimestamp"):
            if uid not in self.terminating:
                self.terminating.add(uid)
                self.cluster.spawn(self._terminate(event.obj))
        elif event.type == "DELETED":
            self._cancel(uid)
            self.terminating.discard(uid)
            self.tasks.pop(uid, None)
            self.book.forget(uid)

    def _cancel(self, uid: str) -> None:
        for task in self.tasks.get(uid, []):
            task.cancel()

    def behaviour(self, image: str) -> ImageBehaviour:
        return self.cluster.images.lookup(image)

    # -- start -----------------------------------------------------------------------------------

    async def _start_pod(self, pod: JSON) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"], meta["uid"])
        self.cluster.events.record(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {NODE_NAME}",
            component="default-scheduler",
        )
        pod_ip = self.cluster.allocator.pod_ip()

        def schedule(current: JSON) -> None:
            current["spec"]["nodeName"] = NODE_NAME
            current["status"] = init_status(current, HOST_IP, pod_ip, time.time())

        if write_pod(self.cluster, key, schedule, spec_change=True) is None:
            return
        for container in pod["spec"].get("containers", []):
            task = self.cluster.spawn(self._run_container(key, pod, container))
            self.tasks.setdefault(meta["uid"], []).append(task)

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _run_container(self, key: tuple[str, str, str], pod: JSON, container: JSON) -> None:
        settings = self.cluster.settings
        name, image = container["name"], container["image"]
        field = f"spec.containers{{{name}}}"
        delay = settings.startup_delay
        await self._pull(key, pod, name, image, field, delay)
        await self._sleep(delay / 2)
        restart, backoff = 0, settings.crash_backoff
        while True:
            behaviour = self.behaviour(image)
            self._started(key, pod, container, restart, behaviour)
            if behaviour.slow_seconds:
                await self._sleep(behaviour.slow_seconds)
                self._set_ready(key, name, True)
            if behaviour.notready:
                self.cluster.events.record(
                    pod,
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    type_="Warning",
                    field_path=field,
                )
            if not behaviour.crashloop:
                return
            await self._sleep(behaviour.crash_after)
            restart += 1
            self._crashed(key, pod, name, restart, behaviour.exit_code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, settings.crash_backoff_max)

    async def _pull(
        self, key: tuple[str, str, str], pod: JSON, name: str, image: str, field: str, delay: float
    ) -> None:
        events = self.cluster.events
        events.record(pod, "Pulling", f'Pulling image "{image}"', field_path=field)
        await self._sleep(delay / 2)
        backoff = self.cluster.settings.image_pull_backoff
        while not self.behaviour(image).exists:
            message = (
                f'failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {image}: not found'
            )
            events.record(
                pod,
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = {message}',
                type_="Warning",
                field_path=field,
            )
            events.record(pod, "Failed", "Error: ErrImagePull", type_="Warning", field_path=field)
            self._set_waiting(
                key, name, "ErrImagePull", f"rpc error: code = NotFound desc = {message}"
            )
            await asyncio.sleep(backoff)
            events.record(pod, "BackOff", f'Back-off pulling image "{image}"', field_path=field)
            events.record(
                pod, "Failed", "Error: ImagePullBackOff", type_="Warning", field_path=field
            )
            self._set_waiting(key, name, "ImagePullBackOff", f'Back-off pulling image "{image}"')
            await asyncio.sleep(min(backoff * 4, 10.0))
        events.record(
            pod,
            "Pulled",
            f'Successfully pulled image "{image}" in 812ms (812ms including '
            "waiting). Image size: 48213411 bytes.",
            field_path=field,
        )

    def _set_waiting(self, key: tuple[str, str, str], name: str, reason: str, message: str) -> None:
        def change(pod: JSON) -> None:
            set_container_state(
                pod,
                name,
                {"waiting": {"reason": reason, "message": message}},
                ready=False,
                started=False,
            )

        write_pod(self.cluster, key, change)

    def _set_ready(self, key: tuple[str, str, str], name: str, ready: bool) -> None:
        def change(pod: JSON) -> None:
            set_container_state(pod, name, None, ready=ready)

        write_pod(self.cluster, key, change)

    def _started(
        self,
        key: tuple[str, str, str],
        pod: JSON,
        container: JSON,
        restart: int,
        behaviour: ImageBehaviour,
    ) -> None:
        name, image = container["name"], container["image"]
        field = f"spec.containers{{{name}}}"
        self.cluster.events.record(pod, "Created", f"Created container {name}", field_path=field)
        self.cluster.events.record(pod, "Started", f"Started container {name}", field_path=field)
        now = time.time()
        rate = float(
            pod["metadata"]
            .get("annotations", {})
            .get("kubesim.io/log-rate", self.cluster.settings.log_rate)
        )
        self.book.start(
            key[2], LogRun(key[1], name, image, now, rate, self.cluster.settings.log_buffer)
        )
        # A crash-looping application fails its readiness probe before it crashes.
        ready = not behaviour.notready and not behaviour.slow_seconds and not behaviour.crashloop

        def change(current: JSON) -> None:
            set_container_state(
                current,
                name,
                {"running": {"startedAt": iso(now)}},
                ready=ready,
                started=True,
                image=image,
                image_id=image_id(image),
                container_id=container_id(key[2], name, restart),
            )

        write_pod(self.cluster, key, change)

    def _crashed(
        self,
        key: tuple[str, str, str],
        pod: JSON,
        name: str,
        restart: int,
        exit_code: int,
        backoff: float,
    ) -> None:
        self.book.stop(key[2], name, exit_code)
        field = f"spec.containers{{{name}}}"
        seconds = int(backoff * 10)  # report the back-off on the real scale (10s, 20s, ...)
        self.cluster.events.record(
            pod,
            "BackOff",
            f"Back-off restarting failed container {name} in pod {key[1]}_{key[0]}({key[2]})",
            type_="Warning",
            field_path=field,
        )

        def change(current: JSON) -> None:
            status = next(cs for cs in current["status"]["containerStatuses"] if cs["name"] == name)
            running = status.get("state", {}).get("running", {})
            terminated = {
                "exitCode": exit_code,
                "reason": "Error",
                "startedAt": running.get("startedAt", iso(time.time())),
                "finishedAt": iso(time.time()),
                "containerID": status.get("containerID", ""),
            }
            status["lastState"] = {"terminated": terminated}
            status["restartCount"] = restart
            set_container_state(
                current,
                name,
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {seconds}s restarting failed container={name} "
                        f"pod={key[1]}_{key[0]}({key[2]})",
                    }
                },
                ready=False,
                started=False,
            )

        write_pod(self.cluster, key, change)

    # -- stop --------------------------------------------------------------------------------

    async def _terminate(self, pod: JSON) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"], meta["uid"])
        self._cancel(meta["uid"])
        for container in pod["spec"].get("containers", []):
            self.cluster.events.record(
                pod,
                "Killing",
                f"Stopping container {container['name']}",
                field_path=f"spec.containers{{{container['name']}}}",
            )
            self.book.stop(meta["uid"], container["name"], None)

        def change(current: JSON) -> None:
            for container in current["spec"].get("containers", []):
                set_container_state(current, container["name"], None, ready=False)

        write_pod(self.cluster, key, change)
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        await self._sleep(min(grace, self.cluster.settings.stop_delay))
        current = self.cluster.store.get(R.PODS, key[0], key[1])
        if current is not None and current["metadata"]["uid"] == key[2]:
            self.cluster.store.remove(R.PODS, key[0], key[1])
