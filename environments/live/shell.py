"""The web shell (F7): ws/environments/<name>/pods/<pod>/shell/?container=C.

A thread owns the blocking exec websocket (kube.ExecSession; websocket-client sockets must
not be read and written from two threads) and bridges it to the async consumer: keystrokes
and resizes go through a queue, output comes back as JSON messages. The command is
``/bin/bash``, or ``sh`` when the image has no bash. A session ends when the shell exits, the
browser closes, the user's ``exec`` grant is gone, or nothing was typed for
APOLLO_SHELL_IDLE_SECONDS (default 900). Opening and closing are recorded in history.

Browser -> Apollo: {"type": "stdin", "data": "..."} | {"type": "resize", "cols": 80, "rows": 24}
Apollo -> browser: {"type": "started", "command": "/bin/bash"} | {"type": "stdout", "data": ...}
| {"type": "error", "message": ...} | {"type": "exit", "message": ...}
"""

import asyncio
import contextlib
import json
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User

from apollo_site.ops.metrics import SHELLS
from deployments.models import Service
from environments import kube
from environments.live.consumers import load_environment
from environments.live.logs import _find_pod_sync, current_user, invalid_names, may_act_somewhere
from environments.models import Environment
from environments.services import PodTarget
from history.services import record_event
from permissions.services import can
from permissions.verbs import Verb

COMMANDS = (["/bin/bash"], ["sh"])
RECHECK_SECONDS = 5.0  # the gate is asked again on input at most this often
POLL_SECONDS = 0.02
CLOSE_NORMAL, CLOSE_ERROR = 1000, 4500


def idle_seconds() -> float:
    return float(getattr(settings, "APOLLO_SHELL_IDLE_SECONDS", 900))


def _missing_binary(status: str) -> bool:
    return "executable file not found" in status or "no such file or directory" in status


def _exit_message(status: str) -> str:
    try:
        data = json.loads(status)
    except ValueError:
        return status[:300]
    if data.get("status") == "Success":
        return "the shell exited"
    return str(data.get("message") or status)[:300]


class ExecBridge:
    """One exec session in a thread, talking to the consumer through its event loop."""

    def __init__(self, consumer: "ShellConsumer", target: PodTarget, container: str) -> None:
        self.consumer = consumer
        self.loop = asyncio.get_running_loop()
        self.environment: Environment = consumer.environment
        self.pod = target.name
        self.container = container
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.closed = threading.Event()
        self.end_reason = ""
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"exec-{self.pod}")

    def start(self) -> None:
        self.thread.start()

    def _send(self, message: dict[str, Any]) -> None:
        if self.closed.is_set() and message.get("type") == "stdout":
            return
        self._on_loop(self.consumer.send_json(message))

    def _finish(self, code: int) -> None:
        self._on_loop(self.consumer.close(code=code))

    def _on_loop(self, coroutine: Any) -> None:
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the event loop is gone
            coroutine.close()
            return
        with contextlib.suppress(Exception):
            future.result(timeout=10)

    def _open(self) -> tuple[kube.ExecSession, str, str] | None:
        for command in COMMANDS:
            session = kube.ExecSession(
                self.environment.cluster,
                self.environment.namespace,
                self.pod,
                container=self.container,
                command=command,
                tty=True,
            )
            output, status, deadline = "", None, time.monotonic() + 1.0
            # A missing binary answers at once on the error channel; a shell prints a prompt.
            while not output and status is None and time.monotonic() < deadline:
                chunk, status = session.read(0.1)
                output += chunk
                if not session.is_open():
                    break
            if status is not None and _missing_binary(status):
                session.close()
                continue
            if status is not None:
                session.close()
                self._send({"type": "error", "message": _exit_message(status)})
                return None
            return session, " ".join(command), output
        self._send({"type": "error", "message": "neither /bin/bash nor sh exists in the image"})
        return None

    def _run(self) -> None:
        code = CLOSE_ERROR
        try:
            opened = self._open()
            if opened is None:
                self.end_reason = "could not start a shell"
                return
            session, command, output = opened
            self._send({"type": "started", "command": command})
            if output:
                self._send({"type": "stdout", "data": output})
            code = self._pump(session)
        except kube.KubeError as exc:
            self.end_reason = f"refused: {exc.message}"
            self._send({"type": "error", "message": _refusal(self.environment, exc)})
        except kube.ClusterUnreachable as exc:
            self.end_reason = "cluster unreachable"
            self._send({"type": "error", "message": f"The cluster did not answer: {exc}"})
        finally:
            self.closed.set()
            self._finish(code)

    def _pump(self, session: kube.ExecSession) -> int:
        try:
            while True:
                if not self._drain_inbox(session):
                    self.end_reason = self.end_reason or "closed by the browser"
                    return CLOSE_NORMAL
                output, status = session.read(POLL_SECONDS)
                if output:
                    self._send({"type": "stdout", "data": output})
                if status is not None or not session.is_open():
                    message = _exit_message(status) if status else "the session ended"
                    self.end_reason = message
                    self._send({"type": "exit", "message": message})
                    return CLOSE_NORMAL
        finally:
            session.close()

    def _drain_inbox(self, session: kube.ExecSession) -> bool:
        while True:
            try:
                kind, value = self.inbox.get_nowait()
            except queue.Empty:
                return True
            if kind == "close":
                return False
            if kind == "stdin":
                session.write(value)
            elif kind == "resize":
                session.resize(cols=value[0], rows=value[1])

    def close(self, reason: str) -> None:
        if not self.end_reason:
            self.end_reason = reason
        self.inbox.put(("close", None))


