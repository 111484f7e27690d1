"""`make run`: the demo cluster, the deployment worker and the web server, stopped together.

Each part runs as a child process; when one of them exits on its own, the others are
stopped too, so `make run` never leaves half a demo running. The demo cluster is kubesim, or
with APOLLO_CLUSTER=kubernetes the real control plane of `make cluster` (cluster/): the one
already running on APOLLO_KUBERNETES_PORT, else started here from var/bin/apollo-kubernetes.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

Processes = dict[str, subprocess.Popen[bytes]]


def _port(name: str, default: str) -> str:
    value = os.environ.get(name, default)
    if not value.isdigit():
        raise CommandError(f"{name} must be a port number, got {value!r}")
    return value


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Start kubesim, migrate, seed the demo, run the worker and serve on APOLLO_PORT."

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM (a service manager, `kill`) must stop the children too, as Ctrl-C does;
        # without this the default action would end this process and orphan them.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        # SECURITY: everything the demo and its children create (the kubeconfig with the
        # cluster's token, the database, logs) is the owner's only.
        os.umask(0o077)
        port = _port("APOLLO_PORT", "8000")
        kind = os.environ.get("APOLLO_CLUSTER", "kubesim") or "kubesim"
        if kind not in {"kubesim", "kubernetes"}:
            raise CommandError(f"APOLLO_CLUSTER must be kubesim or kubernetes, got {kind!r}")
        processes: Processes = {}
        try:
            if kind == "kubernetes":
                kube_port = _port("APOLLO_KUBERNETES_PORT", "6444")
                kubeconfig = settings.VAR_DIR / "kubernetes.kubeconfig"
                self._start_kubernetes(kube_port, kubeconfig, processes)
            else:
                kube_port = _port("APOLLO_KUBESIM_PORT", "6443")
                kubeconfig = Path(
                    settings.APOLLO_KUBECONFIG or settings.VAR_DIR / "kubesim.kubeconfig"
                )
                processes["kubesim"] = self._start_kubesim(kube_port, kubeconfig)
            call_command("migrate", interactive=False, verbosity=0)
            call_command("seed_demo", cluster=kind, kubeconfig=str(kubeconfig))
            call_command("seed_history")  # four weeks for the Metrics page, once
            if not settings.DEBUG:  # whitenoise serves the collected, hashed files
                call_command("collectstatic", interactive=False, verbosity=0)
            python = sys.executable
            processes["worker"] = subprocess.Popen([python, "manage.py", "rundeployments"])
            processes["web"] = subprocess.Popen(
                [
                    python,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    port,
                    "apollo_site.asgi:application",
                ]
            )
            self.stdout.write(
                f"Apollo is serving on http://127.0.0.1:{port}/ — {kind} on "
                f"https://127.0.0.1:{kube_port} (kubeconfig {kubeconfig}). Ctrl-C stops everything."
            )
            self._wait_for_first_exit(processes)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            self._stop(processes)

    def _start_kubesim(self, port: str, kubeconfig: Path) -> subprocess.Popen[bytes]:
        kubeconfig.unlink(missing_ok=True)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubesim",
                "--port",
                port,
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                "staging",
                "--namespace",
                "production",
                "--startup-delay",
                "2",
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"kubesim exited with {process.returncode} (is {port} taken?)")
            if kubeconfig.exists() and self._listening(int(port)):
                return process
            time.sleep(0.2)
        process.kill()
        raise CommandError("kubesim did not start within 30 s")

    def _start_kubernetes(self, port: str, kubeconfig: Path, processes: Processes) -> None:
        if kubeconfig.exists() and self._listening(int(port)):
            return  # `make cluster` runs it
        binary = settings.BASE_DIR / "var" / "bin" / "apollo-kubernetes"
        if not binary.exists():
            raise CommandError(
                f"APOLLO_CLUSTER=kubernetes: {binary} is not built; run `make cluster` "
                "(the first build takes about 15 minutes)"
            )
        kubeconfig.unlink(missing_ok=True)
        processes["kubernetes"] = process = subprocess.Popen(
            [
                str(binary),
                "up",
                "--dir",
                str(settings.VAR_DIR / "kubernetes"),
                "--kubeconfig",
                str(kubeconfig),
                "--port",
                port,
                "--etcd-port",
                "0",
                "--namespace",
                "staging",
                "--namespace",
                "production",
            ]
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"the control plane exited with {process.returncode}")
            if kubeconfig.exists():
                return
            time.sleep(0.2)
        raise CommandError("the control plane did not start within 180 s")

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def _wait_for_first_exit(self, processes: Processes) -> None:
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the rest")
                    return
            time.sleep(0.5)

    def _stop(self, processes: Processes) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                # Reaped here, not left to whoever adopts it: rundemo ends only once every
                # child it started has ended (a test checks the process group is empty).
                process.wait()
