"""Exec over websocket with kubernetes.stream, both one-shot and interactive."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.kubesim.helpers import pod, wait_for


def start(core: client.CoreV1Api, namespace: str, name: str, image: str) -> str:
    body = pod(name, image)
    body["spec"]["containers"][0]["env"] = [{"name": "GREETING", "value": "hello"}]
    core.create_namespaced_pod(namespace, body)
    wait_for(lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running")
    return name


@pytest.fixture
def core(kubesim_api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kubesim_api)


def run(core: client.CoreV1Api, namespace: str, name: str, command: list[str]) -> Any:
    return stream(
        core.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )


def test_a_one_shot_command_returns_its_output(
    core: client.CoreV1Api, kubesim_namespace: str
) -> None:
    name = start(core, kubesim_namespace, "ex", "registry.example/web:1.0")
    output = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["echo", "hello", "world"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert output == "hello world\n"
    assert (
        stream(
            core.connect_get_namespaced_pod_exec,
            name,
            kubesim_namespace,
            command=["hostname"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
        == name + "\n"
    )
    env = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["env"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert "GREETING=hello" in env


def test_exit_codes_arrive_on_the_error_channel(
    core: client.CoreV1Api, kubesim_namespace: str
) -> None:
    name = start(core, kubesim_namespace, "codes", "registry.example/web:1.0")
    resp = run(core, kubesim_namespace, name, ["sh", "-c", "echo out; nosuchcmd; exit 3"])
    resp.run_forever(timeout=5)
    assert resp.read_stdout() == "out\n"
    assert "nosuchcmd: command not found" in resp.read_stderr()
    assert resp.returncode == 3
    again = run(core, kubesim_namespace, name, ["sh", "-c", "exit 3"])
    again.run_forever(timeout=5)
    status = json.loads(again.read_channel(3))
    assert (status["status"], status["reason"]) == ("Failure", "NonZeroExitCode")
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    ok = run(core, kubesim_namespace, name, ["true"])
    ok.run_forever(timeout=5)
    assert ok.returncode == 0


def test_an_interactive_shell_reads_stdin(core: client.CoreV1Api, kubesim_namespace: str) -> None:
    name = start(core, kubesim_namespace, "shell", "registry.example/web:1.0")
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["/bin/bash"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.write_stdin("pwd\n")
    out = ""
    for _ in range(50):
        resp.update(timeout=0.1)
        out += resp.read_stdout()
        if out:
            break
    assert out == "/\n"
    resp.write_stdin("cd /app && ls\n")
    listing = ""
    for _ in range(50):
        resp.update(timeout=0.1)
        listing += resp.read_stdout()
        if "config.yaml" in listing:
            break
    assert listing.split() == ["app.jar", "config.yaml"]
    resp.write_stdin("exit 4\n")
    resp.run_forever(timeout=5)
    assert resp.returncode == 4


def test_bash_is_missing_on_alpine_images_so_clients_can_fall_back(
    core: client.CoreV1Api, kubesim_namespace: str
) -> None:
    name = start(core, kubesim_namespace, "tiny", "registry.example/tool:alpine-3.19")
    resp = run(core, kubesim_namespace, name, ["/bin/bash"])
    resp.run_forever(timeout=5)
    error = resp.read_channel(3)
    status = json.loads(error)
    assert status["status"] == "Failure"
    assert 'exec: "/bin/bash": stat /bin/bash: no such file or directory' in status["message"]
    fallback = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["sh", "-c", "echo fine"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert fallback == "fine\n"


def test_a_tty_session_echoes_and_prompts(core: client.CoreV1Api, kubesim_namespace: str) -> None:
    name = start(core, kubesim_namespace, "tty", "registry.example/tool:alpine")
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["sh"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=True,
        _preload_content=False,
    )
    resp.write_channel(4, json.dumps({"Width": 120, "Height": 40}))
    resp.write_stdin("echo hi\r")
    out = ""
    for _ in range(50):
        resp.update(timeout=0.1)
        out += resp.read_stdout()
        if out.count("/ # ") >= 2:
            break
    assert out == "/ # echo hi\r\nhi\r\n/ # "
    resp.write_stdin("exit\r")
    resp.run_forever(timeout=5)
    assert resp.returncode == 0


def test_a_tty_session_handles_backspace_and_ctrl_c(
    core: client.CoreV1Api, kubesim_namespace: str
) -> None:
    name = start(core, kubesim_namespace, "keys", "registry.example/tool:alpine")
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        kubesim_namespace,
        command=["sh"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=True,
        _preload_content=False,
    )
    resp.write_stdin("echo hx\x7fi\r")
    resp.write_stdin("oops\x03")
    out = ""
    for _ in range(50):
        resp.update(timeout=0.1)
        out += resp.read_stdout()
        if out.count("/ # ") >= 3:
            break
    assert out == "/ # echo hx\b \bi\r\nhi\r\n/ # oops^C\r\n/ # "
    resp.close()