def _refusal(environment: Environment, exc: kube.KubeError) -> str:
    if exc.status == 403:
        return (
            f"The cluster refused the shell: the credentials Apollo uses for cluster "
            f"{environment.cluster.name} may not create pods/exec (Kubernetes answered 403: "
            f"{exc.message}). Ask an admin to allow pods/exec for Apollo's account."
        )
    return f"The cluster refused the shell ({exc.status} {exc.reason}): {exc.message}"


@database_sync_to_async  # type: ignore[untyped-decorator]
def _may_exec(user: User | AnonymousUser, environment: Environment, target: PodTarget) -> bool:
    return can(current_user(user), Verb.EXEC, service=target.service, environment=environment)


@database_sync_to_async  # type: ignore[untyped-decorator]
def _record(user: User, environment: Environment, action: str, data: dict[str, Any]) -> None:
    verb = "opened" if action == "shell.opened" else "closed"
    # The pod's service, so that the History page shows the session to who may view it.
    service = Service.objects.filter(name=data.get("service") or "").first()
    record_event(
        actor=user,
        action=action,
        target=environment,
        data=data,
        service=service,
        summary=f"Shell {verb} in {data['pod']}/{data['container']} ({environment.name})",
    )


class ShellConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        container = (query.get("container") or [""])[0]
        # SECURITY: names checked, then the permission asked, before the cluster is asked.
        invalid = invalid_names(kwargs["pod"], container)
        if invalid:
            await self.close(code=4400, reason=invalid)
            return
        environment = await load_environment(kwargs["name"])
        if environment is None:
            await self.close(code=4404)
            return
        if not await may_act_somewhere(user, Verb.EXEC, environment):
            await self.close(code=4403)
            return
        target = await asyncio.to_thread(_find_pod_sync, environment, kwargs["pod"])
        if target is None:
            await self.close(code=4404)
            return
        # SECURITY: exec on the pod's service, asked before accepting.
        if not await _may_exec(user, environment, target):
            await self.close(code=4403)
            return
        containers = [c["name"] for c in target.pod["spec"]["containers"]]
        container = container if container in containers else containers[0]
        self.user, self.environment, self.target = user, environment, target
        self.checked_at = self.active_at = time.monotonic()
        await self.accept()
        SHELLS.inc()
        self.counted = True  # the gauge counts accepted sockets; disconnect takes it off
        self.session = {
            "pod": target.name,
            "container": container,
            "service": target.service.name if target.service else "",
            "started_at": datetime.now(UTC).isoformat(),
        }
        await _record(user, environment, "shell.opened", self.session)
        self.bridge = ExecBridge(self, target, container)
        self.bridge.start()
        self.idle = asyncio.create_task(self._idle_watch())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            SHELLS.dec()
            self.counted = False
        if not hasattr(self, "bridge"):
            return
        self.idle.cancel()
        self.bridge.close("closed by the browser")
        bridge = self.bridge
        del self.bridge
        await asyncio.to_thread(bridge.thread.join, 5)
        ended = {**self.session, "ended_at": datetime.now(UTC).isoformat()}
        await _record(
            self.user, self.environment, "shell.closed", {**ended, "reason": bridge.end_reason}
        )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not hasattr(self, "bridge"):
            return
        now = time.monotonic()
        if now - self.checked_at > RECHECK_SECONDS:
            self.checked_at = now
            # SECURITY: a revoked exec grant ends the session at the next keystroke.
            if not await _may_exec(self.user, self.environment, self.target):
                await self.send_json({"type": "error", "message": "You may no longer exec."})
                self.bridge.close("exec permission revoked")
                return
        if content.get("type") == "stdin" and isinstance(content.get("data"), str):
            self.active_at = now
            self.bridge.inbox.put(("stdin", content["data"][:65536]))
        elif content.get("type") == "resize":
            cols, rows = _bounded(content.get("cols"), 500), _bounded(content.get("rows"), 300)
            if cols and rows:
                self.bridge.inbox.put(("resize", (cols, rows)))

    async def _idle_watch(self) -> None:
        limit = idle_seconds()
        with contextlib.suppress(asyncio.CancelledError):
            while hasattr(self, "bridge"):
                await asyncio.sleep(min(5.0, limit / 4))
                if time.monotonic() - self.active_at > limit:
                    await self.send_json(
                        {"type": "exit", "message": f"closed after {int(limit)} s without input"}
                    )
                    self.bridge.close("idle timeout")
                    return


def _bounded(value: Any, upper: int) -> int:
    return value if isinstance(value, int) and 0 < value <= upper else 0
