"""pods/{name}/exec over websocket (v5.channel.k8s.io and v4.channel.k8s.io).

Frames are binary: first byte the channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize;
v5 adds 255 = "close channel"). The error channel carries a JSON Status when the command ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.errors import ApiError, bad_request, success_status
from kubesim.logs_http import pick_container
from kubesim.shell import Shell

JSON = dict[str, Any]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_SHELLS = {"sh", "bash", "ash", "/bin/sh", "/bin/bash", "/bin/ash", "/usr/bin/bash"}


def exit_status(code: int) -> JSON:
    if code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"[{code}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def oci_failure(binary: str, not_in_path: bool) -> JSON:
    why = (
        f'exec: "{binary}": executable file not found in $PATH'
        if not_in_path
        else f'exec: "{binary}": stat {binary}: no such file or directory'
    )
    message = (
        "Internal error occurred: error executing command in container: failed to exec in "
        "container: failed to start exec: OCI runtime exec failed: exec failed: unable to "
        f"start container process: {why}: unknown"
    )
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


@dataclass
class Session:
    ws: web.WebSocketResponse
    shell: Shell
    tty: bool
    stdout: bool
    stderr: bool

    async def send(self, channel: int, text: str) -> None:
        if not text:
            return
        if self.tty:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
            channel = STDOUT
        if (channel == STDOUT and not self.stdout) or (channel == STDERR and not self.stderr):
            return
        await self.ws.send_bytes(bytes([channel]) + text.encode())

    async def finish(self, status: JSON) -> None:
        await self.ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        await self.ws.close()


class ExecHandler:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _check(self, pod: JSON, container: str, command: list[str]) -> None:
        if not command:
            raise bad_request("you must specify at least 1 command")
        for status in pod.get("status", {}).get("containerStatuses") or []:
            if status["name"] == container and "running" in status.get("state", {}):
                return
        raise bad_request(f'unable to upgrade connection: container not found ("{container}")')

    async def __call__(self, namespace: str, name: str, request: web.Request) -> web.StreamResponse:
        pod = self.cluster.api.get(R.PODS, namespace, name)
        query = request.query
        container = pick_container(pod, query.get("container"))
        command = query.getall("command", [])
        self._check(pod, container, command)
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "Upgrade request required")
        await ws.prepare(request)
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        behaviour = self.cluster.images.lookup(spec["image"])
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME": name,
            "HOME": "/root",
            **{e["name"]: str(e.get("value", "")) for e in spec.get("env") or [] if "name" in e},
        }
        shell = Shell(
            hostname=name,
            namespace=namespace,
            pod_ip=pod["status"].get("podIP", ""),
            env=env,
            has_bash=behaviour.has_bash,
            tty=query.get("tty") in ("true", "1"),
        )
        session = Session(
            ws,
            shell,
            tty=query.get("tty") in ("true", "1"),
            stdout=query.get("stdout", "true") in ("true", "1"),
            stderr=query.get("stderr", "true") in ("true", "1"),
        )
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            await self._run(session, command, stdin=query.get("stdin") in ("true", "1"))
        return ws

    async def _run(self, session: Session, command: list[str], *, stdin: bool) -> None:
        binary = command[0]
        base = binary.rsplit("/", 1)[-1]
        if base == "bash" and not session.shell.has_bash:
            await session.finish(oci_failure(binary, not_in_path="/" not in binary))
            return
        if binary in _SHELLS:
            session.shell.shell_name = base
            if len(command) >= 3 and command[1] == "-c":
                result = await session.shell.run_line(command[2])
                await self._report(session, result.stdout, result.stderr, result.code)
                return
            await self._interactive(session, stdin)
            return
        if base not in (
            "echo",
            "env",
            "printenv",
            "hostname",
            "ls",
            "cat",
            "pwd",
            "whoami",
            "id",
            "date",
            "uname",
            "true",
            "false",
            "sleep",
            "stty",
            "tput",
        ):
            await session.finish(oci_failure(binary, not_in_path="/" not in binary))
            return
        result = await session.shell.run(command)
        await self._report(session, result.stdout, result.stderr, result.code)

    async def _report(self, session: Session, out: str, err: str, code: int) -> None:
        await session.send(STDOUT, out)
        await session.send(STDERR, err)
        await session.finish(exit_status(code))

    async def _interactive(self, session: Session, stdin: bool) -> None:
        shell = session.shell
        if not stdin:
            await session.finish(exit_status(0))
            return
        if session.tty:
            await session.send(STDOUT, shell.prompt)
        buffer = ""
        async for message in session.ws:
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break
            data = message.data if isinstance(message.data, bytes) else message.data.encode()
            if not data:
                continue
            channel, payload = data[0], data[1:].decode(errors="replace")
            if channel == RESIZE:
                self._resize(shell, payload)
                continue
            if channel == CLOSE or (channel == STDIN and payload == "\x04" and not buffer):
                break
            if channel != STDIN:
                continue
            buffer, code = await self._feed(session, buffer + payload, len(buffer))
            if code is not None:
                await session.finish(exit_status(code))
                return
        await session.finish(exit_status(0))

    @staticmethod
    def _resize(shell: Shell, payload: str) -> None:
        try:
            size = json.loads(payload)
            shell.size = (int(size.get("Width", 80)), int(size.get("Height", 24)))
        except (ValueError, AttributeError):
            pass

    async def _feed(self, session: Session, buffer: str, echoed: int) -> tuple[str, int | None]:
        """Process complete lines in `buffer`; return the rest and an exit code if `exit` ran."""
        if session.tty:
            buffer, echo = self._line_discipline(buffer[:echoed], buffer[echoed:])
            await session.send(STDOUT, echo)
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            result = await session.shell.run_line(line)
            await session.send(STDOUT, result.stdout)
            await session.send(STDERR, result.stderr)
            if result.exit_shell:
                return buffer, result.code
            if session.tty:
                await session.send(STDOUT, session.shell.prompt)
        return buffer, None

    @staticmethod
    def _line_discipline(line: str, typed: str) -> tuple[str, str]:
        """A terminal in cooked mode: echo, backspace, Ctrl-C, Enter. Returns (buffer, echo)."""
        buffer, echo = line, ""
        for char in typed:
            if char in ("\x7f", "\b"):
                if buffer and not buffer.endswith("\n"):
                    buffer, echo = buffer[:-1], echo + "\b \b"
            elif char == "\x03":
                # Ctrl-C discards the line being typed; an empty command shows a fresh prompt.
                buffer = buffer[: buffer.rfind("\n") + 1] + "\n"
                echo += "^C\n"
            elif char in ("\r", "\n"):
                buffer, echo = buffer + "\n", echo + "\n"
            else:
                buffer, echo = buffer + char, echo + char
        return buffer, echo
